"""Forced target prefixes: the first words of an output given, the search continuing after them.

A prefix is a (rows, P) tensor of vocabulary ids, padded with PAD_ID where a row's prefix
is shorter (PAD is never a word, so it marks "free"). At step t < P every row with a word at
t may only take that word: its log-probabilities become -inf except at the word's generator
row, so greedy and beam search score the prefix like any output (log p(prefix | x) is part
of the hypothesis's score) and cannot end (EOS) inside it. A prefix word without a generator
row of its own (unseen in training, see ``model.output_vocab``) is scored as UNK and put back
as itself in the output.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from softalign.data.vocab import PAD_ID
from softalign.decoding.hypothesis import Hypothesis


def prefix_tensor(prefixes: Sequence[Sequence[int]], device: torch.device | str) -> torch.Tensor:
    """(rows, longest prefix) ids, PAD_ID-padded (at least one column)."""
    width = max([1, *(len(p) for p in prefixes)])
    out = torch.full((len(prefixes), width), PAD_ID, dtype=torch.long)
    for row, ids in enumerate(prefixes):
        out[row, : len(ids)] = torch.tensor(list(ids), dtype=torch.long)
    return out.to(device)


def force_rows(
    log_probs: torch.Tensor, forced_rows: torch.Tensor, active: torch.Tensor
) -> torch.Tensor:
    """log_probs (rows, output words) with every ``active`` row (rows,) left only its column
    ``forced_rows`` (rows,); other rows unchanged."""
    kept = log_probs.gather(1, forced_rows.unsqueeze(1))  # (rows, 1)
    only = torch.full_like(log_probs, float("-inf")).scatter(1, forced_rows.unsqueeze(1), kept)
    return torch.where(active.unsqueeze(1), only, log_probs)


def restore_prefix(hypotheses: list[Hypothesis], prefix: Sequence[int]) -> list[Hypothesis]:
    """The hypotheses with their first words set to ``prefix`` (an unseen word was scored as
    UNK: the output still starts with the word asked for)."""
    for h in hypotheses:
        h.tokens[: len(prefix)] = list(prefix)
    return hypotheses
