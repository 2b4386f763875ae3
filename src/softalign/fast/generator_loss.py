"""The generator and the label-smoothed cross-entropy in one pass over row chunks.

For the N real target positions, with attentional vectors ``x_i``, generator ``z = W x + b``
over V words, target ``y_i`` and smoothing ε::

    loss = Σ_i [ logsumexp(z_i) - (1-ε) z_{i,y_i} - (ε/V) Σ_v z_{i,v} ]
    ∂loss/∂z_i = softmax(z_i) - q_i,   q_i = (1-ε) onehot(y_i) + ε/V
    ∂loss/∂x = G W,   ∂loss/∂W = Gᵀ X,   ∂loss/∂b = Σ_i G_i      (G: the rows ∂loss/∂z_i)

This is ``F.cross_entropy(generator(x), y, label_smoothing=ε, reduction="sum")``, computed
``chunk_rows`` rows at a time: each chunk's logits are made, turned into their gradient in
place and multiplied out while they are still in cache, so the (N, V) logits are never
written to memory whole, and autograd records one node instead of a dozen (N, V) passes
(softmax, smoothing sum, their backward). The gradients are computed in the forward pass when
they are needed and scaled by the incoming gradient in backward. Under autocast the three
products run in the autocast dtype; the softmax and the sums stay fp32. On the CPU the loss and G
of a chunk are one pass per row of softalign's kernel (``native/cross_entropy.c``), G written
over the logits in their own dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from softalign.fast.low_precision import autocast_dtype, padding_rows
from softalign.fast.native import MAX_ROW, calls, kernels

CHUNK_ROWS = 512


def _torch_chunk(logits, real, y, smoothing, grad_b):
    """The chunk's loss, and G = softmax − (1−ε) onehot(y) (fp32, padding rows zero) with its
    column sums added to ``grad_b`` (None without ``grad_b``)."""
    vocab = logits.size(1)
    log_p = torch.log_softmax(logits.float(), dim=1)  # (chunk, V)
    loss = -(1 - smoothing) * log_p[:real].gather(1, y).sum()
    if smoothing:
        loss = loss - smoothing / vocab * log_p[:real].sum()
    if grad_b is None:
        return loss, None
    # G = softmax - (1-ε) onehot(y); the constant -ε/V is added as rank-1 terms by the caller
    g = log_p.exp_()
    g[real:] = 0.0  # padding rows: no gradient
    g[:real].scatter_add_(1, y, torch.full_like(y, -(1 - smoothing), dtype=g.dtype))
    grad_b += g.sum(0)
    return loss, g


def _native_chunk(logits, real, y, smoothing, grad_b) -> float:
    """The chunk's loss (``native/cross_entropy.c``); with ``grad_b``, G overwrites ``logits``
    and its column sums are added to ``grad_b``."""
    targets = y.reshape(-1).contiguous()
    return calls.cross_entropy_chunk(logits, real, targets, smoothing, grad_b)


class _GeneratorCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, target, smoothing: float, chunk_rows: int, grads: bool):
        dtype = autocast_dtype(x)
        w = weight if dtype is None else weight.to(dtype)
        b = None if bias is None else (bias if dtype is None else bias.to(dtype))
        vocab = weight.size(0)
        total = torch.zeros((), dtype=torch.float32, device=x.device)
        grad_x = torch.empty_like(x) if grads else None
        # under autocast the weight gradient accumulates in the products' dtype (one addmm per
        # chunk, fp32 inside each product) and is cast once: adding each chunk's low-precision
        # product into an fp32 buffer costs a cast of the whole (V, d) matrix per chunk
        grad_w = torch.zeros_like(weight, dtype=w.dtype) if grads else None
        grad_b = torch.zeros(vocab, dtype=torch.float32, device=x.device) if grads else None
        n = x.size(0)
        native = x.device.type == "cpu" and kernels() is not None and vocab <= MAX_ROW
        for start in range(0, n, chunk_rows):
            real = min(chunk_rows, n - start)  # rows of this chunk
            x_chunk = (
                x[start : start + real] if dtype is None else x[start : start + real].to(dtype)
            )
            y = target[start : start + real].unsqueeze(1)
            pad = padding_rows(real, low_precision=dtype is not None)
            if pad:
                x_chunk = F.pad(x_chunk, (0, 0, 0, pad))
            logits = F.linear(x_chunk, w, b)  # (chunk, V)
            if native and logits.dtype in (torch.float32, torch.bfloat16):  # one pass per row
                total += _native_chunk(logits, real, y, smoothing, grad_b)
                if not grads:
                    continue
                g = logits
            else:
                loss, g = _torch_chunk(logits, real, y, smoothing, grad_b)
                total += loss
                if g is None:
                    continue
                g = g if dtype is None else g.to(dtype)
            grad_x[start : start + real] = g.mm(w)[:real].to(x.dtype)
            grad_w.addmm_(g.t(), x_chunk)
        if grads:
            grad_w = grad_w.float()
        if grads and smoothing:
            uniform = smoothing / vocab
            grad_x -= uniform * weight.detach().sum(0).to(grad_x.dtype)
            grad_w -= uniform * x.detach().float().sum(0)
            grad_b -= uniform * x.size(0)
        ctx.save_for_backward(grad_x, grad_w.to(weight.dtype) if grads else None, grad_b)
        ctx.has_bias = bias is not None
        return total

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_total):
        grad_x, grad_w, grad_b = ctx.saved_tensors
        if grad_x is None:
            raise RuntimeError("generator_cross_entropy ran without gradients; cannot backward")
        grad_b = (grad_b * grad_total).to(grad_w.dtype) if ctx.has_bias else None
        return grad_x * grad_total, grad_w * grad_total, grad_b, None, None, None, None


def generator_cross_entropy(
    x: torch.Tensor,
    generator: torch.nn.Linear,
    target: torch.Tensor,
    label_smoothing: float = 0.0,
    chunk_rows: int = CHUNK_ROWS,
) -> torch.Tensor:
    """Summed label-smoothed cross-entropy of ``generator(x)`` (N, V) against ``target`` (N,),
    a 0-dim fp32 tensor (see the module doc)."""
    weight, bias = generator.weight, generator.bias
    grads = torch.is_grad_enabled() and (
        x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)
    )
    return _GeneratorCrossEntropy.apply(
        x, weight, bias, target, float(label_smoothing), chunk_rows, grads
    )
