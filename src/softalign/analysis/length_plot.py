"""Plot BLEU against source length for one or several runs (one line per run)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

from softalign.analysis.by_length import BucketScore  # noqa: E402
from softalign.errors import SoftalignError  # noqa: E402
from softalign.outputs import atomic_output  # noqa: E402


def plot_by_length(
    reports: dict[str, list[BucketScore]], path: str | Path, metric: str = "bleu"
) -> Path:
    """Write a line plot (PNG or SVG by extension) of ``metric`` per length bucket.

    The x tick labels give each bucket's range and sentence count; empty buckets are gaps.
    """
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        raise SoftalignError(f"{path}: unsupported plot format '{path.suffix}' (use .png or .svg)")
    if not path.parent.is_dir():
        raise SoftalignError(f"{path}: directory {path.parent} does not exist")
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    first = next(iter(reports.values()))
    xs = list(range(len(first)))
    for name, buckets in reports.items():
        ys = [float("nan") if b.bleu is None else getattr(b, metric) for b in buckets]
        ax.plot(xs, ys, marker="o", label=name)
    ax.set_xticks(xs, [f"{b.label}\n(n={b.count})" for b in first])
    ax.set_xlabel("source sentence length (words)")
    ax.set_ylabel("BLEU" if metric == "bleu" else "chrF")
    ax.grid(alpha=0.3)
    if len(reports) > 1:
        ax.legend()
    fig.tight_layout()
    with atomic_output(path, binary=True) as out:
        fig.savefig(out, format=path.suffix.lower()[1:], dpi=100)
    return path
