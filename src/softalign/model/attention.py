"""Soft attention: score every source position against the decoder state, normalise, average.

For a query ``s`` (the decoder state) and encoder vectors ``h_1..h_n``::

    e_j = score(s, h_j)                      # one score per source position
    α   = softmax(e)   (α_j = 0 at padding)  # a probability distribution over positions
    c   = Σ_j α_j h_j                        # the context vector

Score functions (Bahdanau et al. 2015; Luong et al. 2015):

- ``additive``:   e_j = v · tanh(W s + U h_j)
- ``dot``:        e_j = s · h_j
- ``scaled_dot``: e_j = s · h_j / sqrt(d)
- ``general``:    e_j = s · (W h_j) / sqrt(d)   (Luong's bilinear score, scaled like ``scaled_dot``)

The part of the score that only depends on the keys (``U h`` or ``W h``) is computed once
per sentence by :meth:`project_keys`; the caller keeps it and passes it to every step.

Under autocast only the projections (``W s``, ``U h``) run in low precision: the per-position
work (scores, softmax, the weighted sum) stays fp32.
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn


def full_precision(tensor: torch.Tensor) -> contextlib.AbstractContextManager:
    """Autocast off on the tensor's device (a no-op where autocast is not on)."""
    return torch.autocast(tensor.device.type, enabled=False)


class Attention(nn.Module):
    """Base class: subclasses define :meth:`project_keys` and :meth:`score`."""

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        """(sentences, src_len, key_size) -> the keys used by :meth:`score` (fp32)."""
        return memory.float()

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Queries (sentences, group, query_size), projected keys -> scores
        (sentences, group, src_len): every query of a sentence against its source."""
        raise NotImplementedError

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        pad_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Context and weights.

        query: (rows, query_size), rows = sentences · group, row r attending to sentence
        ``r // group`` (a beam's hypotheses share their source); keys: from
        :meth:`project_keys`; values: (sentences, src_len, value_size); pad_mask:
        (sentences, src_len), True at padding. Returns context (rows, value_size) and weights
        (rows, src_len) summing to 1.
        """
        sentences, src_len = pad_mask.shape
        queries = query.view(sentences, -1, query.size(-1))  # (sentences, group, query_size)
        scores = self.score(queries, keys)
        with full_precision(values):
            weights = torch.softmax(scores.masked_fill(pad_mask.unsqueeze(1), float("-inf")), -1)
            context = torch.bmm(weights, values.float())  # (sentences, group, value_size)
        return context.view(query.size(0), -1), weights.view(query.size(0), src_len)


class AdditiveAttention(Attention):
    """Bahdanau: e_j = v · tanh(W s + U h_j)."""

    def __init__(self, *, query_size: int, key_size: int, hidden_size: int) -> None:
        super().__init__()
        self.query_proj = nn.Linear(query_size, hidden_size, bias=False)  # W
        self.key_proj = nn.Linear(key_size, hidden_size, bias=True)  # U (with the bias)
        self.energy = nn.Linear(hidden_size, 1, bias=False)  # v

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        return self.key_proj(memory).float()  # U h_j + b: (sentences, src_len, hidden)

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        query_proj = self.query_proj(query).unsqueeze(2)  # W s: (sentences, group, 1, hidden)
        with full_precision(keys):
            energies = torch.tanh(query_proj.float() + keys.unsqueeze(1))  # (n, group, S, hidden)
            return self.energy(energies).squeeze(-1)  # (sentences, group, src_len)


class DotAttention(Attention):
    """Content-based: e_j = s · h_j (query and key sizes must match)."""

    def __init__(self, *, query_size: int, key_size: int, hidden_size: int = 0) -> None:
        super().__init__()
        if query_size != key_size:
            raise ValueError(
                f"dot attention needs query_size == key_size ({query_size} != {key_size})"
            )
        self.scale = 1.0

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        with full_precision(keys):
            scores = torch.bmm(query.float(), keys.transpose(1, 2))
        return scores * self.scale  # (sentences, group, src_len)


class ScaledDotAttention(DotAttention):
    """e_j = s · h_j / sqrt(d)."""

    def __init__(self, *, query_size: int, key_size: int, hidden_size: int = 0) -> None:
        super().__init__(query_size=query_size, key_size=key_size)
        self.scale = 1.0 / math.sqrt(key_size)


class GeneralAttention(Attention):
    """Luong's general score, scaled: e_j = s · (W h_j) / sqrt(d), ``W h`` precomputed per sentence.

    Unscaled, the bilinear score saturated in training in the Bible study (d = 512): one-hot
    attention rows, where the softmax passes no gradient, and 5.6 BLEU against 14.9 for
    additive attention. Adam moves every entry of W by about the learning rate per step and the
    score sums all of them; dividing by sqrt(d), as ``scaled_dot`` does, slows that growth.
    """

    def __init__(self, *, query_size: int, key_size: int, hidden_size: int = 0) -> None:
        super().__init__()
        self.key_proj = nn.Linear(key_size, query_size, bias=False)  # W
        self.scale = 1.0 / math.sqrt(query_size)

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        return self.key_proj(memory).float()  # (batch, src_len, query_size)

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        with full_precision(keys):
            scores = torch.bmm(query.float(), keys.transpose(1, 2))
        return scores * self.scale  # (sentences, group, src_len)


ATTENTIONS: dict[str, type[Attention]] = {
    "additive": AdditiveAttention,
    "dot": DotAttention,
    "scaled_dot": ScaledDotAttention,
    "general": GeneralAttention,
}
