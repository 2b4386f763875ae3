"""The chunked generator + cross-entropy equals F.cross_entropy on the full logits, with
softalign's C kernel for the softmax and without it (PyTorch's operators)."""

import pytest
import torch
import torch.nn.functional as F

from softalign.fast.generator_loss import generator_cross_entropy


def loss_and_grads(fused: bool, smoothing: float, chunk_rows: int, autocast: bool = False):
    torch.manual_seed(0)
    generator = torch.nn.Linear(12, 50)
    x = torch.randn(37, 12, requires_grad=True)
    target = torch.randint(0, 50, (37,))
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        if fused:
            loss = generator_cross_entropy(x, generator, target, smoothing, chunk_rows)
        else:
            logits = generator(x).float()
            loss = F.cross_entropy(logits, target, label_smoothing=smoothing, reduction="sum")
    (loss * 0.5).backward()
    return [loss.detach(), x.grad, generator.weight.grad, generator.bias.grad]


@pytest.fixture(params=["kernel", "torch"])
def softmax_by(request, monkeypatch):
    if request.param == "torch":
        monkeypatch.setattr("softalign.fast.generator_loss.kernels", lambda: None)
    return request.param


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("chunk_rows", [5, 37, 512])
def test_equals_cross_entropy_of_the_logits(smoothing, chunk_rows, softmax_by):
    got = loss_and_grads(True, smoothing, chunk_rows)
    expected = loss_and_grads(False, smoothing, chunk_rows)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == e.dtype == torch.float32
        assert torch.allclose(g, e, rtol=1e-5, atol=1e-6)


def test_bf16_autocast_is_close_to_the_autocast_reference(softmax_by):
    got = loss_and_grads(True, 0.1, 8, autocast=True)
    expected = loss_and_grads(False, 0.1, 8, autocast=True)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == torch.float32
        assert torch.allclose(g, e, rtol=0.02, atol=0.02 * float(e.abs().max()))


def test_without_gradients_it_is_only_the_loss(softmax_by):
    generator = torch.nn.Linear(4, 9)
    x, target = torch.randn(6, 4), torch.randint(0, 9, (6,))
    with torch.no_grad():
        loss = generator_cross_entropy(x, generator, target, 0.1)
        expected = F.cross_entropy(generator(x), target, label_smoothing=0.1, reduction="sum")
    assert not loss.requires_grad
    assert torch.allclose(loss, expected)
