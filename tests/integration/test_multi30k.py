"""A few hundred steps on a real Multi30k slice: validation loss falls, translations come out."""

import json

import pytest

from softalign.config import from_dict
from softalign.train.loop import train
from softalign.translator import Translator


@pytest.mark.slow
def test_small_multi30k_run_learns(shared_data, tmp_path):
    config = from_dict(
        {
            "data": {
                "dir": str(shared_data / "multi30k"),
                "train_src": "train.en.gz",
                "train_tgt": "train.de.gz",
                "valid_src": "val.en.gz",
                "valid_tgt": "val.de.gz",
                "valid_size": 200,
                "max_length": 40,
                "vocab": {"size": 2000, "joint": True},
            },
            "model": {
                "embedding_size": 64,
                "encoder_hidden": 64,
                "encoder_layers": 1,
                "decoder_hidden": 128,
                "attention_size": 64,
                "output_size": 128,
            },
            "training": {
                "max_steps": 200,
                "valid_every": 100,
                "checkpoint_every": 100,
                "batch_tokens": 1500,
                "valid_bleu": False,
            },
        }
    )
    train(config, tmp_path / "run", progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    valid = [r["valid_loss"] for r in records if "valid_loss" in r]
    assert valid[-1] < valid[0] < 7.0
    [result] = Translator.load(tmp_path / "run").translate(["A man is riding a bike."], beam=3)
    assert result.text and result.attention.shape[0] == len(result.target_tokens)
