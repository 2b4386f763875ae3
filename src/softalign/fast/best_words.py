"""The k most probable next words of every row of logits, with their log-probabilities.

    log p(v) = z_v − log Σ_u exp(z_u);   the k largest, best first

What a search needs from a step (greedy: k = 1; beam search: K + 1). On the CPU softalign's
kernel (``native/best_words.c``) reads each row of logits once, in their own dtype; elsewhere
(and without the kernel) it is ``log_softmax`` in fp32 followed by ``topk``.
"""

from __future__ import annotations

import torch

from softalign.fast.native import MAX_ROW, calls, kernels


def best_words(
    logits: torch.Tensor, k: int, bias: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """logits: (rows, V), plus ``bias`` (V,) if given (a product's bias, added in fp32 while
    the row is read). Returns log-probabilities (rows, k) fp32, best first, and their columns
    (rows, k) int64; ``k`` ≤ V."""
    if not 1 <= k <= logits.size(-1):
        raise ValueError(f"k must be in [1, {logits.size(-1)}], got {k}")
    native = logits.device.type == "cpu" and logits.dtype in (torch.float32, torch.bfloat16)
    native = native and logits.size(-1) <= MAX_ROW
    if not native or kernels() is None:
        scores = logits.float() if bias is None else logits.float() + bias.float()
        return torch.log_softmax(scores, dim=-1).topk(k, dim=-1)
    bias = None if bias is None else bias.detach().float().contiguous()
    return calls.best_words(logits.contiguous(), k, bias)
