"""What the hand-written autograd functions need to know about autocast.

``autocast_dtype`` is the dtype autocast would run a matrix product in on the tensor's device
(None without autocast). ``padding_rows``: on the CPU, oneDNN builds a new bf16 kernel (~20 ms)
for every new matrix shape, and token batches bring new row counts at almost every step (the
last chunk of the generator, the steps·batch rows of a weight gradient); zero rows up to a
multiple of ``SHAPE_ROWS`` keep the shapes few, so the kernels are reused. fp32 products
(MKL) have no such cost and are not padded.
"""

from __future__ import annotations

import torch

SHAPE_ROWS = 64


def autocast_dtype(tensor: torch.Tensor) -> torch.dtype | None:
    device = tensor.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None


def padding_rows(rows: int, low_precision: bool) -> int:
    """Zero rows to add to a product's ``rows`` (0 in full precision)."""
    return -rows % SHAPE_ROWS if low_precision else 0
