"""Token-budget batches with length bucketing, and collation into padded tensors.

A batch holds as many sentence pairs as fit ``max_tokens`` *padded* tokens, counted as
``n_pairs * max(longest source, longest target + 1)`` (the target gains BOS/EOS), so sorting
by length leaves little padding. Shuffling is deterministic: epoch ``e`` of seed ``s`` always
yields the same batches in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from softalign.data.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID


@dataclass
class Batch:
    """Padded tensors of one batch.

    src: (batch, src_len) source ids, PAD after each sentence's end
    src_lengths: (batch,) true source lengths
    tgt_in: (batch, tgt_len) BOS y_1 .. y_n (decoder input), or None when translating
    tgt_out: (batch, tgt_len) y_1 .. y_n EOS (prediction target), or None
    indices: position of each row in the dataset it came from
    """

    src: torch.Tensor
    src_lengths: torch.Tensor
    tgt_in: torch.Tensor | None
    tgt_out: torch.Tensor | None
    indices: list[int]

    @property
    def pad_mask(self) -> torch.Tensor:
        """(batch, src_len) True at padding positions."""
        return self.src == PAD_ID

    @property
    def num_target_tokens(self) -> int:
        return 0 if self.tgt_out is None else int((self.tgt_out != PAD_ID).sum())

    def to(self, device: torch.device) -> Batch:
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return Batch(
            move(self.src), self.src_lengths, move(self.tgt_in), move(self.tgt_out), self.indices
        )


class BatchPlan(Sequence):
    """An epoch's batches as two arrays: the example indices in batch order, and where each
    batch starts. ``plan[i]`` is batch i as a list of example indices.

    8 bytes an example plus 8 a batch, where a list of Python lists costs about 36 bytes an
    example: this is what keeps training memory nearly flat on corpora of millions of pairs.
    """

    def __init__(self, order: np.ndarray, starts: np.ndarray) -> None:
        self.order = order  # (n_examples,) int64
        self.starts = starts  # (n_batches + 1,) int64; batch i is order[starts[i]:starts[i+1]]

    def __len__(self) -> int:
        return len(self.starts) - 1

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        index %= len(self)
        return self.order[self.starts[index] : self.starts[index + 1]].tolist()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, BatchPlan):
            return np.array_equal(self.order, other.order) and np.array_equal(
                self.starts, other.starts
            )
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def reordered(self, batch_order: np.ndarray) -> BatchPlan:
        """The same batches in ``batch_order`` (a permutation of the batch numbers)."""
        sizes = np.diff(self.starts)[batch_order]
        starts = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        # position k of the new order comes from old position old_start + (k - new_start)
        old_starts = self.starts[:-1][batch_order]
        positions = np.repeat(old_starts - starts[:-1], sizes) + np.arange(starts[-1])
        return BatchPlan(self.order[positions], starts)


def batch_starts(widths: np.ndarray, max_tokens: int, chunk: int = 1 << 16) -> np.ndarray:
    """Greedy cuts of examples (in order, of the given padded widths) into batches of at most
    ``max_tokens`` = count x widest; a single example over the budget gets its own batch."""
    starts, count, longest, position = [0], 0, 0, 0
    for first in range(0, len(widths), chunk):  # a chunk at a time: no list of n ints
        for width in widths[first : first + chunk].tolist():
            if count and (count + 1) * max(longest, width) > max_tokens:
                starts.append(position)
                count, longest = 0, 0
            count += 1
            longest = max(longest, width)
            position += 1
    if count:
        starts.append(position)
    return np.asarray(starts, dtype=np.int64)


def token_batches(
    src_lengths: Sequence[int],
    tgt_lengths: Sequence[int] | None,
    max_tokens: int,
    seed: int | None = None,
    epoch: int = 0,
) -> BatchPlan:
    """Group example indices into batches of at most ``max_tokens`` padded tokens.

    With a seed, examples of equal length are ordered randomly and the batch order is
    shuffled, both from ``(seed, epoch)``; without one, batches come sorted by length.
    A single example longer than the budget still gets a batch of its own.
    """
    src = np.asarray(src_lengths, dtype=np.int64)
    tgt = np.zeros_like(src) if tgt_lengths is None else np.asarray(tgt_lengths, dtype=np.int64) + 1
    rng = np.random.default_rng([seed, epoch]) if seed is not None else None
    tie_break = rng.random(len(src)) if rng is not None else np.arange(len(src))
    order = np.lexsort((tie_break, tgt, src))  # by source length, then target, then random
    del tie_break
    plan = BatchPlan(order, batch_starts(np.maximum(src, tgt)[order], max_tokens))
    if rng is not None:
        plan = plan.reordered(rng.permutation(len(plan)))
    return plan


def pad(
    sequences: Sequence[Sequence[int]], prefix: int | None = None, suffix: int | None = None
) -> torch.Tensor:
    """(n, longest) int64 tensor of the sequences, each optionally wrapped, PAD-filled."""
    extra = (prefix is not None) + (suffix is not None)
    width = max(len(s) for s in sequences) + extra
    out = np.full((len(sequences), width), PAD_ID, dtype=np.int64)
    for row, seq in enumerate(sequences):
        start = 0
        if prefix is not None:
            out[row, 0] = prefix
            start = 1
        out[row, start : start + len(seq)] = seq
        if suffix is not None:
            out[row, start + len(seq)] = suffix
    return torch.from_numpy(out)


def collate(
    indices: list[int],
    src_ids: Sequence[Sequence[int]],
    tgt_ids: Sequence[Sequence[int]] | None = None,
) -> Batch:
    """Build a :class:`Batch` from the examples at ``indices``."""
    src = [src_ids[i] for i in indices]
    lengths = torch.tensor([len(s) for s in src], dtype=torch.int64)
    if tgt_ids is None:
        return Batch(pad(src), lengths, None, None, list(indices))
    tgt = [tgt_ids[i] for i in indices]
    return Batch(pad(src), lengths, pad(tgt, prefix=BOS_ID), pad(tgt, suffix=EOS_ID), list(indices))


def drop_words(batch: Batch, p: float, generator: torch.Generator | None = None) -> Batch:
    """Word dropout (Bowman et al. 2016; Sennrich et al. 2016 drop whole words the same way):
    each source word and each decoder-input word but BOS becomes UNK with probability p,

        x̃_i = UNK if u_i < p else x_i,   u_i ~ U(0, 1),

    so the model cannot lean on any single word of its context. Padding stays padding and the
    prediction targets (``tgt_out``) are untouched. For training only; p = 0 returns the batch.
    """
    if p <= 0:
        return batch

    def drop(ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        hit = (torch.rand(ids.shape, generator=generator) < p) & ~keep
        return ids.masked_fill(hit, UNK_ID)

    src = drop(batch.src, batch.src == PAD_ID)
    tgt_in = batch.tgt_in
    if tgt_in is not None:
        tgt_in = drop(tgt_in, (tgt_in == PAD_ID) | (tgt_in == BOS_ID))
    return Batch(src, batch.src_lengths, tgt_in, batch.tgt_out, batch.indices)
