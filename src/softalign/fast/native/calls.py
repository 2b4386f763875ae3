"""Checked calls of softalign's C kernels: tensors in, every argument checked before C runs.

A kernel trusts its pointers, sizes and strides; a wrong one reads or writes out of bounds and
takes the process with it. Each wrapper here takes tensors, checks that every one is a CPU
tensor of the dtype the kernel reads, of the shape the others imply, with contiguous rows (a
row stride where the kernel takes one, rows that do not overlap) and sizes within what the
kernel keeps on a thread's stack (``MAX_ROW`` values), and only then passes the pointers. A
mismatch raises ``ValueError`` naming the argument. The shapes are those of the C headers
(``gru.c``, ``additive.c``, ``cross_entropy.c``, ``best_words.c``).
"""

from __future__ import annotations

import torch

from softalign.fast.native import MAX_ROW, kernels, unavailable_reason

FP32 = (torch.float32,)
FP32_OR_BF16 = (torch.float32, torch.bfloat16)
# the GRU kernels keep 13·hidden fp32 values of a row on a thread's stack (a row of logits and
# its bias-gradient sums are 2·V ≤ 2·MAX_ROW): hidden ≤ MAX_ROW / 8 keeps them below that
MAX_HIDDEN = MAX_ROW // 8


def check(name: str, tensor, shape: tuple[int, ...], dtypes, rows: bool = False) -> None:
    """Raise ``ValueError`` unless ``tensor`` is a CPU tensor of ``shape``, one of ``dtypes``,
    and contiguous, or (``rows``: a 2-D tensor) with contiguous rows that do not overlap."""
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{name}: expected a tensor, got {type(tensor).__name__}")
    # is_cpu and stride() rather than device and stride(i): ~1 µs less per check, and a
    # decoding step makes a dozen
    if not tensor.is_cpu:
        raise ValueError(f"{name}: the kernels run on the CPU, got a {tensor.device} tensor")
    if tensor.dtype not in dtypes:
        allowed = " or ".join(str(dtype).removeprefix("torch.") for dtype in dtypes)
        raise ValueError(f"{name}: expected {allowed}, got {tensor.dtype}")
    if tensor.shape != shape:
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(tensor.shape)}")
    if rows:
        strides = tensor.stride()
        if strides[1] != 1 or (shape[0] > 1 and strides[0] < shape[1]):
            raise ValueError(f"{name}: rows must be contiguous and apart, strides {strides}")
    elif not tensor.is_contiguous():
        raise ValueError(f"{name}: must be contiguous, strides {tensor.stride()}")


def _optional(name: str, tensor, shape, dtypes, rows: bool = False) -> int | None:
    """The pointer of a checked ``tensor``, or None (NULL) for None."""
    if tensor is None:
        return None
    check(name, tensor, shape, dtypes, rows)
    return tensor.data_ptr()


def _size(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")


def _library():
    library = kernels()
    if library is None:
        raise RuntimeError(f"softalign's C kernels are not loaded: {unavailable_reason()}")
    return library


def _low(tensor: torch.Tensor) -> int:
    return int(tensor.dtype == torch.bfloat16)


def gru_forward_step(x, g, bias, h, out, copy=None, saved=None) -> None:
    """One GRU step's gates (``gru.c``), written into ``out`` (and ``copy``, ``saved``).

    x: (rows, 3H) fp32/bf16 rows (a row stride is fine); g: (rows, 3H) ``U h`` contiguous,
    fp32/bf16; bias: (3H,) fp32 or None; h: (rows, H) fp32 rows or None (zeros); out: (rows, H)
    fp32 rows; copy: (rows, H) contiguous in g's dtype, or None; saved: (rows, 4H) fp32
    contiguous [r, z, n, q], or None.
    """
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise ValueError("out: expected a 2-D tensor (rows, hidden)")
    rows, hidden = out.shape
    _size("hidden", hidden, 1, MAX_HIDDEN)
    check("out", out, (rows, hidden), FP32, rows=True)
    check("x", x, (rows, 3 * hidden), FP32_OR_BF16, rows=True)
    check("g", g, (rows, 3 * hidden), FP32_OR_BF16)
    _library().gru_forward_step(
        rows,
        hidden,
        x.data_ptr(),
        x.stride()[0],
        _low(x),
        g.data_ptr(),
        _low(g),
        _optional("bias", bias, (3 * hidden,), FP32),
        _optional("h", h, (rows, hidden), FP32, rows=True),
        1 if h is None else h.stride()[0],
        out.data_ptr(),
        out.stride()[0],
        _optional("copy", copy, (rows, hidden), (g.dtype,)),
        _optional("saved", saved, (rows, 4 * hidden), FP32),
    )


def gru_backward_step(dout, carry_in, rec, saved, h, carry_out, dx, dg, db=None) -> None:
    """One GRU step's gates backward (``gru.c``), into ``carry_out``, ``dx``, ``dg`` (and
    ``db``, accumulated into).

    dout: (rows, H) fp32 rows or None; carry_in: (rows, H) fp32 contiguous or None (may be
    carry_out); rec: (rows, H) ``∂g U`` contiguous in dg's dtype, or None; saved: (rows, 4H) fp32
    contiguous, from the forward step; h: (rows, H) fp32 rows or None (zeros); carry_out:
    (rows, H) fp32 contiguous; dx: (rows, 3H) fp32/bf16 rows; dg: (rows, 3H) fp32/bf16
    contiguous; db: (3H,) fp32 or None.
    """
    if not isinstance(carry_out, torch.Tensor) or carry_out.dim() != 2:
        raise ValueError("carry_out: expected a 2-D tensor (rows, hidden)")
    rows, hidden = carry_out.shape
    _size("hidden", hidden, 1, MAX_HIDDEN)
    check("carry_out", carry_out, (rows, hidden), FP32)
    check("saved", saved, (rows, 4 * hidden), FP32)
    check("dx", dx, (rows, 3 * hidden), FP32_OR_BF16, rows=True)
    check("dg", dg, (rows, 3 * hidden), FP32_OR_BF16)
    _library().gru_backward_step(
        rows,
        hidden,
        _optional("dout", dout, (rows, hidden), FP32, rows=True),
        1 if dout is None else dout.stride()[0],
        _optional("carry_in", carry_in, (rows, hidden), FP32),
        _optional("rec", rec, (rows, hidden), (dg.dtype,)),
        _low(dg),
        saved.data_ptr(),
        _optional("h", h, (rows, hidden), FP32, rows=True),
        1 if h is None else h.stride()[0],
        carry_out.data_ptr(),
        dx.data_ptr(),
        dx.stride()[0],
        _low(dx),
        dg.data_ptr(),
        _optional("db", db, (3 * hidden,), FP32),
    )


def additive_scores(query, keys, v, keep: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Scores ``e = v · tanh(q + k)`` (``additive.c``). query: (n, G, D), keys: (n, S, D),
    v: (D,), all fp32 contiguous. Returns scores (n, G, S) and, when ``keep``, the energies
    T (n, G, S, D) that backward needs."""
    if not isinstance(query, torch.Tensor) or query.dim() != 3:
        raise ValueError("query: expected a 3-D tensor (sentences, group, size)")
    if not isinstance(keys, torch.Tensor) or keys.dim() != 3:
        raise ValueError("keys: expected a 3-D tensor (sentences, positions, size)")
    n, group, size = query.shape
    positions = keys.size(1)
    _size("size", size, 1, MAX_ROW)
    check("query", query, (n, group, size), FP32)
    check("keys", keys, (n, positions, size), FP32)
    check("v", v, (size,), FP32)
    scores = query.new_empty(n, group, positions)
    energies = query.new_empty(n, group, positions, size) if keep else None
    _library().additive_scores(
        n,
        group,
        positions,
        size,
        query.data_ptr(),
        keys.data_ptr(),
        v.data_ptr(),
        scores.data_ptr(),
        None if energies is None else energies.data_ptr(),
    )
    return scores, energies


def additive_scores_backward(grad_scores, energies, v):
    """∂q (n, G, D), ∂k (n, S, D), ∂v (D,) of the scores (``additive.c``). grad_scores:
    (n, G, S), energies: (n, G, S, D) from :func:`additive_scores`, v: (D,), fp32 contiguous."""
    if not isinstance(energies, torch.Tensor) or energies.dim() != 4:
        raise ValueError("energies: expected a 4-D tensor (sentences, group, positions, size)")
    n, group, positions, size = energies.shape
    _size("size", size, 1, MAX_ROW)
    check("energies", energies, (n, group, positions, size), FP32)
    check("grad_scores", grad_scores, (n, group, positions), FP32)
    check("v", v, (size,), FP32)
    grad_query = energies.new_empty(n, group, size)
    grad_keys = energies.new_empty(n, positions, size)
    grad_v = energies.new_zeros(size)
    _library().additive_scores_backward(
        n,
        group,
        positions,
        size,
        grad_scores.data_ptr(),
        energies.data_ptr(),
        v.data_ptr(),
        grad_query.data_ptr(),
        grad_keys.data_ptr(),
        grad_v.data_ptr(),
    )
    return grad_query, grad_keys, grad_v


def cross_entropy_chunk(logits, real: int, targets, smoothing: float, grad_b=None) -> float:
    """The summed label-smoothed cross-entropy of the first ``real`` rows of ``logits``
    (``cross_entropy.c``); with ``grad_b``, G overwrites ``logits`` (padding rows zero) and
    its column sums are added to ``grad_b``.

    logits: (rows, V) fp32/bf16 contiguous; targets: (real,) int64 in [0, V); grad_b: (V,) fp32.
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        raise ValueError("logits: expected a 2-D tensor (rows, vocabulary)")
    rows, vocab = logits.shape
    _size("vocabulary", vocab, 1, MAX_ROW)
    _size("real", real, 0, rows)
    check("logits", logits, (rows, vocab), FP32_OR_BF16)
    check("targets", targets, (real,), (torch.int64,))
    if real and not (0 <= int(targets.min()) and int(targets.max()) < vocab):
        raise ValueError(f"targets: must be in [0, {vocab}), got {targets.min()}..{targets.max()}")
    return _library().cross_entropy_chunk(
        rows,
        real,
        vocab,
        logits.data_ptr(),
        _low(logits),
        targets.data_ptr(),
        float(smoothing),
        int(grad_b is not None),
        _optional("grad_b", grad_b, (vocab,), FP32),
    )


def best_words(logits, k: int, bias=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best log-probabilities (rows, k) fp32, best first, and their columns (rows, k)
    int64 (``best_words.c``). logits: (rows, V) fp32/bf16 contiguous; bias: (V,) fp32 or
    None; 1 ≤ k ≤ V."""
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        raise ValueError("logits: expected a 2-D tensor (rows, vocabulary)")
    rows, vocab = logits.shape
    _size("vocabulary", vocab, 1, MAX_ROW)
    _size("k", k, 1, vocab)
    check("logits", logits, (rows, vocab), FP32_OR_BF16)
    values = logits.new_empty(rows, k, dtype=torch.float32)
    columns = logits.new_empty(rows, k, dtype=torch.int64)
    _library().best_words(
        rows,
        vocab,
        logits.data_ptr(),
        _low(logits),
        _optional("bias", bias, (vocab,), FP32),
        k,
        values.data_ptr(),
        columns.data_ptr(),
    )
    return values, columns
