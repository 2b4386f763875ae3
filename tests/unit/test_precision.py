"""Mixed precision: bf16 autocast on the CPU, fp16 refused without CUDA, config checks."""

import json

import pytest
import torch
from tests.helpers import tiny_config

from softalign.errors import ConfigError, SoftalignError
from softalign.train.loop import train
from softalign.train.precision import Precision


def test_bf16_autocast_runs_matrix_multiplies_in_bf16_on_cpu():
    precision = Precision("bf16", torch.device("cpu"))
    layer = torch.nn.Linear(4, 3)
    with precision.autocast():
        out = layer(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16 and layer.weight.dtype == torch.float32
    assert precision.scaler is None and precision.state_dict() == {}


def test_bf16_training_on_cpu_lowers_the_loss_and_keeps_fp32_weights(tmp_path):
    config = tiny_config(**{"training.precision": "bf16", "training.valid_every": 30})
    train(config, tmp_path / "run", max_steps=60, progress=False)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    losses = [json.loads(x)["train_loss"] for x in lines if "train_loss" in x]
    assert all(loss == loss for loss in losses) and losses[-1] < losses[0] - 0.1
    valid = [json.loads(x)["valid_loss"] for x in lines if "valid_loss" in x]
    assert len(valid) == 2 and valid[1] < valid[0]


def test_fp16_needs_cuda():
    with pytest.raises(SoftalignError, match="fp16 needs a CUDA device"):
        Precision("fp16", torch.device("cpu"))


@pytest.mark.parametrize(
    ("key", "value"), [("training.precision", "fp8"), ("training.accumulate", 0)]
)
def test_bad_precision_or_accumulation_names_the_key(key, value):
    with pytest.raises(ConfigError, match=key):
        tiny_config(**{key: value})
