"""The data a run trains on: raw text encoded in memory, or a preprocessed (binarized)
directory read lazily through memory maps (``data.binarized``).

Rank 0 writes the vocabularies into the run directory (trained, or copied from the
binarized directory); the other ranks of a distributed run wait for it and load them.
Each step is logged before it starts (reading can take seconds, SentencePiece training more),
so a run is never silent before step 0.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from softalign.config import DataConfig, RunConfig, save_config
from softalign.data import binarized
from softalign.data.corpus import ParallelText
from softalign.data.dataset import EncodedSplit, encode_split, load_vocabs, train_vocabs
from softalign.data.sources import load_splits
from softalign.data.vocab import SubwordVocab
from softalign.errors import SoftalignError
from softalign.train.distributed import Ranks, main_first

log = logging.getLogger("softalign")


def describe_source(data: DataConfig) -> str:
    """Where a run's data comes from, for the log: a corpus name, files or a binarized dir."""
    if data.binarized:
        return f"{data.binarized} (binarized)"
    if data.corpus:
        return data.corpus
    return f"{data.train_src} + {data.train_tgt} (valid: {data.valid_src} + {data.valid_tgt})"


def describe_vocab(data: DataConfig, resume: bool, is_main: bool) -> str:
    """What happens to the vocabularies, for the log."""
    v = data.vocab
    sides = "joint" if v.joint else "one per side"
    if resume or not is_main:
        return "loading the run's vocabularies"
    if data.binarized:
        return f"copying the vocabularies of {data.binarized}"
    if v.type == "none":
        return f"word lists of pre-segmented text (at most {v.size} words, {sides})"
    if v.model or v.src_model:
        given = v.model or f"{v.src_model} + {v.tgt_model}"
        return f"copying the SentencePiece model {given}"
    return f"training SentencePiece ({v.type}, {v.size} pieces, {sides}) on the training text"


def load_data(
    config: RunConfig, run_dir: Path, resume: bool, ranks: Ranks
) -> tuple[EncodedSplit, EncodedSplit, SubwordVocab, SubwordVocab]:
    """(train, valid, source vocabulary, target vocabulary) of a run."""
    data, joint = config.data, config.data.vocab.joint
    data_dir = Path(data.binarized).expanduser() if data.binarized else None
    log.info("reading data: %s", describe_source(data))
    started = time.perf_counter()
    if data_dir is not None:
        train_pairs = binarized.read_meta(data_dir, joint)["pairs"]
        train_text = None
        valid_text = binarized.read_valid(data_dir)
    else:
        splits = load_splits(data, ("train", "valid"))
        if "valid" not in splits:
            raise SoftalignError("config: no validation data (data.valid_src/valid_tgt or corpus)")
        train_text, valid_text = splits["train"], splits["valid"]
        train_pairs = len(train_text)
    log.info(
        "read %s training pairs and %s validation pairs in %.1f s",
        f"{train_pairs:,}",
        f"{len(valid_text):,}",
        time.perf_counter() - started,
    )
    with main_first(ranks) as is_main:
        log.info("vocabulary: %s", describe_vocab(data, resume, is_main))
        if resume or not is_main:
            src_vocab, tgt_vocab = load_vocabs(run_dir, joint)
        else:
            if data_dir is not None:
                binarized.install_vocabs(data_dir, run_dir, joint)
                src_vocab, tgt_vocab = load_vocabs(run_dir, joint)
            else:
                src_vocab, tgt_vocab = train_vocabs(data, train_text, run_dir, config.training.seed)
            save_config(config, run_dir / "config.yaml")
    if data_dir is not None:
        train = binarized.open_train(data_dir, joint)
    else:
        train = encode_split("train", train_text, src_vocab, tgt_vocab, data.max_length)
    # validation decodes at most decoding.max_length words: longer pairs only cost memory
    valid = encode_split("valid", valid_text, src_vocab, tgt_vocab, config.decoding.max_length)
    if data.valid_size:
        n = data.valid_size
        valid = EncodedSplit(
            valid.src[:n], valid.tgt[:n], ParallelText(valid.text.src[:n], valid.text.tgt[:n])
        )
    return train, valid, src_vocab, tgt_vocab
