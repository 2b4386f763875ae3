"""BLEU and chrF per source-length bucket (as in Bahdanau et al. 2015, Figure 2).

Source length is counted in whitespace-separated words. Bucket edges ``10,20,30`` give the
buckets 1-10, 11-20, 21-30 and 31+ (a sentence of length n goes to the first bucket whose
upper edge is >= n). Each bucket is scored as its own corpus with sacreBLEU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from softalign.errors import SoftalignError
from softalign.metrics import Scores, score_corpus

DEFAULT_EDGES = (10, 20, 30, 40, 50)


@dataclass(frozen=True)
class BucketScore:
    low: int  # shortest source length in the bucket (words)
    high: int | None  # longest, None for the open last bucket
    count: int
    bleu: float | None  # None for an empty bucket
    chrf: float | None

    @property
    def label(self) -> str:
        return f"{self.low}+" if self.high is None else f"{self.low}-{self.high}"

    def as_dict(self) -> dict[str, object]:
        rounded = lambda x: None if x is None else round(x, 2)  # noqa: E731
        return {
            "bucket": self.label,
            "count": self.count,
            "bleu": rounded(self.bleu),
            "chrf": rounded(self.chrf),
        }


@dataclass(frozen=True)
class LengthReport:
    overall: Scores
    buckets: list[BucketScore]
    hypotheses: list[str]


def parse_edges(text: str) -> tuple[int, ...]:
    """``"10,20,30"`` -> ``(10, 20, 30)``: strictly increasing positive integers."""
    try:
        edges = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise SoftalignError(
            f"buckets '{text}': expected comma-separated word counts, e.g. 10,20,30"
        ) from None
    if not edges or edges[0] < 1 or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
        raise SoftalignError(f"buckets '{text}': expected increasing positive integers")
    return edges


def bucket_of(length: int, edges: Sequence[int]) -> int:
    """Index of the bucket of a source of ``length`` words (len(edges) = the open bucket)."""
    for index, edge in enumerate(edges):
        if length <= edge:
            return index
    return len(edges)


def score_by_length(
    sources: Sequence[str],
    hypotheses: Sequence[str],
    references: Sequence[str],
    edges: Sequence[int] = DEFAULT_EDGES,
) -> list[BucketScore]:
    """One :class:`BucketScore` per bucket, empty buckets included (with no scores)."""
    if not len(sources) == len(hypotheses) == len(references):
        raise SoftalignError(
            f"{len(sources)} sources, {len(hypotheses)} hypotheses and "
            f"{len(references)} references: counts must agree"
        )
    members: list[list[int]] = [[] for _ in range(len(edges) + 1)]
    for i, source in enumerate(sources):
        members[bucket_of(len(source.split()), edges)].append(i)
    lows = [1, *(edge + 1 for edge in edges)]
    highs: list[int | None] = [*edges, None]
    buckets = []
    for low, high, indices in zip(lows, highs, members, strict=True):
        if indices:
            hyps, refs = [hypotheses[i] for i in indices], [references[i] for i in indices]
            scores = score_corpus(hyps, refs)
            bleu, chrf = scores.bleu, scores.chrf
        else:
            bleu = chrf = None
        buckets.append(BucketScore(low, high, len(indices), bleu, chrf))
    return buckets


def evaluate_by_length(
    run_dir: str | Path,
    src_path: str | Path,
    ref_path: str | Path,
    edges: Sequence[int] = DEFAULT_EDGES,
    *,
    beam: int | None = None,
    length_penalty: float | None = None,
    device: str = "auto",
    backend: str = "auto",
    precision: str | None = None,
    checkpoint: str | Path | None = None,
    decoding: dict[str, Any] | None = None,
) -> LengthReport:
    """Translate ``src_path`` with a run and score it overall and per length bucket."""
    from softalign.data.corpus import read_parallel
    from softalign.translator import Translator

    pairs = read_parallel(src_path, ref_path)
    translator = Translator.load(
        run_dir,
        checkpoint,
        device=device,
        backend=backend,
        precision=precision,
        decoding=decoding,
    )
    hypotheses = [
        t.text for t in translator.translate(pairs.src, beam=beam, length_penalty=length_penalty)
    ]
    return LengthReport(
        overall=score_corpus(hypotheses, pairs.tgt),
        buckets=score_by_length(pairs.src, hypotheses, pairs.tgt, edges),
        hypotheses=hypotheses,
    )


def format_table(reports: dict[str, list[BucketScore]]) -> str:
    """A Markdown table: one row per bucket, BLEU and chrF columns per named run."""
    names = list(reports)
    if not names:
        return ""
    first = reports[names[0]]
    header = ["source words", "sentences"]
    for name in names:
        header += [f"BLEU {name}", f"chrF {name}"] if len(names) > 1 else ["BLEU", "chrF"]
    show = lambda x: "-" if x is None else f"{x:.2f}"  # noqa: E731
    rows = [header, ["---"] * len(header)]
    for k, bucket in enumerate(first):
        row = [bucket.label, str(bucket.count)]
        for name in names:
            row += [show(reports[name][k].bleu), show(reports[name][k].chrf)]
        rows.append(row)
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)
