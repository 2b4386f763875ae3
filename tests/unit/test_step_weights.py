"""One weight-gradient product per sequence gives the gradients autograd gives step by step
(whole models: tests/unit/test_backend.py)."""

import torch
import torch.nn.functional as F

from softalign.fast.step_weights import (
    RecurrentLinear,
    StepWeight,
    one_weight_gradient_per_sequence,
)


def recurrence_grads(deferred: bool, autocast: bool = False) -> list[torch.Tensor]:
    """h_t = tanh(A [x_t ; h_{t-1}] + B h_{t-1}) over 6 steps; A a RecurrentLinear, B a slice."""
    torch.manual_seed(0)
    layer = RecurrentLinear(10, 7)
    other = torch.randn(9, 7, requires_grad=True)
    h0 = torch.randn(5, 7, requires_grad=True)
    xs = torch.randn(6, 5, 3, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        if deferred:
            with one_weight_gradient_per_sequence(layer):
                feed = StepWeight(other[1:8])
                h = h0
                for x in xs:
                    h = torch.tanh(layer(torch.cat([x, h], -1)) + feed(h))
        else:
            h = h0
            for x in xs:
                h = torch.tanh(layer(torch.cat([x, h], -1)) + F.linear(h, other[1:8]))
    (h.float() ** 2).sum().backward()
    return [layer.weight.grad, layer.bias.grad, other.grad, h0.grad, xs.grad]


def test_recurrence_gradients_match_autograd():
    for got, expected in zip(recurrence_grads(True), recurrence_grads(False), strict=True):
        assert torch.allclose(got, expected, atol=1e-5)


def test_recurrence_gradients_match_under_bf16_autocast():
    got, expected = recurrence_grads(True, autocast=True), recurrence_grads(False, autocast=True)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == torch.float32
        assert torch.allclose(g, e, rtol=0.05, atol=0.05 * float(e.abs().max()))


def test_a_step_weight_passes_gradient_only_through_its_input_without_grad_mode():
    weight = torch.randn(4, 3, requires_grad=True)
    with torch.no_grad():
        opened = StepWeight(weight)
        out = opened(torch.randn(2, 3))
    assert not opened.active and not out.requires_grad
