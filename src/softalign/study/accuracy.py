"""Exact-match accuracy of outputs whose correct answer is known (the synthetic tasks).

For a hypothesis h and reference r as word lists:

- sequence accuracy: 1 if h == r else 0;
- token accuracy: #{i : h_i == r_i} / max(|h|, |r|)  (position by position, so a dropped or
  extra word costs every later position and a length mismatch is never fully right).

Per length bucket both are pooled over the bucket's sentences: sequence accuracy is the share
of exact outputs, token accuracy is the matched positions over all positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from softalign.analysis.by_length import bucket_of


@dataclass(frozen=True)
class AccuracyBucket:
    low: int
    high: int | None
    count: int
    sequence: float | None  # None for an empty bucket
    token: float | None

    @property
    def label(self) -> str:
        return f"{self.low}+" if self.high is None else f"{self.low}-{self.high}"

    def as_dict(self) -> dict[str, object]:
        rounded = lambda x: None if x is None else round(x, 4)  # noqa: E731
        return {
            "bucket": self.label,
            "count": self.count,
            "sequence_accuracy": rounded(self.sequence),
            "token_accuracy": rounded(self.token),
        }


def matched_positions(hypothesis: list[str], reference: list[str]) -> tuple[int, int]:
    """(positions where the words agree, max of the two lengths)."""
    same = sum(h == r for h, r in zip(hypothesis, reference, strict=False))
    return same, max(len(hypothesis), len(reference))


def accuracy(hypotheses: Sequence[str], references: Sequence[str]) -> tuple[float, float]:
    """(sequence accuracy, token accuracy) of a whole set; (0, 0) when it is empty."""
    exact = matched = positions = 0
    for hyp, ref in zip(hypotheses, references, strict=True):
        h, r = hyp.split(), ref.split()
        exact += h == r
        same, length = matched_positions(h, r)
        matched, positions = matched + same, positions + length
    if not hypotheses:
        return 0.0, 0.0
    return exact / len(hypotheses), matched / positions if positions else 1.0


def accuracy_by_length(
    sources: Sequence[str],
    hypotheses: Sequence[str],
    references: Sequence[str],
    edges: Sequence[int],
) -> list[AccuracyBucket]:
    """One :class:`AccuracyBucket` per source-length bucket (as in ``by_length``)."""
    members: list[list[int]] = [[] for _ in range(len(edges) + 1)]
    for i, source in enumerate(sources):
        members[bucket_of(len(source.split()), edges)].append(i)
    lows = [1, *(edge + 1 for edge in edges)]
    highs: list[int | None] = [*edges, None]
    buckets = []
    for low, high, indices in zip(lows, highs, members, strict=True):
        if indices:
            sequence, token = accuracy(
                [hypotheses[i] for i in indices], [references[i] for i in indices]
            )
        else:
            sequence = token = None
        buckets.append(AccuracyBucket(low, high, len(indices), sequence, token))
    return buckets
