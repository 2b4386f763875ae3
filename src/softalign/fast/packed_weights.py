"""Weights packed once for oneDNN's CPU matrix products, for decoding.

    y = x Wᵀ + b      (x: (rows, in), W: (out, in), b: (out,))

A plain bf16 ``F.linear`` on the CPU hands oneDNN the weight in its (out, in) layout, and
oneDNN reorders it into the blocked layout its AMX kernel reads at every call: a pass over the
whole weight, which at the few rows of a decoding step costs about as much as the product (the
(5,481 × 512) generator at 64 rows: 540 µs plain, 350 µs packed; at 512 rows 1,840 and
1,370). ``torch.ops.mkldnn._reorder_linear_weight`` does that reordering once (what
``torch.compile``'s CPU freezing does) and ``torch.ops.mkldnn._linear_pointwise`` computes the
product with the packed weight.

Packing happens only inside :func:`packed_weights` (a search opens it): a packed weight is a
copy, and a fused optimizer step changes a parameter without moving the version counter that
would tell the copy is stale, so outside the block products read the parameters themselves.
Within it :func:`packed_linear` packs each parameter once per dtype, and again if the
parameter's version moves (``load_state_dict``, an in-place ``copy_``). The packed weight has
no gradient: with gradients on, products are plain.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
import torch.nn.functional as F
from torch import nn

from softalign import capabilities

_mkldnn = getattr(torch.ops, "mkldnn", None)
# fp32 products stay with MKL: oneDNN's packed fp32 product decoded slower (a kernel built
# for every new row count, and no faster warm)
PACKED_DTYPES = (torch.bfloat16,)

# (id of the parameter, dtype) -> (weak reference to it, its version, its packed/cast copy)
WeightPacks = dict[tuple[int, torch.dtype], tuple[weakref.ref, int, torch.Tensor]]
_packs: ContextVar[WeightPacks | None] = ContextVar("softalign_weight_packs", default=None)


@contextmanager
def packed_weights(packs: WeightPacks | None = None) -> Iterator[WeightPacks]:
    """Within the block, CPU products without gradients pack their parameters once, into
    ``packs`` (a new dict if None; pass the same dict again to reuse its copies while the
    weights stay the same, as a long-lived ``Translator`` does)."""
    packs = {} if packs is None else packs
    token = _packs.set(packs)
    try:
        yield packs
    finally:
        _packs.reset(token)


def packing_available() -> bool:
    """Whether oneDNN packs bf16 weights on this CPU: probed once with a tiny product, not
    inferred (see ``capabilities.py``). PyTorch packs them only with AVX-512 BW/VL/DQ or
    AVX-NE-CONVERT, and not with oneDNN capped below them (``ONEDNN_MAX_CPU_ISA=AVX2``);
    elsewhere products are plain."""
    return capabilities.cpu().onednn_packing.works


def can_pack(weight: torch.Tensor, dtype: torch.dtype) -> bool:
    """Whether :func:`packed_linear` packs ``weight`` for products in ``dtype``: inside
    :func:`packed_weights`, a parameter (a stable object to key the copy on, not a view made
    per call) on the CPU, without gradients, where oneDNN packs weights
    (:func:`packing_available`, asked last: fp32 products never probe)."""
    return (
        _packs.get() is not None
        and dtype in PACKED_DTYPES
        and isinstance(weight, nn.Parameter)
        and weight.device.type == "cpu"
        and not torch.is_grad_enabled()
        and packing_available()
    )


def packed_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype
) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` in ``dtype`` (x (..., in) is cast if it is not), with
    ``weight`` packed once (and a parameter ``bias`` cast once) where :func:`can_pack` says
    so, else plain."""
    if not can_pack(weight, dtype):
        device = x.device.type
        if torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device) == dtype:
            return F.linear(x, weight, bias)  # autocast casts (and may keep) the weight
        bias = None if bias is None else bias.to(dtype)
        return F.linear(x.to(dtype), weight.to(dtype), bias)
    packed = _once(weight, dtype, _mkldnn._reorder_linear_weight)
    if isinstance(bias, nn.Parameter):  # a fresh bf16 bias costs the product ≈ 12 µs
        bias = _once(bias, dtype, torch.clone)
    elif bias is not None:
        bias = bias.to(dtype)
    rows = x.reshape(-1, x.size(-1)).to(dtype)
    out = _mkldnn._linear_pointwise(rows, packed, bias, "none", [], "")
    return out.view(*x.shape[:-1], out.size(-1))


def _once(parameter: torch.Tensor, dtype: torch.dtype, make) -> torch.Tensor:
    """``make(parameter in dtype)``, remembered in the open packs while ``parameter`` lives
    and keeps its version."""
    packs = _packs.get()
    key = (id(parameter), dtype)
    entry = packs.get(key)
    if entry is not None and entry[0]() is parameter and entry[1] == parameter._version:
        return entry[2]
    for old_key, old in list(packs.items()):  # list(): one step, safe beside other threads
        if old[0]() is None:
            packs.pop(old_key, None)
    with torch.no_grad():
        made = make(parameter.detach().to(dtype).contiguous())
    packs[key] = (weakref.ref(parameter), parameter._version, made)
    return made
