"""The CPU dropout: kept with probability ≈ 1-p, unbiased, gradient through the same mask."""

import pytest
import torch
import torch.nn.functional as F

from softalign.fast.dropout import LEVELS, MIN_ELEMENTS, Dropout, dropout


def test_keeps_one_minus_p_of_the_elements_at_every_position_parity_and_is_unbiased():
    torch.manual_seed(0)
    x = torch.full((1000, 1000), 2.0)
    y = dropout(x, 0.2)
    kept = y != 0
    q = round(0.8 * LEVELS) / LEVELS
    flat = kept.flatten().float()
    # the two halves of each 32-bit draw (even and odd elements) are both uniform
    assert flat[0::2].mean().item() == pytest.approx(q, abs=2e-3)
    assert flat[1::2].mean().item() == pytest.approx(q, abs=2e-3)
    assert torch.allclose(y[kept], torch.tensor(2.0 / q))  # scaled by 1/q
    assert y.mean().item() == pytest.approx(2.0, abs=5e-3)  # E[y] = x


def test_gradient_goes_through_the_same_mask():
    torch.manual_seed(1)
    x = torch.randn(300, 300, requires_grad=True)
    y = dropout(x, 0.3)
    y.backward(torch.ones_like(y))
    assert torch.allclose(x.grad, torch.where(y != 0, y / x, torch.zeros_like(y)), atol=1e-5)


def test_eval_zero_p_small_tensors_and_bad_p():
    x = torch.randn(400, 400)
    layer = Dropout(0.2).eval()
    assert layer(x) is x
    assert dropout(x, 0.0) is x
    assert bool((dropout(x, 1.0) == 0).all())
    small = torch.randn(MIN_ELEMENTS // 2)
    torch.manual_seed(2)
    mine = dropout(small, 0.2)
    torch.manual_seed(2)
    assert torch.equal(mine, F.dropout(small, 0.2, True))  # small tensors: PyTorch's dropout
    with pytest.raises(ValueError, match="probability"):
        Dropout(1.5)


def test_bf16_input_stays_bf16():
    x = torch.randn(300, 300, dtype=torch.bfloat16)
    y = dropout(x, 0.2)
    assert y.dtype == torch.bfloat16
    assert 0.75 < (y != 0).float().mean().item() < 0.85
