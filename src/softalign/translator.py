"""Translator: a trained run directory as a text -> text function (with scores and attention).

    translator = Translator.load("runs/en-de")
    [t] = translator.translate(["A man rides a bike."], beam=5)
    t.text, t.score, t.attention  # attention: (len(t.target_tokens), len(t.source_tokens))

The command line, the analysis tools and the server all stand on this class.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from softalign import checkpoint as ckpt
from softalign.config import RunConfig, load_config
from softalign.data.dataset import load_vocabs
from softalign.data.vocab import SubwordVocab
from softalign.decoding.options import check_search_options
from softalign.decoding.search import decode_ids
from softalign.device import pick_device
from softalign.errors import CheckpointError, SoftalignError, require_texts
from softalign.loading import load_model
from softalign.model.seq2seq import Seq2Seq
from softalign.model_size import check_model_fits
from softalign.precision import resolve_precision

log = logging.getLogger("softalign")


@dataclass
class Candidate:
    text: str
    score: float
    target_tokens: list[str]
    attention: np.ndarray | None  # (len(target_tokens), len(source_tokens))


@dataclass
class Translation:
    """The best output for one source sentence, with the n-best list (best first)."""

    source: str
    source_tokens: list[str]
    nbest: list[Candidate] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.nbest[0].text if self.nbest else ""

    @property
    def score(self) -> float:
        return self.nbest[0].score if self.nbest else 0.0

    @property
    def target_tokens(self) -> list[str]:
        return self.nbest[0].target_tokens if self.nbest else []

    @property
    def attention(self) -> np.ndarray | None:
        return self.nbest[0].attention if self.nbest else None


class Translator:
    def __init__(
        self,
        *,
        model: Seq2Seq,
        config: RunConfig,
        src_vocab: SubwordVocab,
        tgt_vocab: SubwordVocab,
        device: torch.device,
        checkpoint: Path,
    ) -> None:
        self.model = model.eval()
        self.config = config
        self.src_vocab = src_vocab
        self.tgt_vocab = tgt_vocab
        self.device = device
        self.checkpoint = checkpoint
        # the backend's per-search state kept from one call to the next (the fast backend's
        # packed weights, packed again if the model's weights are replaced)
        self.decoding_cache: dict = {}

    @classmethod
    def load(
        cls,
        run_dir: str | Path,
        checkpoint: str | Path | None = None,
        device: str = "auto",
        precision: str | None = None,
        backend: str = "auto",
        decoding: dict[str, Any] | None = None,
    ) -> Translator:
        """Load the best checkpoint of a run (else its latest, or the one named: see
        :func:`~softalign.checkpoint.resolve_checkpoint`).

        ``precision`` (fp32, bf16, fp16, auto) overrides the run's ``decoding.precision``; one
        this device cannot run is an error here rather than at the first sentence.
        ``backend`` (auto, reference, fast: see ``softalign/backend.py``) computes the model.
        ``decoding`` overrides other decoding keys (``{"max_length": 50}``)."""
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise CheckpointError(f"{run_dir}: run directory not found")
        if not (run_dir / "config.yaml").is_file():
            raise CheckpointError(f"{run_dir}: not a run directory (no config.yaml)")
        config = load_config(run_dir / "config.yaml")
        if precision is not None:
            config = config.replace(**{"decoding.precision": precision})
        if decoding:
            config = config.replace(**{f"decoding.{k}": v for k, v in decoding.items()})
        path = ckpt.resolve_checkpoint(run_dir, checkpoint)  # None, best, latest, STEP, PATH
        src_vocab, tgt_vocab = load_vocabs(run_dir, config.data.vocab.joint)
        target = pick_device(device)
        resolve_precision(config.decoding.precision, target, "decoding.precision")  # fail early
        check_model_fits(
            config.model, len(src_vocab), len(tgt_vocab), training=False, device=target
        )
        model = load_model(
            path, config.model, len(src_vocab), len(tgt_vocab), device=target, backend=backend
        )
        return cls(
            model=model,
            config=config,
            src_vocab=src_vocab,
            tgt_vocab=tgt_vocab,
            device=target,
            checkpoint=path,
        )

    def translate(
        self,
        texts: list[str],
        beam: int | None = None,
        nbest: int = 1,
        length_penalty: float | None = None,
        max_source_tokens: int | None = None,
        attention: bool = True,
        progress: Callable[[int], None] | None = None,
        prefix: list[str] | None = None,
    ) -> list[Translation]:
        """Translate a list of sentences; an empty (or blank) one gives an empty translation.

        ``prefix``: one target text per sentence (or "") that each translation must start
        with; the search continues after it (see ``decoding/prefix.py``).

        Sources longer than ``max_source_tokens`` subwords (default ``decoding.max_length``)
        are truncated, with a warning, so memory stays bounded. ``attention=False`` leaves
        the candidates' ``attention`` None and saves the search keeping it. ``beam``,
        ``nbest`` and ``length_penalty`` out of range (see :mod:`softalign.decoding.options`)
        raise ``ValueError``; ``texts`` must be a list (a str raises ``TypeError``).
        ``progress(n)`` is called as each batch of ``n`` sentences is done.
        """
        require_texts(texts, "Translator.translate")
        dec = self.config.decoding
        source = "the run's decoding.beam" if beam is None else ""
        beam = dec.beam if beam is None else beam
        check_search_options(beam, nbest, length_penalty, max_beam=None, beam_source=source)
        limit = max_source_tokens or dec.max_length
        ids = self.src_vocab.encode([t.strip() for t in texts])
        truncated = sum(len(s) > limit for s in ids)
        if truncated:
            log.warning("%d input sentence(s) over %d subwords were truncated", truncated, limit)
        ids = [s[:limit] for s in ids]
        present = [i for i, s in enumerate(ids) if s]
        found = decode_ids(
            self.model,
            [ids[i] for i in present],
            beam=beam,
            nbest=nbest,
            length_penalty=dec.length_penalty if length_penalty is None else length_penalty,
            max_length_ratio=dec.max_length_ratio,
            max_length=dec.max_length,
            batch_tokens=dec.batch_tokens,
            device=self.device,
            precision=dec.precision,
            attention=attention,
            cache=self.decoding_cache,
            progress=progress,
            prefixes=None if prefix is None else self._prefix_ids(prefix, texts, present),
        )
        if progress is not None and len(present) < len(texts):
            progress(len(texts) - len(present))  # the empty sentences
        # all hypotheses detokenized in one call: SentencePiece's per-call cost is ~100 µs
        texts_found = iter(self.tgt_vocab.decode([h.tokens for found_ in found for h in found_]))
        results = [Translation(t, []) for t in texts]
        for index, hypotheses in zip(present, found, strict=True):
            results[index] = Translation(
                source=texts[index],
                source_tokens=self.src_vocab.pieces(ids[index]),
                nbest=[self._candidate(h, next(texts_found)) for h in hypotheses],
            )
        return results

    def _prefix_ids(
        self, prefix: list[str], texts: list[str], present: list[int]
    ) -> list[list[int]]:
        """Target ids of the prefixes of the sentences ``present`` (cut to max_length)."""
        require_texts(prefix, "Translator.translate", "prefix")
        if len(prefix) != len(texts):
            raise SoftalignError(f"{len(texts)} sentences but {len(prefix)} prefixes")
        ids = self.tgt_vocab.encode([prefix[i].strip() for i in present])
        return [s[: self.config.decoding.max_length] for s in ids]

    def _candidate(self, hypothesis, text: str) -> Candidate:
        attention = None if hypothesis.attention is None else hypothesis.attention.float().numpy()
        return Candidate(
            text=text,
            score=hypothesis.score,
            target_tokens=self.tgt_vocab.pieces(hypothesis.tokens),
            attention=attention,
        )

    def translate_stream(
        self, lines: Iterable[str], chunk: int = 2000, **options
    ) -> Iterator[Translation]:
        """Translate a long stream in chunks (sorted by length inside each), in input order.

        ``lines`` is any iterable of str (a list, an open file); a str raises ``TypeError``."""
        if isinstance(lines, (str, bytes)):
            require_texts(lines, "Translator.translate_stream", "lines")
        buffer: list[str] = []
        for line in lines:
            buffer.append(line.rstrip("\r\n"))
            if len(buffer) >= chunk:
                yield from self.translate(buffer, **options)
                buffer = []
        if buffer:
            yield from self.translate(buffer, **options)
