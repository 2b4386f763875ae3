"""From raw parallel text to id sequences: vocabularies in the run directory, encoding, and
the length filter (pairs over ``data.max_length`` subwords are dropped and counted)."""

from __future__ import annotations

import itertools
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from softalign.config import DataConfig
from softalign.data.corpus import ParallelText, drop_empty_and_long
from softalign.data.vocab import EOS_ID, UNK_ID, SubwordVocab
from softalign.data.words import WordVocab
from softalign.errors import DataError

log = logging.getLogger("softalign")

Vocab = SubwordVocab | WordVocab  # the same interface: encode, decode, pieces, len

CHARS_PER_TOKEN_LIMIT = 20  # pairs longer than max_length * this many characters skip encoding


@dataclass
class EncodedSplit:
    """Subword ids of the kept pairs, and their raw text (references for BLEU)."""

    src: list[list[int]]
    tgt: list[list[int]]
    text: ParallelText

    def __len__(self) -> int:
        return len(self.src)


def vocab_paths(run_dir: Path, joint: bool, words: bool = False) -> tuple[Path, Path]:
    """(source, target) vocabulary files of a run: SentencePiece models, or with ``words``
    the word lists of ``data.vocab.type: none``."""
    name, suffix = ("vocab", "txt") if words else ("spm", "model")
    if joint:
        return run_dir / f"{name}.joint.{suffix}", run_dir / f"{name}.joint.{suffix}"
    return run_dir / f"{name}.src.{suffix}", run_dir / f"{name}.tgt.{suffix}"


def vocab_files(run_dir: Path, joint: bool) -> list[Path]:
    """The vocabulary files a run directory holds (to copy it elsewhere)."""
    words = vocab_paths(run_dir, joint, words=True)[0].is_file()
    return sorted(set(vocab_paths(run_dir, joint, words=words)))


def train_vocabs(
    data: DataConfig, train: ParallelText, run_dir: Path, seed: int
) -> tuple[Vocab, Vocab]:
    """The vocabularies of a new run, written into ``run_dir``: SentencePiece trained on the
    training text (joint or one per side; the same text and ``seed`` give the same models),
    the user's SentencePiece models copied, or word lists of pre-segmented text
    (``type: none``)."""
    v = data.vocab
    if v.type == "none":
        src_path, tgt_path = vocab_paths(run_dir, v.joint, words=True)
        if v.joint:
            joint = WordVocab.build(train.src + train.tgt, src_path, v.size)
            return joint, joint
        return WordVocab.build(train.src, src_path, v.size), WordVocab.build(
            train.tgt, tgt_path, v.size
        )
    if v.model or v.src_model:
        return _copy_models(data, run_dir)
    train_one = lambda lines, name: SubwordVocab.train(  # noqa: E731
        lines,
        run_dir / f"spm.{name}",
        v.size,
        v.type,
        v.character_coverage,
        v.sample_sentences,
        seed,
    )
    if v.joint:
        joint = train_one(train.src + train.tgt, "joint")
        return joint, joint
    return train_one(train.src, "src"), train_one(train.tgt, "tgt")


def _copy_models(data: DataConfig, run_dir: Path) -> tuple[SubwordVocab, SubwordVocab]:
    """The user's SentencePiece models (``data.vocab.model``, or per side), checked, then
    copied into the run directory so that it stays self-describing."""
    from softalign.data.sources import resolve

    v = data.vocab
    given = [v.model] if v.model else [v.src_model, v.tgt_model]
    targets = vocab_paths(run_dir, v.joint)[: len(given)]
    for source, target in zip(given, targets, strict=True):
        SubwordVocab.load(resolve(data, source))  # a one-line error if it is not a model
        run_dir.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(resolve(data, source), tmp)
        os.replace(tmp, target)
    return load_vocabs(run_dir, v.joint)


def load_vocabs(run_dir: Path, joint: bool) -> tuple[Vocab, Vocab]:
    """A run's vocabularies: its word lists if it has them, else its SentencePiece models."""
    words = vocab_paths(run_dir, joint, words=True)[0].is_file()
    load = WordVocab.load if words else SubwordVocab.load
    src_path, tgt_path = vocab_paths(run_dir, joint, words=words)
    src = load(src_path)
    return src, (src if tgt_path == src_path else load(tgt_path))


def seen_ids(sequences: Sequence[Sequence[int]], vocab_size: int) -> list[int]:
    """The increasing ids that occur in ``sequences``, plus UNK and EOS (the words a decoder
    trained on them can learn to produce). Memory-mapped data is counted in one pass."""
    flat = getattr(sequences, "ids", None)  # binarized.TokenSequences: one flat id array
    if flat is None:
        flat = np.fromiter(itertools.chain.from_iterable(sequences), dtype=np.int64)
    counts = np.bincount(np.asarray(flat, dtype=np.int64), minlength=vocab_size)
    counts[[UNK_ID, EOS_ID]] += 1
    return np.flatnonzero(counts).tolist()


def encode_split(
    name: str,
    text: ParallelText,
    src_vocab: SubwordVocab,
    tgt_vocab: SubwordVocab,
    max_length: int | None,
) -> EncodedSplit:
    """Encode a split, dropping empty pairs and (when ``max_length``) over-long pairs."""
    max_chars = (max_length or 10**9) * CHARS_PER_TOKEN_LIMIT
    text, report = drop_empty_and_long(text, max_chars)
    src_ids, tgt_ids = src_vocab.encode(text.src), tgt_vocab.encode(text.tgt)
    kept = [
        i
        for i in range(len(src_ids))
        if max_length is None or (len(src_ids[i]) <= max_length and len(tgt_ids[i]) <= max_length)
    ]
    too_long = report.too_long + len(src_ids) - len(kept)
    if report.empty or too_long:
        log.info(
            "%s: dropped %d pairs with an empty side and %d over %s subwords; kept %d",
            name,
            report.empty,
            too_long,
            max_length,
            len(kept),
        )
    if not kept:
        raise DataError(f"{name}: no sentence pairs left after filtering")
    return EncodedSplit(
        [src_ids[i] for i in kept],
        [tgt_ids[i] for i in kept],
        ParallelText([text.src[i] for i in kept], [text.tgt[i] for i in kept]),
    )
