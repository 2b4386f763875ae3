"""Several runs on one test set: overall and per-length BLEU/chrF in one table and one plot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from softalign.analysis.by_length import (
    DEFAULT_EDGES,
    LengthReport,
    evaluate_by_length,
    format_table,
)
from softalign.errors import SoftalignError


def run_names(run_dirs: Sequence[str | Path]) -> list[str]:
    """Short, distinct names: the directory name, or the full path where names clash."""
    names = [Path(d).name or str(d) for d in run_dirs]
    return [n if names.count(n) == 1 else str(d) for n, d in zip(names, run_dirs, strict=True)]


def compare_runs(
    run_dirs: Sequence[str | Path],
    src_path: str | Path,
    ref_path: str | Path,
    edges: Sequence[int] = DEFAULT_EDGES,
    *,
    beam: int | None = None,
    device: str = "auto",
    backend: str = "auto",
    precision: str | None = None,
) -> dict[str, LengthReport]:
    """Translate the test set with every run; reports keyed by :func:`run_names`."""
    if len(set(map(str, run_dirs))) != len(run_dirs):
        raise SoftalignError("the same run directory is given twice")
    return {
        name: evaluate_by_length(
            run_dir,
            src_path,
            ref_path,
            edges,
            beam=beam,
            device=device,
            backend=backend,
            precision=precision,
        )
        for name, run_dir in zip(run_names(run_dirs), run_dirs, strict=True)
    }


def comparison_table(reports: dict[str, LengthReport]) -> str:
    """Markdown: overall scores per run, then the per-bucket table."""
    lines = ["| run | sentences | BLEU | chrF |", "| --- | --- | --- | --- |"]
    for name, report in reports.items():
        count = sum(b.count for b in report.buckets)
        lines.append(
            f"| {name} | {count} | {report.overall.bleu:.2f} | {report.overall.chrf:.2f} |"
        )
    buckets = format_table({name: report.buckets for name, report in reports.items()})
    return "\n".join(lines) + "\n\n" + buckets
