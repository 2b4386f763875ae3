"""Length normalisation for beam search.

GNMT (Wu et al. 2016): a finished hypothesis of length L with log-probability log p is ranked by
``log p / lp(L)`` with ``lp(L) = ((5 + L) / 6) ** alpha``; ``alpha = 0`` ranks by log p alone.
"""

from __future__ import annotations

import math

import torch


def gnmt_length_penalty(length: int, alpha: float) -> float:
    return ((5.0 + length) / 6.0) ** alpha


def max_output_lengths(src_lengths: torch.Tensor, ratio: float, cap: int) -> torch.Tensor:
    """(batch,) longest output allowed per sentence: ``min(cap, ceil(ratio * n) + 5)``."""
    limits = [min(cap, math.ceil(ratio * int(n)) + 5) for n in src_lengths.tolist()]
    return torch.tensor(limits, dtype=torch.int64)
