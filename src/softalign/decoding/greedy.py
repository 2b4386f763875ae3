"""Batched greedy decoding: y_t = argmax_y p(y | y_<t, x) until EOS or the length limit."""

from __future__ import annotations

import torch

from softalign.data.vocab import BOS_ID, EOS_ID
from softalign.decoding.hypothesis import Hypothesis
from softalign.model.seq2seq import Seq2Seq


@torch.no_grad()
def greedy_search(
    model: Seq2Seq, src: torch.Tensor, src_lengths: torch.Tensor, max_lengths: torch.Tensor
) -> list[Hypothesis]:
    """One hypothesis per source row. src: (batch, src_len); max_lengths: (batch,)."""
    batch = src.size(0)
    state = model.start(src, src_lengths)
    tokens = torch.full((batch,), BOS_ID, dtype=torch.long, device=src.device)
    finished = torch.zeros(batch, dtype=torch.bool, device=src.device)
    total = torch.zeros(batch, device=src.device)
    steps, weights_per_step = [], []
    max_lengths = max_lengths.to(src.device)
    for t in range(int(max_lengths.max())):
        log_probs, weights, state = model.step(tokens, state)
        best, tokens = log_probs.max(dim=-1)  # (batch,)
        total += best.masked_fill(finished, 0.0)
        steps.append(tokens)
        weights_per_step.append(weights)
        finished |= (tokens == EOS_ID) | (t + 1 >= max_lengths)
        if bool(finished.all()):
            break
    outputs = torch.stack(steps, dim=1).tolist()  # (batch, steps)
    attention = None if weights_per_step[0] is None else torch.stack(weights_per_step, dim=1)
    hypotheses = []
    for row, seq in enumerate(outputs):
        limit = int(max_lengths[row])
        length = seq.index(EOS_ID) if EOS_ID in seq[:limit] else min(limit, len(seq))
        hypotheses.append(
            Hypothesis(
                tokens=seq[:length],
                score=float(total[row]),
                attention=None
                if attention is None
                else attention[row, :length, : int(src_lengths[row])].cpu(),
            )
        )
    return hypotheses
