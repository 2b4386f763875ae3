"""Additive attention scores ``e = v · tanh(q + k)`` with softalign's C kernel (CPU).

    T_gs = tanh(q_g + k_s),   e_gs = v · T_gs
    ∂q_g = Σ_s A_gs,  ∂k_s = Σ_g A_gs,  ∂v = Σ_gs ∂e_gs T_gs,  A_gs = ∂e_gs v ⊙ (1 − T_gs²)

One pass over the energies T forward (stored for backward only under autograd) and one
backward, where PyTorch makes T, its tanh and the product with v in separate passes over a
(sentences, group, S, D) tensor (see ``native/additive.c``).
"""

from __future__ import annotations

import torch

from softalign.fast.native import calls


def additive_scores(query: torch.Tensor, keys: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """query: (sentences, group, D) projected queries ``W s``; keys: (sentences, S, D) projected
    keys ``U h + b``; v: (D,). Returns scores (sentences, group, S), fp32."""
    if torch.is_grad_enabled() and any(t.requires_grad for t in (query, keys, v)):
        return _AdditiveScores.apply(query, keys, v)
    return _forward(query.float().contiguous(), keys.float().contiguous(), v, keep=False)[0]


def _forward(query, keys, v, keep: bool):
    v = v.detach().float().contiguous()
    scores, energies = calls.additive_scores(query, keys, v, keep)
    return scores, energies, v


class _AdditiveScores(torch.autograd.Function):
    @staticmethod
    def forward(ctx, query, keys, v):
        scores, energies, v32 = _forward(
            query.float().contiguous(), keys.float().contiguous(), v, keep=True
        )
        ctx.save_for_backward(energies, v32)
        ctx.dtypes = query.dtype, keys.dtype, v.dtype
        return scores

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_scores):
        energies, v = ctx.saved_tensors
        grad_scores = grad_scores.float().contiguous()
        grad_query, grad_keys, grad_v = calls.additive_scores_backward(grad_scores, energies, v)
        query_dtype, keys_dtype, v_dtype = ctx.dtypes
        return grad_query.to(query_dtype), grad_keys.to(keys_dtype), grad_v.to(v_dtype)
