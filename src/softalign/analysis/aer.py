"""Alignment error rate (Och & Ney 2003) against gold sure (S) and possible (P ⊇ S) links::

    precision = |A ∩ P| / |A|      recall = |A ∩ S| / |S|
    AER = 1 - (|A ∩ S| + |A ∩ P|) / (|A| + |S|)

Counts are summed over the whole corpus before dividing (micro-averaged), as usual.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from softalign.analysis.pharaoh import Alignment, Link, read_alignments
from softalign.errors import DataError


@dataclass(frozen=True)
class AERScore:
    precision: float
    recall: float
    aer: float
    predicted: int  # |A|
    sure: int  # |S|
    sure_hits: int  # |A ∩ S|
    possible_hits: int  # |A ∩ P|

    def as_dict(self) -> dict[str, float]:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "aer": round(self.aer, 4),
        }


def alignment_error_rate(
    gold: Sequence[Alignment], predicted: Sequence[Iterable[Link]]
) -> AERScore:
    """Corpus precision, recall and AER of predicted links against gold alignments.

    A sure link counts as possible even when the gold file lists it only once.
    """
    if len(gold) != len(predicted):
        raise DataError(
            f"gold has {len(gold)} sentences but the prediction has {len(predicted)}: "
            "alignment files must have the same number of lines"
        )
    n_pred = n_sure = sure_hits = possible_hits = 0
    for ref, links in zip(gold, predicted, strict=True):
        links = set(links)
        possible = ref.possible | ref.sure
        n_pred += len(links)
        n_sure += len(ref.sure)
        sure_hits += len(links & ref.sure)
        possible_hits += len(links & possible)
    precision = possible_hits / n_pred if n_pred else 0.0
    recall = sure_hits / n_sure if n_sure else 0.0
    denominator = n_pred + n_sure
    aer = 1.0 - (sure_hits + possible_hits) / denominator if denominator else 0.0
    return AERScore(precision, recall, aer, n_pred, n_sure, sure_hits, possible_hits)


def score_files(gold_path: str | Path, pred_path: str | Path, one_index: bool = False) -> AERScore:
    """AER of a predicted Pharaoh file against a gold one (same indexing for both).

    Every link of the prediction counts as a predicted link, ``ipj`` or ``i-j``.
    """
    gold = read_alignments(gold_path, one_index)
    predicted = [a.possible for a in read_alignments(pred_path, one_index)]
    if len(gold) != len(predicted):
        raise DataError(
            f"{gold_path} has {len(gold)} lines but {pred_path} has {len(predicted)}: "
            "one line of links per sentence pair in both"
        )
    return alignment_error_rate(gold, predicted)
