"""One weight-gradient product per sequence gives the gradients autograd gives step by step."""

import functools

import pytest
import torch
import torch.nn.functional as F
from tests.unit.test_model import VARIANTS, batch, small

import softalign.model.decoder as decoder_module
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


def model_grads(variant: dict, deferred: bool, monkeypatch) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    model = small(**variant)
    if not deferred:  # the reference: plain autograd, one weight-gradient product per step
        monkeypatch.setattr(
            decoder_module, "StepWeight", lambda w, b=None: functools.partial(F.linear, weight=w)
        )
        for module in model.modules():
            if isinstance(module, RecurrentLinear):
                module.forward = functools.partial(torch.nn.Linear.forward, module)
    src, lengths, tgt_in = batch()
    attentional, _ = model(src, lengths, tgt_in)
    (model.logits(attentional).log_softmax(-1)[..., 5].sum()).backward()
    monkeypatch.undo()
    return {name: p.grad for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize(
    "variant", VARIANTS, ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items())
)
def test_model_gradients_match_autograd(variant, monkeypatch):
    got = model_grads(variant, True, monkeypatch)
    expected = model_grads(variant, False, monkeypatch)
    assert got.keys() == expected.keys()
    for name in expected:
        assert torch.allclose(got[name], expected[name], atol=1e-5), name
