"""Binarized data: preprocess once, read lazily; the same batches as raw text."""

import json

import numpy as np
import pytest
import torch
from tests.helpers import tiny_config

from softalign.cli import main
from softalign.config import save_config
from softalign.data.batching import collate, token_batches
from softalign.data.binarized import TokenSequences, open_train, preprocess, sequence_lengths
from softalign.data.dataset import encode_split, load_vocabs
from softalign.data.sources import load_splits
from softalign.errors import DataError
from softalign.train.loop import train


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("bin")
    preprocess(tiny_config(), out)
    return out


def test_binarized_batches_equal_raw_text_batches(data_dir):
    config = tiny_config()
    src_vocab, tgt_vocab = load_vocabs(data_dir, joint=True)
    raw = encode_split("train", load_splits(config.data)["train"], src_vocab, tgt_vocab, 100)
    binary = open_train(data_dir, joint=True)
    assert isinstance(binary.src, TokenSequences) and len(binary) == len(raw)
    assert list(sequence_lengths(binary.src)) == [len(s) for s in raw.src]
    raw_batches = token_batches(
        [len(s) for s in raw.src], [len(t) for t in raw.tgt], 600, seed=3, epoch=1
    )
    binary_batches = token_batches(
        sequence_lengths(binary.src), sequence_lengths(binary.tgt), 600, seed=3, epoch=1
    )
    assert raw_batches == binary_batches
    for indices in raw_batches[:20]:
        a, b = collate(indices, raw.src, raw.tgt), collate(indices, binary.src, binary.tgt)
        for name in ("src", "src_lengths", "tgt_in", "tgt_out"):
            assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_binarized_ids_are_memory_mapped_not_loaded(data_dir):
    binary = open_train(data_dir, joint=True)
    assert isinstance(binary.src.ids, np.memmap)
    meta = json.loads((data_dir / "meta.json").read_text())
    assert meta["pairs"] == len(binary) and binary.src.offsets[-1] == meta["src_tokens"]


def test_training_from_binarized_data_copies_its_vocabulary(data_dir, tmp_path):
    config = tiny_config(
        **{"data.binarized": str(data_dir), "data.corpus": "", "training.log_every": 5}
    )
    train(config, tmp_path / "run", max_steps=20, progress=False)
    run_model = (tmp_path / "run" / "spm.joint.model").read_bytes()
    assert run_model == (data_dir / "spm.joint.model").read_bytes()
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(x) for x in lines if "train_loss" in x]
    assert records[-1]["step"] == 20 and records[0]["train_loss"] > records[-1]["train_loss"]


def test_a_vocabulary_setting_other_than_the_preprocessed_one_is_refused(data_dir, tmp_path):
    config = tiny_config(**{"data.binarized": str(data_dir), "data.vocab.joint": False})
    with pytest.raises(DataError, match="data.vocab.joint"):
        train(config, tmp_path / "run", max_steps=2, progress=False)


def test_preprocess_command_streams_files_into_a_data_dir(tmp_path, capsys):
    (tmp_path / "train.src").write_text("a b c\nd e\n\nf g h i\n")
    (tmp_path / "train.tgt").write_text("c b a\ne d\nx\ni h g f\n")
    (tmp_path / "valid.src").write_text("a b\n")
    (tmp_path / "valid.tgt").write_text("b a\n")
    config = tiny_config(
        **{
            "data.corpus": "",
            "data.dir": str(tmp_path),
            "data.train_src": "train.src",
            "data.train_tgt": "train.tgt",
            "data.valid_src": "valid.src",
            "data.valid_tgt": "valid.tgt",
            "data.vocab.size": 20,
        }
    )
    save_config(config, tmp_path / "c.yaml")
    code = main(["preprocess", str(tmp_path / "c.yaml"), "-o", str(tmp_path / "bin")])
    assert code == 0 and "pairs: 3" in capsys.readouterr().out  # the empty pair is dropped
    binary = open_train(tmp_path / "bin", joint=True)
    vocab, _ = load_vocabs(tmp_path / "bin", joint=True)
    assert vocab.decode([list(binary.tgt[2])]) == ["i h g f"]
    assert (tmp_path / "bin" / "valid.tgt").read_text() == "b a\n"
