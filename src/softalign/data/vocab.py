"""Subword vocabularies with SentencePiece; the special ids live here and nowhere else.

Every model file is trained with ``pad=0, unk=1, bos=2, eos=3`` so that the rest of the code
can use the constants below. A model brought by the user (``data.vocab.model``) may number
its specials otherwise (SentencePiece's default is ``unk=0, bos=1, eos=2``, no pad): its ids
are then mapped onto ours (specials first, the other pieces in their order). Output ids are
decoded (detokenized) back to plain text. Pre-segmented text (``data.vocab.type: none``) uses
:class:`~softalign.data.words.WordVocab` instead, with the same interface.

Training is reproducible: a corpus larger than ``sample_sentences`` is sampled here, with a
seeded generator (:func:`seeded_sample`), and SentencePiece reads the sample in order with its
own random sampler and shuffling off. The model is handed back in memory and written by us
(atomically), so no output path is recorded in it: the same sentences and seed give the same
model bytes in any directory. (No ``.vocab`` listing is written; nothing reads it.)
"""

from __future__ import annotations

import io
import os
import random
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import sentencepiece as spm

from softalign.errors import CheckpointError

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
SPECIAL_PIECES = ("<pad>", "<unk>", "<s>", "</s>")  # in the order of the ids above


def as_utf8(text: str) -> str:
    """``text`` with lone surrogates (from undecodable bytes or a JSON ``"\\ud800"``), which
    UTF-8 cannot encode and SentencePiece refuses, replaced by U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)


def seeded_sample(sentences: Iterable[str], size: int, seed: int) -> list[str]:
    """A uniform random sample of ``size`` sentences, in corpus order (all when fewer).

    Reservoir sampling (Vitter's algorithm R) with a :class:`random.Random` of ``seed``: one
    pass, memory for ``size`` sentences, so a streamed corpus need not fit in memory.
    """
    rng = random.Random(seed)
    reservoir: list[tuple[int, str]] = []
    for index, sentence in enumerate(sentences):
        if index < size:
            reservoir.append((index, sentence))
        elif (slot := rng.randrange(index + 1)) < size:
            reservoir[slot] = (index, sentence)
    reservoir.sort()
    return [sentence for _, sentence in reservoir]


class SubwordVocab:
    """A SentencePiece model: text <-> subword ids."""

    def __init__(self, processor: spm.SentencePieceProcessor, path: Path) -> None:
        self.processor = processor
        self.path = path
        # None when the model numbers its specials as we do; else our id -> its id (-1 where
        # it lacks that special) and its id -> ours, as lists (cheap to index per token)
        self.to_model, self.from_model = _id_maps(processor)

    @classmethod
    def train(
        cls,
        sentences: Iterable[str],
        model_prefix: Path,
        vocab_size: int,
        model_type: str = "unigram",
        character_coverage: float = 1.0,
        sample_sentences: int = 1_000_000,
        seed: int = 0,
    ) -> SubwordVocab:
        """Train on ``sentences`` and write ``{model_prefix}.model``.

        ``vocab_size`` is an upper bound: small corpora get the vocabulary they can support.
        It learns from a sample of ``sample_sentences`` of them drawn with ``seed``.
        """
        model_prefix.parent.mkdir(parents=True, exist_ok=True)
        sample = seeded_sample(sentences, sample_sentences, seed)
        spm.set_random_generator_seed(seed)
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sample),
            model_writer=model,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            hard_vocab_limit=False,
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            input_sentence_size=0,  # all of the sample, in its order
            shuffle_input_sentence=False,
            num_threads=2,
            minloglevel=2,
        )
        path = Path(f"{model_prefix}.model")
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(model.getvalue())
        os.replace(tmp, path)
        return cls.load(path)

    @classmethod
    def load(cls, path: Path) -> SubwordVocab:
        if not path.is_file():
            raise CheckpointError(f"{path}: SentencePiece model not found")
        processor = spm.SentencePieceProcessor()
        try:
            processor.Load(str(path))
        except (OSError, RuntimeError) as exc:
            raise CheckpointError(f"{path}: not a valid SentencePiece model ({exc})") from None
        if processor.unk_id() < 0:
            raise CheckpointError(f"{path}: SentencePiece model without an unknown-word id")
        return cls(processor, path)

    def __len__(self) -> int:
        if self.to_model is not None:
            return len(self.to_model)
        return self.processor.get_piece_size()

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Subword ids of each text (no BOS/EOS); any str is accepted (see :func:`as_utf8`)."""
        ids = self.processor.encode([as_utf8(t) for t in texts], out_type=int)
        if self.from_model is None:
            return ids
        ours = self.from_model
        return [[ours[i] for i in seq] for seq in ids]

    def decode(self, ids: list[list[int]]) -> list[str]:
        """Detokenized text of each id sequence (special ids are dropped)."""
        theirs = self.to_model
        if theirs is None:
            return self.processor.decode([[i for i in seq if i > EOS_ID] for seq in ids])
        return self.processor.decode([[theirs[i] for i in seq if i > EOS_ID] for seq in ids])

    def pieces(self, ids: list[int]) -> list[str]:
        """The subword strings of ``ids`` (for attention labels)."""
        if self.to_model is None:
            return self.processor.id_to_piece(list(ids))
        theirs = [self.to_model[i] for i in ids]
        return [
            SPECIAL_PIECES[i] if t < 0 else self.processor.id_to_piece(t)
            for i, t in zip(ids, theirs, strict=True)
        ]


def _id_maps(processor: spm.SentencePieceProcessor) -> tuple[list[int] | None, list[int] | None]:
    """(our id -> model id, model id -> our id), or (None, None) when they are the same.

    Our ids 0..3 are the model's pad, unk, bos, eos (-1 where it has none); then come its
    other pieces in their order: with ``unk=0, bos=1, eos=2`` and no pad, model id k > 2 is
    our id k + 1."""
    specials = [processor.pad_id(), processor.unk_id(), processor.bos_id(), processor.eos_id()]
    if specials == [PAD_ID, UNK_ID, BOS_ID, EOS_ID]:
        return None, None
    size = processor.get_piece_size()
    taken = {i for i in specials if i >= 0}
    to_model = np.array(specials + [i for i in range(size) if i not in taken])
    from_model = np.full(size, UNK_ID)
    present = np.flatnonzero(to_model >= 0)
    from_model[to_model[present]] = present
    return to_model.tolist(), from_model.tolist()
