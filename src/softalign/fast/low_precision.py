"""What the matrix products need to know about autocast.

``autocast_dtype`` is the dtype autocast would run a matrix product in on the tensor's device
(None without autocast). ``padding_rows``: on the CPU, oneDNN builds a new bf16 kernel for
every new matrix shape (≈ 1 ms for a (150 × 512)·(512 × 1536) product, 5–8 ms for the
(750 × 512)·(512 × 5,481) generator of a beam; it caches and reuses it afterwards), and batches
bring new row counts all the time: token batches at almost every training step (the last chunk
of the generator, the steps·batch rows of a weight gradient), and every sentence that ends in a
search shrinks the batch. Zero rows up to a multiple of ``SHAPE_ROWS`` (of a quarter of it for
small products) keep the shapes few, so the kernels are reused. fp32 products (MKL) have no
such cost and are not padded.

:class:`ShapeStableLinear` is an ``nn.Linear`` (same parameters and state dict) that pads its
rows that way when it runs under CPU low-precision autocast without gradients, i.e. in bf16
decoding; training pads where it builds its own products.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from softalign.fast.packed_weights import packed_linear

SHAPE_ROWS = 64
COARSE_ROWS = 512  # decoding: above 2 · COARSE_ROWS rows, multiples of it


def autocast_dtype(tensor: torch.Tensor) -> torch.dtype | None:
    device = tensor.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None


def padding_rows(rows: int, low_precision: bool, coarse: bool = False) -> int:
    """Zero rows to add to a product's ``rows`` (0 in full precision): up to a multiple of
    ``SHAPE_ROWS``, or of ``SHAPE_ROWS // 4`` for at most ``SHAPE_ROWS`` rows (the last few
    sentences of a search would otherwise compute up to 16 times their rows). ``coarse``
    (decoding): above ``2 · COARSE_ROWS`` rows, up to a multiple of ``COARSE_ROWS``: the encoder's
    products over a batch's B·S positions (≈ the token budget, a new count in every batch)
    then share one or two shapes, and a kernel build (3–4 ms) costs more than the padding."""
    if not low_precision:
        return 0
    if coarse and rows > 2 * COARSE_ROWS:
        return -rows % COARSE_ROWS
    return -rows % (SHAPE_ROWS if rows > SHAPE_ROWS else SHAPE_ROWS // 4)


def shape_stable_linear(
    x: torch.Tensor | tuple[torch.Tensor, ...],
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """``F.linear(x, weight, bias)``, ``x`` one tensor or a tuple of them joined along the last
    dimension (``torch.cat(x, -1)``). Without gradients under CPU low-precision autocast the
    rows of ``x`` (all dimensions but the last) are zero-padded as :func:`padding_rows` says
    for the product, and the padding is dropped from the result; the parts are cast, joined and
    padded in one copy each, into the product's input, and the product reads the weight
    packed once (see ``fast/packed_weights.py``)."""
    parts = x if isinstance(x, tuple) else (x,)
    dtype = autocast_dtype(parts[0])
    if dtype is None or parts[0].device.type != "cpu" or torch.is_grad_enabled():
        return F.linear(torch.cat(parts, -1) if len(parts) > 1 else parts[0], weight, bias)
    lead = parts[0].shape[:-1]
    rows = lead.numel()
    pad = padding_rows(rows, low_precision=True, coarse=True)
    if not pad and len(parts) == 1:
        return packed_linear(parts[0], weight, bias, dtype)
    joined = parts[0].new_empty(rows + pad, sum(p.size(-1) for p in parts), dtype=dtype)
    column = 0
    for part in parts:
        joined[:rows, column : column + part.size(-1)].copy_(part.reshape(rows, -1))
        column += part.size(-1)
    joined[rows:].zero_()
    out = packed_linear(joined, weight, bias, dtype)[:rows]
    return out.view(*lead, out.size(-1))


class ShapeStableLinear(nn.Linear):
    """``nn.Linear`` computed by :func:`shape_stable_linear`; :meth:`joined` takes its input in
    parts."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return shape_stable_linear(x, self.weight, self.bias)

    def joined(self, *parts: torch.Tensor) -> torch.Tensor:
        """``self(torch.cat(parts, -1))``, without the joined copy in bf16 decoding."""
        if torch.is_grad_enabled():  # through forward (a subclass may record the step)
            return self(torch.cat(parts, -1))
        return shape_stable_linear(parts, self.weight, self.bias)
