"""What a search returns for one sentence."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Hypothesis:
    """One output: target ids (no BOS/EOS), its score, and its attention.

    score: log-probability divided by the length penalty (greedy: alpha = 0)
    attention: (len(tokens), src_len) weights of each output word over the source words,
    or None for a model without attention
    """

    tokens: list[int]
    score: float
    attention: torch.Tensor | None
