"""Mixed precision: bf16 autocast on the CPU, fp16 refused without CUDA, config checks."""

import json
import logging
from dataclasses import replace

import pytest
import torch
from tests.helpers import needs_bf16_products, tiny_config, tiny_model
from tests.reliability.clicheck import fails_cleanly

from softalign import capabilities, precision
from softalign.capabilities import Probe
from softalign.cli import build_parser
from softalign.decoding.search import decode_ids
from softalign.errors import ConfigError, SoftalignError
from softalign.precision import Precision, resolve_precision
from softalign.train.loop import train

needs_bf16 = needs_bf16_products()


@needs_bf16
def test_bf16_autocast_runs_matrix_multiplies_in_bf16_on_cpu():
    precision = Precision("bf16", torch.device("cpu"))
    layer = torch.nn.Linear(4, 3)
    with precision.autocast():
        out = layer(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16 and layer.weight.dtype == torch.float32
    assert precision.scaler is None and precision.state_dict() == {}


@needs_bf16
def test_bf16_training_on_cpu_lowers_the_loss_and_keeps_fp32_weights(tmp_path):
    config = tiny_config(**{"training.precision": "bf16", "training.valid_every": 30})
    train(config, tmp_path / "run", max_steps=60, progress=False)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    losses = [json.loads(x)["train_loss"] for x in lines if "train_loss" in x]
    assert all(loss == loss for loss in losses) and losses[-1] < losses[0] - 0.1
    valid = [json.loads(x)["valid_loss"] for x in lines if "valid_loss" in x]
    assert len(valid) == 2 and valid[1] < valid[0]


def test_fp16_needs_cuda():
    with pytest.raises(SoftalignError, match="training.precision fp16 needs a CUDA device"):
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


# precision names resolved for a device: auto, and what a CPU without bf16 support does

HERE = capabilities.cpu()
AMX_CPU = replace(
    HERE,
    machine="x86_64",
    features=("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "amx_bf16"),
    onednn_isa_cap=None,
    onednn_bf16=Probe(True),
    onednn_packing=Probe(True),
    bf16_hardware=("amx_bf16",),
)
AVX2_CPU = replace(
    AMX_CPU,
    features=("avx2", "fma"),
    onednn_packing=Probe(False, "RuntimeError: bf16 path needs the cpu support avx_ne_convert"),
    bf16_hardware=(),
)
NO_BF16_CPU = replace(AVX2_CPU, onednn_bf16=Probe(False, "RuntimeError: no bf16 gemm"))
CPU = torch.device("cpu")


def test_auto_is_bf16_with_hardware_bf16_and_fp32_without():
    assert resolve_precision("auto", CPU, cpu=AMX_CPU) == "bf16"
    assert resolve_precision("auto", CPU, cpu=AVX2_CPU) == "fp32"
    assert resolve_precision("auto", CPU, cpu=NO_BF16_CPU) == "fp32"
    assert resolve_precision("fp32", CPU, cpu=AMX_CPU) == "fp32"
    here = "bf16" if HERE.bf16_hardware and HERE.onednn_bf16.works else "fp32"
    assert resolve_precision("auto", CPU) == here == Precision("auto", CPU).name


def test_bf16_where_onednn_cannot_compute_it_is_one_line_naming_the_feature_and_the_way_out():
    with pytest.raises(SoftalignError) as error:
        resolve_precision("bf16", CPU, "decoding.precision", cpu=NO_BF16_CPU)
    message = str(error.value)
    assert message.startswith(
        "decoding.precision bf16 needs a CPU with AVX-512 BW/VL/DQ or AVX-NE-CONVERT "
        "(this one: AVX2;"
    )
    assert message.endswith("use fp32 or precision auto") and "\n" not in message
    arm = replace(NO_BF16_CPU, machine="aarch64", features=("asimd",))
    with pytest.raises(SoftalignError, match="needs a CPU with the BF16 extension"):
        resolve_precision("bf16", CPU, cpu=arm)


def test_bf16_without_hardware_bf16_runs_with_one_warning_that_it_is_slower(caplog):
    precision._warn_once.cache_clear()
    with caplog.at_level(logging.WARNING, logger="softalign"):
        assert resolve_precision("bf16", CPU, cpu=AVX2_CPU) == "bf16"
        assert resolve_precision("bf16", CPU, cpu=AVX2_CPU) == "bf16"
    assert [r.getMessage() for r in caplog.records if "slower than fp32" in r.getMessage()] == [
        "precision bf16: this CPU (AVX2) has no hardware bf16 (AMX, AVX-512 BF16 or "
        "AVX-NE-CONVERT), so bf16 runs slower than fp32 here; precision auto picks fp32"
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="softalign"):
        assert resolve_precision("bf16", CPU, cpu=AMX_CPU) == "bf16"
    assert not caplog.records


def test_unknown_precision_names_the_key_and_the_choices():
    with pytest.raises(SoftalignError, match=r"training.precision: unknown precision 'fp8' \("):
        Precision("fp8", CPU)
    # every name a config may hold means something here: a dtype, or auto
    assert precision.NAMES == ("fp32", "bf16", "fp16", "auto")
    assert [*precision.PRECISIONS, "auto"] == list(precision.NAMES)


def test_config_and_command_line_accept_auto():
    config = tiny_config(**{"training.precision": "auto", "decoding.precision": "auto"})
    assert config.training.precision == config.decoding.precision == "auto"
    args = build_parser().parse_args(["translate", "RUN", "--precision", "auto"])
    assert args.precision == "auto"


def test_decoding_with_auto_finds_what_its_resolved_precision_finds():
    model = tiny_model()
    torch.manual_seed(1)
    src = [torch.randint(4, 20, (n,)).tolist() for n in (7, 5, 3)]
    auto = decode_ids(model, src, beam=2, max_length=10, precision="auto")
    resolved = resolve_precision("auto", CPU)
    same = decode_ids(model, src, beam=2, max_length=10, precision=resolved)
    assert [h[0].tokens for h in auto] == [h[0].tokens for h in same]
    assert [h[0].score for h in auto] == [h[0].score for h in same]


def test_bf16_on_a_cpu_that_cannot_run_it_is_one_line_from_the_command_line(
    tiny_run, tmp_path, monkeypatch
):
    source = tmp_path / "in.txt"
    source.write_text("ba de\n", encoding="utf-8")
    monkeypatch.setattr(capabilities, "cpu", lambda: NO_BF16_CPU)
    line = fails_cleanly(
        "translate", tiny_run, "-i", source, "--device", "cpu", "--precision", "bf16"
    )
    assert "decoding.precision bf16 needs a CPU with AVX-512 BW/VL/DQ" in line
    assert line.endswith("use fp32 or precision auto")


@pytest.mark.parametrize(
    ("gpu", "capability", "auto"), [("NVIDIA A100", (8, 0), "bf16"), ("Tesla V100", (7, 0), "fp32")]
)
def test_cuda_auto_is_bf16_with_bf16_tensor_cores_and_bf16_without_is_an_error(
    monkeypatch, gpu, capability, auto
):
    """Resolution on CUDA reads the device's compute capability (faked here: no GPU needed)."""
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: gpu)
    cuda = torch.device("cuda")
    assert resolve_precision("auto", cuda) == auto
    assert resolve_precision("fp16", cuda) == "fp16" and resolve_precision("fp32", cuda) == "fp32"
    if auto == "fp32":
        with pytest.raises(SoftalignError, match=r"compute capability 8.0 or later \(Tesla V100"):
            resolve_precision("bf16", torch.device("cuda", 0))
    else:
        assert resolve_precision("bf16", torch.device("cuda", 0)) == "bf16"
