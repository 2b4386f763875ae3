"""Binarized corpora: tokenize once, then train from memory-mapped arrays.

``softalign preprocess CONFIG.yaml -o DATA_DIR`` trains the SentencePiece models, encodes the
training pairs in chunks (never the whole corpus in memory when it comes from files) and
writes::

    DATA_DIR/meta.json               format, id dtype, pair and token counts, settings used
    DATA_DIR/spm.joint.model         (or spm.src.model + spm.tgt.model) the vocabularies
    DATA_DIR/train.{src,tgt}.ids     every sentence's ids, concatenated (raw uint16/int32)
    DATA_DIR/train.{src,tgt}.idx.npy (n + 1,) int64 offsets: pair i is ids[idx[i]:idx[i+1]]
    DATA_DIR/valid.{src,tgt}         validation text (small; BLEU needs the raw references)

Training with ``data.binarized: DATA_DIR`` memory-maps the id files: a batch reads only its
own sentences, so memory stays flat as the corpus grows (the per-pair offsets and lengths,
16 bytes a pair, are all that scales with it).
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from collections.abc import Iterator, Sequence
from itertools import chain
from pathlib import Path

import numpy as np
from tqdm import tqdm

from softalign.config import RunConfig
from softalign.data.corpus import ParallelText, drop_empty_and_long, iter_lines, read_parallel
from softalign.data.dataset import CHARS_PER_TOKEN_LIMIT, EncodedSplit, vocab_paths
from softalign.data.sources import load_source, load_splits, resolve
from softalign.data.vocab import SubwordVocab
from softalign.errors import ConfigError, DataError

log = logging.getLogger("softalign")

FORMAT = "softalign-binarized-1"
CHUNK_PAIRS = 50_000


class TokenSequences(Sequence):
    """A read-only list of id sequences backed by a memory-mapped array; ``seqs[i]`` is a
    NumPy view (no copy until a batch is padded)."""

    def __init__(self, ids: np.ndarray, offsets: np.ndarray) -> None:
        self.ids = ids
        self.offsets = offsets

    @property
    def lengths(self) -> np.ndarray:
        """(n,) int64 sentence lengths, from the offsets alone."""
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]
        return self.ids[self.offsets[index] : self.offsets[index + 1]]


def sequence_lengths(seqs: Sequence[Sequence[int]]) -> Sequence[int]:
    """Lengths of every sequence; from the index alone for memory-mapped data."""
    if isinstance(seqs, TokenSequences):
        return seqs.lengths
    return [len(s) for s in seqs]


# ------------------------------------------------------------------------------ writing


def _train_text_chunks(config: RunConfig) -> Iterator[ParallelText]:
    """The training pairs in chunks: streamed from files, or cut from a built-in source."""
    data = config.data
    if data.corpus:
        train = load_source(data.corpus)["train"]
        for start in range(0, len(train), CHUNK_PAIRS):
            end = start + CHUNK_PAIRS
            yield ParallelText(train.src[start:end], train.tgt[start:end])
        return
    src_path, tgt_path = resolve(data, data.train_src), resolve(data, data.train_tgt)
    src_lines, tgt_lines = iter_lines(src_path), iter_lines(tgt_path)
    src: list[str] = []
    tgt: list[str] = []
    for s, t in zip(src_lines, tgt_lines, strict=False):
        src.append(s)
        tgt.append(t)
        if len(src) == CHUNK_PAIRS:
            yield ParallelText(src, tgt)
            src, tgt = [], []
    if next(src_lines, None) is not None or next(tgt_lines, None) is not None:
        raise DataError(f"{src_path} and {tgt_path}: different numbers of lines")
    if src:
        yield ParallelText(src, tgt)


def _train_pairs(config: RunConfig) -> int | None:
    """The number of training pairs, for the progress bar: lines of a plain source file
    (None for a built-in corpus or gzip, whose count would cost a pass of its own)."""
    data = config.data
    if data.corpus:
        return None
    path = Path(resolve(data, data.train_src))
    if path.suffix == ".gz":
        return None
    try:
        with open(path, "rb") as handle:
            return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
    except OSError:
        return None  # reading the chunks reports it


def _train_vocabs(config: RunConfig, out_dir: Path) -> tuple[SubwordVocab, SubwordVocab]:
    v = config.data.vocab
    if v.type == "none" or v.model or v.src_model:
        key = "data.vocab.type" if v.type == "none" else "data.vocab.model"
        raise ConfigError(f"config key '{key}': preprocess trains SentencePiece models only")
    src_sentences = lambda: (s for chunk in _train_text_chunks(config) for s in chunk.src)  # noqa: E731
    tgt_sentences = lambda: (t for chunk in _train_text_chunks(config) for t in chunk.tgt)  # noqa: E731
    train = lambda lines, name: SubwordVocab.train(  # noqa: E731
        lines,
        out_dir / f"spm.{name}",
        v.size,
        v.type,
        v.character_coverage,
        v.sample_sentences,
        config.training.seed,
    )
    if v.joint:
        joint = train(chain(src_sentences(), tgt_sentences()), "joint")
        return joint, joint
    return train(src_sentences(), "src"), train(tgt_sentences(), "tgt")


def preprocess(config: RunConfig, out_dir: Path, *, progress: bool = False) -> dict[str, int]:
    """Tokenize the config's training data into ``out_dir``; returns the counts.
    ``progress`` shows a bar of the pairs encoded on stderr (after the vocabularies)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    valid = load_splits(config.data, ("valid",)).get("valid")
    if valid is None:
        raise DataError("config: no validation data (data.valid_src/valid_tgt or corpus)")
    if progress:
        print("training the SentencePiece vocabularies…", file=sys.stderr, flush=True)
    src_vocab, tgt_vocab = _train_vocabs(config, out_dir)
    dtype = np.uint16 if max(len(src_vocab), len(tgt_vocab)) <= 65535 else np.int32
    max_length = config.data.max_length
    offsets: dict[str, list[int]] = {"src": [0], "tgt": [0]}
    counts = {"pairs": 0, "dropped": 0}
    files = {side: open(out_dir / f"train.{side}.ids", "wb") for side in ("src", "tgt")}  # noqa: SIM115
    bar = tqdm(
        total=_train_pairs(config) if progress else None,
        desc="encoding",
        unit=" pairs",
        disable=not progress,
        file=sys.stderr,
        leave=False,
    )
    try:
        for chunk in _train_text_chunks(config):
            bar.update(len(chunk))
            text, _ = drop_empty_and_long(chunk, max_length * CHARS_PER_TOKEN_LIMIT)
            src_ids, tgt_ids = src_vocab.encode(text.src), tgt_vocab.encode(text.tgt)
            counts["dropped"] += len(chunk) - len(text)
            for s, t in zip(src_ids, tgt_ids, strict=True):
                if len(s) > max_length or len(t) > max_length:
                    counts["dropped"] += 1
                    continue
                for side, ids in (("src", s), ("tgt", t)):
                    files[side].write(np.asarray(ids, dtype=dtype).tobytes())
                    offsets[side].append(offsets[side][-1] + len(ids))
                counts["pairs"] += 1
    finally:
        bar.close()
        for handle in files.values():
            handle.close()
    if not counts["pairs"]:
        raise DataError("train: no sentence pairs left after filtering")
    for side in ("src", "tgt"):
        np.save(out_dir / f"train.{side}.idx.npy", np.asarray(offsets[side], dtype=np.int64))
        counts[f"{side}_tokens"] = offsets[side][-1]
    (out_dir / "valid.src").write_text("".join(s + "\n" for s in valid.src), encoding="utf-8")
    (out_dir / "valid.tgt").write_text("".join(t + "\n" for t in valid.tgt), encoding="utf-8")
    meta = {
        "format": FORMAT,
        "dtype": np.dtype(dtype).name,
        "joint_vocab": config.data.vocab.joint,
        "max_length": max_length,
        "valid_pairs": len(valid),
        **counts,
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return {k: v for k, v in meta.items() if isinstance(v, int) and not isinstance(v, bool)}


# ------------------------------------------------------------------------------ reading


def read_meta(data_dir: Path, joint: bool) -> dict:
    path = data_dir / "meta.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(
            f"data.binarized: {path}: not a preprocessed directory ({exc}); "
            "run softalign preprocess"
        ) from None
    if meta.get("format") != FORMAT:
        raise DataError(f"data.binarized: {path}: unknown format {meta.get('format')!r}")
    if meta.get("joint_vocab") != joint:
        raise DataError(
            f"data.binarized: {data_dir} was preprocessed with data.vocab.joint="
            f"{str(meta.get('joint_vocab')).lower()}; set the same in the config"
        )
    return meta


def install_vocabs(data_dir: Path, run_dir: Path, joint: bool) -> None:
    """Copy the preprocessed data's SentencePiece models into the run directory."""
    for source, target in zip(vocab_paths(data_dir, joint), vocab_paths(run_dir, joint)):  # noqa: B905
        if not source.is_file():
            raise DataError(f"data.binarized: {source} is missing")
        shutil.copyfile(source, target)


def open_train(data_dir: Path, joint: bool) -> EncodedSplit:
    """The training split, memory-mapped (its ``text`` is empty: only ids are stored)."""
    meta = read_meta(data_dir, joint)
    sides = []
    for side in ("src", "tgt"):
        offsets = np.load(data_dir / f"train.{side}.idx.npy", mmap_mode="r")
        ids = np.memmap(data_dir / f"train.{side}.ids", dtype=meta["dtype"], mode="r")
        if len(offsets) != meta["pairs"] + 1 or offsets[-1] != len(ids):
            raise DataError(f"data.binarized: {data_dir}/train.{side}.*: truncated or mismatched")
        sides.append(TokenSequences(ids, offsets))
    return EncodedSplit(sides[0], sides[1], ParallelText([], []))  # type: ignore[arg-type]


def read_valid(data_dir: Path) -> ParallelText:
    return read_parallel(data_dir / "valid.src", data_dir / "valid.tgt")
