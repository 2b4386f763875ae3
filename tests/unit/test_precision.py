"""Mixed precision: bf16 autocast on the CPU, fp16 refused without CUDA, config checks."""

import json

import pytest
import torch
from tests.helpers import tiny_config

from softalign.errors import ConfigError, SoftalignError
from softalign.precision import Precision
from softalign.train.loop import train


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


def test_shape_stable_products_pad_rows_only_in_cpu_low_precision_decoding(monkeypatch):
    """Without gradients under bf16 autocast, products run on rows padded to a few shapes
    (oneDNN builds a kernel per shape) and return exactly the unpadded rows' results."""
    from softalign.fast import low_precision
    from softalign.fast.low_precision import ShapeStableLinear, padding_rows

    assert [padding_rows(n, True) for n in (1, 16, 17, 64, 65, 128)] == [15, 0, 15, 0, 63, 0]
    assert padding_rows(65, False) == 0
    # decoding: the encoder's B·S rows (≈ the token budget) in multiples of 512 above 1,024
    coarse = [padding_rows(n, True, coarse=True) for n in (65, 1000, 1025, 1900)]
    assert coarse == [63, 24, 511, 148]
    torch.manual_seed(0)
    layer = ShapeStableLinear(32, 24)
    x = torch.randn(5, 70, 32)
    calls = []
    product = low_precision.packed_linear

    def spy(inp, weight, bias, dtype):
        calls.append(inp.shape)
        return product(inp, weight, bias, dtype)

    monkeypatch.setattr(low_precision, "packed_linear", spy)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        padded = layer(x)
        reference = torch.nn.functional.linear(x, layer.weight, layer.bias)
    with torch.no_grad():
        full = layer(x)  # fp32: no padding
    assert calls == [(384, 32)]  # 350 rows -> 6 × 64; fp32 is a plain F.linear
    assert padded.shape == (5, 70, 24) and padded.dtype == torch.bfloat16
    assert torch.allclose(padded.float(), reference.float(), rtol=1e-2, atol=1e-2)
    assert torch.allclose(full, torch.nn.functional.linear(x, layer.weight, layer.bias))


def test_joined_parts_give_the_product_of_their_concatenation():
    """``ShapeStableLinear.joined(a, b)`` is ``layer(cat([a, b], -1))``: with gradients, in fp32
    decoding, and in bf16 decoding (cast, joined and padded in one copy each)."""
    from softalign.fast.low_precision import ShapeStableLinear

    torch.manual_seed(0)
    layer = ShapeStableLinear(12, 7)
    a, b = torch.randn(5, 3, 4), torch.randn(5, 3, 8)
    whole = layer(torch.cat([a, b], -1))
    assert torch.allclose(layer.joined(a, b), whole)
    with torch.no_grad():
        assert torch.allclose(layer.joined(a, b), whole)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = layer.joined(a, b)
    assert low.shape == (5, 3, 7) and low.dtype == torch.bfloat16
    assert torch.allclose(low.float(), whole, atol=3e-2)
