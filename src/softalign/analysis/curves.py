"""Learning curves of one or several runs from their ``metrics.jsonl``: training loss,
validation loss and validation BLEU, against the step (top row) and wall time (bottom row)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

from softalign.errors import SoftalignError  # noqa: E402
from softalign.outputs import atomic_output  # noqa: E402

PANELS = (
    ("train_loss", "training loss"),
    ("valid_loss", "validation loss"),
    ("valid_bleu", "BLEU"),
)


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of ``RUN/metrics.jsonl``; a run without any is a one-line error."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise SoftalignError(f"{run_dir}: no metrics.jsonl (not a trained run directory?)")
    records = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                continue  # the last line of a run killed while writing it
            raise SoftalignError(f"{path}:{number}: not a JSON record") from None
        if isinstance(record, dict) and "step" in record:
            records.append(record)
    if not records:
        raise SoftalignError(f"{path}: no metrics recorded yet")
    return records


def run_names(run_dirs: Sequence[str | Path]) -> list[str]:
    """Each run's folder name, or its full path where two names collide."""
    names = [Path(r).name for r in run_dirs]
    return [n if names.count(n) == 1 else str(r) for n, r in zip(names, run_dirs, strict=True)]


def plot_learning_curves(runs: dict[str, list[dict[str, Any]]], path: str | Path) -> Path:
    """Write a 2x3 grid of curves (PNG or SVG by extension), one line per run."""
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        raise SoftalignError(f"{path}: unsupported plot format '{path.suffix}' (use .png or .svg)")
    if not path.parent.is_dir():
        raise SoftalignError(f"{path}: directory {path.parent} does not exist")
    fig = Figure(figsize=(13, 7), layout="constrained")
    axes = fig.subplots(2, len(PANELS))
    for column, (key, label) in enumerate(PANELS):
        for row, (x_key, x_label, scale) in enumerate(
            (("step", "step", 1.0), ("elapsed_s", "wall time (minutes)", 1 / 60))
        ):
            ax = axes[row][column]
            for name, records in runs.items():
                points = [(r[x_key] * scale, r[key]) for r in records if key in r and x_key in r]
                if points:
                    xs, ys = zip(*points, strict=True)
                    ax.plot(xs, ys, marker="." if len(points) < 50 else None, label=name)
            if not ax.lines:
                ax.text(0.5, 0.5, f"no {label} recorded", ha="center", transform=ax.transAxes)
            ax.set_xlabel(x_label)
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small")
    with atomic_output(path, binary=True) as out:  # written whole or not at all
        fig.savefig(out, format=path.suffix.lower()[1:])
    return path
