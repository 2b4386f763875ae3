"""The study's plots: a metric by source length per variant, and loss against wall time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402


def plot_by_length(
    results: dict[str, dict[str, Any]],
    path: Path,
    *,
    table: str,
    metrics: dict[str, str],
    title: str,
) -> Path:
    """One panel per metric (``{key: axis label}``) of ``result[table]``'s buckets, one line
    per variant; the x labels give each bucket's range and sentence count."""
    fig = Figure(figsize=(6.4 * len(metrics), 4.2))
    first = next(iter(results.values()))[table]
    xs = list(range(len(first)))
    for k, (key, label) in enumerate(metrics.items()):
        ax = fig.add_subplot(1, len(metrics), k + 1)
        for variant, result in results.items():
            ys = [float("nan") if b[key] is None else b[key] for b in result[table]]
            ax.plot(xs, ys, marker="o", label=variant)
        ax.set_xticks(xs, [f"{b['bucket']}\n(n={b['count']})" for b in first])
        ax.set_xlabel("source length (words)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def plot_curves(results: dict[str, dict[str, Any]], path: Path) -> Path:
    """Validation loss (solid; training loss dotted) against wall-clock minutes."""
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    for index, (variant, result) in enumerate(results.items()):
        color = f"C{index}"
        train = result["train_curve"]
        if train:
            ax.plot(
                [t / 60 for t, _ in train],
                [loss for _, loss in train],
                linestyle=":",
                color=color,
                alpha=0.6,
            )
        valid = result["valid_curve"]
        if valid:
            ax.plot(
                [t / 60 for t, _ in valid],
                [loss for _, loss in valid],
                marker="o",
                color=color,
                label=variant,
            )
        elif train:
            ax.plot([], [], color=color, label=f"{variant} (training loss only)")
    ax.set_xlabel("wall-clock minutes (validation included)")
    ax.set_ylabel("loss per target token")
    ax.set_title("validation loss (solid) and training loss (dotted)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
