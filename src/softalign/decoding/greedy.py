"""Batched greedy decoding: y_t = argmax_y p(y | y_<t, x) until EOS or the length limit."""

from __future__ import annotations

import torch

from softalign.data.vocab import BOS_ID, EOS_ID, PAD_ID
from softalign.decoding.hypothesis import Hypothesis
from softalign.decoding.prefix import force_rows
from softalign.model.seq2seq import Seq2Seq
from softalign.model.state import DecoderState


@torch.no_grad()
def greedy_search(
    model: Seq2Seq,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    max_lengths: torch.Tensor,
    keep_attention: bool = True,
    prefix: torch.Tensor | None = None,
) -> list[Hypothesis]:
    """One hypothesis per source row. src: (batch, src_len); max_lengths: (batch,).

    Ended sentences leave the batch when the model says it is worth it
    (``model.worth_compacting``; the reference: at once): until then an ended sentence keeps
    computing, and what it writes after its end is ignored.
    ``keep_attention=False``: the hypotheses carry no attention (none is collected).
    ``prefix`` (batch, P): forced first words, PAD_ID where free (see ``decoding/prefix.py``).
    """
    batch = src.size(0)
    device = src.device
    state = model.start(src, src_lengths)
    max_lengths = max_lengths.to(device)
    steps = int(max_lengths.max())
    tokens = torch.full((batch,), BOS_ID, dtype=torch.long, device=device)
    alive = torch.arange(batch, device=device)  # the original row of every state row
    limits = max_lengths  # of every state row
    ended = torch.zeros(batch, dtype=torch.bool, device=device)  # of every state row
    words = torch.full((batch, steps), EOS_ID, dtype=torch.long, device=device)
    log_probs = torch.zeros(batch, steps, device=device)
    attention = None
    for t in range(steps):
        if prefix is not None and t < prefix.size(1):
            best, tokens, weights, state = forced_step(model, tokens, state, prefix[alive, t])
        else:
            best, rows, weights, state = model.step_best(tokens, state, 1)
            best, rows = best.squeeze(1), rows.squeeze(1)  # (state rows,)
            tokens = model.output_words(rows)
        words[alive, t] = tokens
        log_probs[alive, t] = best
        if weights is not None and keep_attention:
            if attention is None:
                attention = weights.new_zeros(batch, steps, weights.size(-1))
            attention[alive, t] = weights
        ended |= (tokens == EOS_ID) | (t + 1 >= limits)
        left = alive.numel() - int(ended.sum())
        if left == 0:
            break
        if model.worth_compacting(alive.numel(), left):
            keep = (~ended).nonzero().squeeze(1)
            alive, tokens, state = alive[keep], tokens[keep], state.select(keep, keep)
            limits, ended = limits[keep], ended[keep]
    outputs = words.tolist()
    hypotheses = []
    for row, seq in enumerate(outputs):
        limit = int(max_lengths[row])
        length = seq.index(EOS_ID) if EOS_ID in seq[:limit] else limit
        scored = min(length + 1, limit)  # the EOS's log-probability counts
        hypotheses.append(
            Hypothesis(
                tokens=seq[:length],
                score=float(log_probs[row, :scored].sum()),
                attention=None
                if attention is None
                else attention[row, :length, : int(src_lengths[row])].float().cpu(),
            )
        )
    return hypotheses


def forced_step(
    model: Seq2Seq, tokens: torch.Tensor, state: DecoderState, forced: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, DecoderState]:
    """A greedy step where rows with a prefix word (``forced`` (rows,), PAD_ID: free) take it:
    (log-probability (rows,), words (rows,), attention, state)."""
    log_probs, weights, state = model.step(tokens, state)
    active = forced != PAD_ID
    log_probs = force_rows(log_probs, model.output_rows(forced), active)
    best, rows = log_probs.max(dim=-1)
    return best, torch.where(active, forced, model.output_words(rows)), weights, state
