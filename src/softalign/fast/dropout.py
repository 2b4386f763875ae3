"""Inverted dropout with a cheaper mask on the CPU.

    y = x ⊙ m / q,   m_i ~ Bernoulli(q),   q = 1 - p      (E[y] = x)

PyTorch's CPU dropout draws one number per element from a serial generator: ≈ 7.7 ms for a
million elements, a few percent of a training step here, where four tensors of 0.5–1M elements
are dropped each step. Each 32-bit draw has 31 random bits, enough for two elements: q is
rounded to a multiple of 2⁻¹⁵ (0.8 becomes 0.79999, and the scale 1/q follows it, so y stays
unbiased) and an element is kept when its 15 bits fall below ``q · 2¹⁵`` (≈ 2.7 ms a million).
Small tensors, other devices and p ∉ (0, 1) use ``F.dropout``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LEVELS = 1 << 15  # a 15-bit uniform number per element
MIN_ELEMENTS = 1 << 16  # below this, one F.dropout call costs less than the few ops here


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or not 0.0 < p < 1.0 or x.numel() < MIN_ELEMENTS:
        return F.dropout(x, p, training)
    threshold = round((1.0 - p) * LEVELS)
    if threshold == 0:  # q below 2⁻¹⁶: drop everything, as F.dropout would almost surely
        return x * 0.0
    n = x.numel()
    draws = torch.empty((n + 1) // 2, dtype=torch.int32).random_()  # 31 random bits each
    bits = draws.view(torch.int16)[:n].view(x.shape).bitwise_and_(LEVELS - 1)
    return x * (bits < threshold).to(x.dtype).mul_(LEVELS / threshold)


class Dropout(nn.Dropout):
    """``nn.Dropout`` computed by :func:`dropout` (same attributes, no state)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)
