"""Every call of softalign's C kernels is checked in Python first: a tensor of the wrong device,
dtype, shape or layout raises ValueError naming the argument (before any pointer reaches C),
and the right call computes what PyTorch does."""

from __future__ import annotations

import pytest
import torch

from softalign.fast import native
from softalign.fast.native import MAX_ROW, calls

pytestmark = pytest.mark.skipif(
    native.kernels() is None, reason=f"no C kernels: {native.unavailable_reason()}"
)
ROWS, HIDDEN = 4, 6


def _meta(tensor: torch.Tensor) -> torch.Tensor:
    """The same tensor on a device that is not the CPU (no memory: nothing to read)."""
    return torch.empty_like(tensor, device="meta")


def _gru_forward_args() -> dict:
    torch.manual_seed(0)
    steps = torch.randn(ROWS, 2, 3 * HIDDEN)  # x: one step of a (batch, T, 3H) tensor
    return {
        "x": steps[:, 1],
        "g": torch.randn(ROWS, 3 * HIDDEN),
        "bias": torch.randn(3 * HIDDEN),
        "h": torch.randn(ROWS, HIDDEN),
        "out": torch.empty(ROWS, HIDDEN),
        "saved": torch.empty(ROWS, 4 * HIDDEN),
    }


def _gru_reference(x, g, bias, h):
    x_r, x_z, x_n = x.float().chunk(3, -1)
    g_r, g_z, g_n = (g.float() + bias).chunk(3, -1)
    reset, update = torch.sigmoid(x_r + g_r), torch.sigmoid(x_z + g_z)
    candidate = torch.tanh(x_n + reset * g_n)
    return candidate + update * (h - candidate)


@pytest.mark.parametrize(
    "name,bad,message",
    [
        ("x", lambda a: a["x"].double(), "x: expected float32 or bfloat16"),
        ("x", lambda a: a["x"][:, : 3 * HIDDEN - 3], r"x: expected shape \(4, 18\)"),
        ("x", lambda a: a["x"].t().contiguous().t(), "x: rows must be contiguous"),
        ("g", lambda a: a["g"][:, ::1].t().contiguous().t(), "g: must be contiguous"),
        ("g", _meta, "g: the kernels run on the CPU"),
        ("bias", lambda a: a["bias"][:-1], r"bias: expected shape \(18,\)"),
        ("h", lambda a: a["h"].bfloat16(), "h: expected float32"),
        ("out", lambda a: a["out"][:2], r"x: expected shape \(2, 18\)"),
        ("saved", lambda a: a["saved"][:, : 3 * HIDDEN], r"saved: expected shape \(4, 24\)"),
    ],
)
def test_gru_forward_step_refuses_a_mismatched_argument(name, bad, message):
    args = _gru_forward_args()
    args[name] = bad(args[name]) if bad is _meta else bad(args)
    with pytest.raises(ValueError, match=message):
        calls.gru_forward_step(**args)


def test_gru_forward_step_with_checked_arguments_equals_the_gates():
    args = _gru_forward_args()
    calls.gru_forward_step(**args)
    expected = _gru_reference(args["x"], args["g"], args["bias"], args["h"])
    assert torch.allclose(args["out"], expected, atol=1e-5)


def _gru_backward_args() -> dict:
    args = _gru_forward_args()
    calls.gru_forward_step(**args)
    return {
        "dout": torch.randn(ROWS, HIDDEN),
        "carry_in": None,
        "rec": torch.randn(ROWS, HIDDEN),
        "saved": args["saved"],
        "h": args["h"],
        "carry_out": torch.empty(ROWS, HIDDEN),
        "dx": torch.empty(ROWS, 2, 3 * HIDDEN)[:, 0],
        "dg": torch.empty(ROWS, 3 * HIDDEN),
        "db": torch.zeros(3 * HIDDEN),
    }


@pytest.mark.parametrize(
    "name,bad,message",
    [
        ("saved", lambda t: t[:, :-1], r"saved: expected shape \(4, 24\)"),
        ("rec", lambda t: t.bfloat16(), "rec: expected float32"),  # dg is fp32
        ("dx", lambda t: t.t(), r"dx: expected shape \(4, 18\)"),
        ("dg", lambda t: t.long(), "dg: expected float32 or bfloat16"),
        ("db", lambda t: t.view(3, HIDDEN), r"db: expected shape \(18,\)"),
        ("carry_out", _meta, "carry_out: the kernels run on the CPU"),
        ("dout", lambda t: t.t().contiguous().t(), "dout: rows must be contiguous"),
        ("carry_out", lambda t: t.double(), "carry_out: expected float32"),
    ],
)
def test_gru_backward_step_refuses_a_mismatched_argument(name, bad, message):
    args = _gru_backward_args()
    args[name] = bad(args[name])
    with pytest.raises(ValueError, match=message):
        calls.gru_backward_step(**args)


def test_gru_backward_step_with_checked_arguments_equals_autograd():
    forward = _gru_forward_args()
    args = _gru_backward_args()
    calls.gru_backward_step(**args)
    x, g, h = (forward[key].clone().requires_grad_() for key in ("x", "g", "h"))
    bias = forward["bias"].clone().requires_grad_()
    total = args["dout"] + args["rec"]
    grads = torch.autograd.grad(_gru_reference(x, g, bias, h), [x, g, bias], total)
    assert torch.allclose(args["dx"], grads[0], atol=1e-5)
    assert torch.allclose(args["dg"], grads[1], atol=1e-5)
    assert torch.allclose(args["db"], grads[2], atol=1e-5)


def test_gru_refuses_a_hidden_size_its_stack_rows_cannot_hold():
    hidden = calls.MAX_HIDDEN + 1
    with pytest.raises(ValueError, match="hidden must be in"):
        calls.gru_forward_step(
            torch.empty(1, 3 * hidden),
            torch.empty(1, 3 * hidden),
            None,
            None,
            torch.empty(1, hidden),
        )


def _attention():
    torch.manual_seed(0)
    return torch.randn(2, 3, 8), torch.randn(2, 5, 8), torch.randn(8)


@pytest.mark.parametrize(
    "index,bad,message",
    [
        (0, lambda t: t.bfloat16(), "query: expected float32"),
        (0, lambda t: t[0], "query: expected a 3-D tensor"),
        (1, lambda t: t[:, :, :7], r"keys: expected shape \(2, 5, 8\)"),
        (1, lambda t: t.transpose(1, 2).contiguous().transpose(1, 2), "keys: must be contiguous"),
        (2, lambda t: t[:4], r"v: expected shape \(8,\)"),
        (2, _meta, "v: the kernels run on the CPU"),
    ],
)
def test_additive_scores_refuse_a_mismatched_argument(index, bad, message):
    args = list(_attention())
    args[index] = bad(args[index])
    with pytest.raises(ValueError, match=message):
        calls.additive_scores(*args, keep=True)


def test_additive_scores_and_backward_with_checked_arguments_equal_autograd():
    query, keys, v = (t.requires_grad_() for t in _attention())
    scores, energies = calls.additive_scores(query.detach(), keys.detach(), v.detach(), True)
    expected = torch.tanh(query.unsqueeze(2) + keys.unsqueeze(1)) @ v
    assert torch.allclose(scores, expected, atol=1e-5)
    grad_scores = torch.randn_like(scores)
    grads = calls.additive_scores_backward(grad_scores, energies, v.detach())
    expected_grads = torch.autograd.grad(expected, [query, keys, v], grad_scores)
    for got, want in zip(grads, expected_grads, strict=True):
        assert torch.allclose(got, want, atol=1e-5)
    with pytest.raises(ValueError, match=r"grad_scores: expected shape \(2, 3, 5\)"):
        calls.additive_scores_backward(grad_scores[:, :2], energies, v.detach())
    with pytest.raises(ValueError, match="energies: expected float32"):
        calls.additive_scores_backward(grad_scores, energies.bfloat16(), v.detach())


def _chunk():
    torch.manual_seed(0)
    return torch.randn(6, 11), torch.tensor([3, 0, 10, 7]), torch.zeros(11)


@pytest.mark.parametrize(
    "name,bad,message",
    [
        ("logits", lambda t: t.half(), "logits: expected float32 or bfloat16"),
        ("logits", lambda t: t.t().contiguous().t(), "logits: must be contiguous"),
        ("targets", lambda t: t.int(), "targets: expected int64"),
        ("targets", lambda t: t[:3], r"targets: expected shape \(4,\)"),
        ("targets", lambda t: t + 1, r"targets: must be in \[0, 11\)"),
        ("targets", lambda t: t - 1, r"targets: must be in \[0, 11\)"),
        ("grad_b", lambda t: t[:10], r"grad_b: expected shape \(11,\)"),
        ("grad_b", _meta, "grad_b: the kernels run on the CPU"),
    ],
)
def test_cross_entropy_chunk_refuses_a_mismatched_argument(name, bad, message):
    logits, targets, grad_b = _chunk()
    args = {"logits": logits, "targets": targets, "grad_b": grad_b}
    args[name] = bad(args[name])
    with pytest.raises(ValueError, match=message):
        calls.cross_entropy_chunk(args["logits"], 4, args["targets"], 0.1, args["grad_b"])


def test_cross_entropy_chunk_with_checked_arguments_equals_torch():
    logits, targets, grad_b = _chunk()
    expected = torch.nn.functional.cross_entropy(
        logits[:4], targets, label_smoothing=0.1, reduction="sum"
    )
    probabilities = torch.softmax(logits[:4], -1)
    loss = calls.cross_entropy_chunk(logits, 4, targets, 0.1, grad_b)
    assert loss == pytest.approx(expected.item(), abs=1e-4)
    expected_g = probabilities - 0.9 * torch.nn.functional.one_hot(targets, 11)
    assert torch.allclose(logits[:4], expected_g, atol=1e-6)  # G over the logits
    assert torch.equal(logits[4:], torch.zeros(2, 11))  # padding rows: no gradient
    assert torch.allclose(grad_b, expected_g.sum(0), atol=1e-6)
    with pytest.raises(ValueError, match=r"real must be in \[0, 6\]"):
        calls.cross_entropy_chunk(logits, 7, torch.zeros(7, dtype=torch.long), 0.1)


@pytest.mark.parametrize(
    "bad,message",
    [
        (lambda t: t.double(), "logits: expected float32 or bfloat16"),
        (lambda t: t[:, ::2], "logits: must be contiguous"),
        (lambda t: t[0], "logits: expected a 2-D tensor"),
        (_meta, "logits: the kernels run on the CPU"),
    ],
)
def test_best_words_refuses_mismatched_logits(bad, message):
    logits = torch.randn(5, 40)
    with pytest.raises(ValueError, match=message):
        calls.best_words(bad(logits), 3)


def test_best_words_refuses_a_bad_k_bias_or_vocabulary():
    logits = torch.randn(5, 40)
    with pytest.raises(ValueError, match=r"k must be in \[1, 40\]"):
        calls.best_words(logits, 41)
    with pytest.raises(ValueError, match=r"bias: expected shape \(40,\)"):
        calls.best_words(logits, 3, torch.randn(39))
    with pytest.raises(ValueError, match="bias: expected float32"):
        calls.best_words(logits, 3, torch.randn(40).bfloat16())
    with pytest.raises(ValueError, match="vocabulary must be in"):
        calls.best_words(torch.empty(1, MAX_ROW + 1, device="meta"), 3)


def test_best_words_with_checked_arguments_equals_torch_even_with_masked_words():
    torch.manual_seed(0)
    logits = torch.randn(5, 40) * 3
    logits[:, ::4] = float("-inf")  # forbidden words: infinities are defined for the kernels
    values, columns = calls.best_words(logits, 3)
    expected, expected_columns = torch.log_softmax(logits, -1).topk(3, -1)
    assert torch.allclose(values, expected, atol=1e-5)
    assert torch.equal(columns, expected_columns)


def test_a_nan_row_still_gets_k_words_within_the_vocabulary():
    logits = torch.randn(3, 50)
    logits[1] = float("nan")
    logits[2, 7] = float("nan")
    _, columns = calls.best_words(logits, 5)
    assert ((columns >= 0) & (columns < 50)).all()
