"""``softalign evaluate``: translate a test set and score it (BLEU, chrF, perplexity)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from softalign.metrics import score_corpus
from softalign.outputs import write_text


def evaluate_files(
    run_dir: str | Path,
    src_path: str | Path,
    ref_path: str | Path,
    *,
    beam: int | None = None,
    length_penalty: float | None = None,
    device: str = "auto",
    backend: str = "auto",
    hypotheses_path: str | Path | None = None,
    precision: str | None = None,
    progress: bool = False,
    checkpoint: str | Path | None = None,
    decoding: dict[str, Any] | None = None,
) -> dict[str, float | str | int]:
    """Translate ``src_path`` and score it against ``ref_path``: BLEU, chrF, perplexity.

    ``hypotheses_path`` is written whole or not at all (see :mod:`softalign.outputs`);
    ``progress`` shows a bar of the sentences translated on stderr; ``checkpoint`` and
    ``decoding`` are :meth:`Translator.load`'s."""
    from softalign.data.corpus import read_parallel
    from softalign.loss import corpus_loss
    from softalign.translator import Translator

    translator = Translator.load(
        run_dir,
        checkpoint,
        device=device,
        backend=backend,
        precision=precision,
        decoding=decoding,
    )
    pairs = read_parallel(src_path, ref_path)
    started = time.perf_counter()
    with tqdm(
        total=len(pairs), unit=" sentences", disable=not progress, file=sys.stderr, leave=False
    ) as bar:
        translations = translator.translate(
            pairs.src,
            beam=beam,
            length_penalty=length_penalty,
            attention=False,
            progress=bar.update,
        )
    seconds = time.perf_counter() - started
    hypotheses = [t.text for t in translations]
    if hypotheses_path:
        write_text(hypotheses_path, "".join(h + "\n" for h in hypotheses))
    scores = score_corpus(hypotheses, pairs.tgt)
    kept = [
        i
        for i, (s, t) in enumerate(zip(pairs.src, pairs.tgt, strict=True))
        if s.strip() and t.strip()
    ]
    src_ids = translator.src_vocab.encode([pairs.src[i].strip() for i in kept])
    tgt_ids = translator.tgt_vocab.encode([pairs.tgt[i].strip() for i in kept])
    limit = translator.config.decoding.max_length  # both sides cut: memory stays bounded
    _, ppl = corpus_loss(
        translator.model,
        [s[:limit] for s in src_ids],
        [t[:limit] for t in tgt_ids],
        translator.config.training.batch_tokens,
        translator.device,
    )
    return {
        **scores.as_dict(),
        "ppl": round(ppl, 3),
        "sentences": len(hypotheses),
        "beam": beam or translator.config.decoding.beam,
        "decode_seconds": round(seconds, 2),
        "checkpoint": str(translator.checkpoint),
    }
