"""Token-level cross-entropy (with optional label smoothing) over the non-padding targets.

    loss = -(1/N) Σ_t [(1-ε) log p(y_t) + (ε/V) Σ_v log p(v)]

summed over the N real target tokens of a batch; perplexity is exp of the unsmoothed loss.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from softalign.data.batching import Batch, collate, token_batches
from softalign.data.vocab import PAD_ID
from softalign.model.seq2seq import Seq2Seq


def batch_loss(
    model: Seq2Seq, batch: Batch, label_smoothing: float = 0.0
) -> tuple[torch.Tensor, int]:
    """Summed loss over the batch's real target tokens, and their count.

    The generator runs only on non-padding positions (no vocabulary projection wasted on PAD).
    """
    attentional, _ = model(batch.src, batch.src_lengths, batch.tgt_in)  # (batch, tgt_len, out)
    real = batch.tgt_out != PAD_ID  # (batch, tgt_len)
    loss = model.loss(attentional[real], batch.tgt_out[real], label_smoothing)
    return loss, int(real.sum())


@torch.no_grad()
def corpus_loss(
    model: Seq2Seq,
    src_ids: Sequence[Sequence[int]],
    tgt_ids: Sequence[Sequence[int]],
    batch_tokens: int,
    device: torch.device,
) -> tuple[float, float]:
    """(mean token loss, perplexity) of a corpus under teacher forcing, without smoothing."""
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    for indices in token_batches(
        [len(s) for s in src_ids], [len(t) for t in tgt_ids], batch_tokens
    ):
        loss, count = batch_loss(model, collate(indices, src_ids, tgt_ids).to(device))
        total += float(loss)
        tokens += count
    model.train(was_training)
    mean = total / max(tokens, 1)
    return mean, math.exp(min(mean, 50.0))
