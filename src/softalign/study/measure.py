"""Measure one trained variant of a study: test scores, by length, cost, curves, a heatmap.

Everything the report needs is returned as plain JSON data (``study-eval.json`` in the
variant's run directory), so the report is rebuilt from files alone. The variant is judged
by its *latest* checkpoint: the study compares what each model reached within the same
budget.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from softalign import checkpoint as ckpt
from softalign.analysis.by_length import DEFAULT_EDGES, score_by_length
from softalign.metrics import score_corpus
from softalign.study.accuracy import accuracy, accuracy_by_length
from softalign.translator import Translator

HEATMAP_MAX_WORDS = 40  # longer sources make unreadable heatmaps


def default_edges(sources: Sequence[str]) -> tuple[int, ...]:
    """Bucket edges every 10 words (20 for long inputs) up to the 95th-percentile length,
    so the open last bucket still holds at least 5% of the sentences."""
    lengths = sorted(len(s.split()) for s in sources)
    if not lengths:
        return DEFAULT_EDGES
    p95 = lengths[min(len(lengths) - 1, int(0.95 * len(lengths)))]
    width = 10 if p95 <= 60 else 20
    return tuple(range(width, p95, width)) or (width,)


def heatmap_index(sources: Sequence[str]) -> int:
    """A long but drawable sentence: length nearest the 80th percentile, at most 40 words."""
    lengths = [len(s.split()) for s in sources]
    wanted = min(HEATMAP_MAX_WORDS, sorted(lengths)[int(0.8 * (len(lengths) - 1))])
    return min(range(len(sources)), key=lambda i: (abs(lengths[i] - wanted), i))


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def training_summary(run_dir: Path) -> dict[str, Any]:
    """Steps, minutes, stop reason, median throughput and the loss curves of a run."""
    latest = ckpt.latest_checkpoint(run_dir)
    state = ckpt.read_state(latest)["train"] if latest else {}
    records = read_metrics(run_dir)
    speeds = [r["tokens_per_s"] for r in records if "tokens_per_s" in r]
    speeds = speeds[1:] or speeds  # the first window holds the warm-up
    return {
        "steps": state.get("step", 0),
        "train_minutes": round(state.get("elapsed_seconds", 0.0) / 60, 2),
        "stopped": state.get("stopped", ""),
        "tokens_per_s": round(statistics.median(speeds)) if speeds else None,
        "valid_curve": [[r["elapsed_s"], r["valid_loss"]] for r in records if "valid_loss" in r],
        "train_curve": [[r["elapsed_s"], r["train_loss"]] for r in records if "train_loss" in r],
    }


def measure_variant(
    variant: str,
    run_dir: Path,
    sources: Sequence[str],
    references: Sequence[str],
    *,
    beam: int,
    edges: Sequence[int],
    heatmap_at: int,
    exact: bool,
    backend: str = "auto",
) -> dict[str, Any]:
    """Translate the test set with the run's latest checkpoint and score it every way."""
    translator = Translator.load(
        run_dir, checkpoint=ckpt.latest_checkpoint(run_dir), backend=backend
    )
    started = time.perf_counter()
    translations = translator.translate(list(sources), beam=beam)
    decode_seconds = time.perf_counter() - started
    hypotheses = [t.text for t in translations]
    scores = score_corpus(hypotheses, list(references))
    shown = translations[heatmap_at]
    result: dict[str, Any] = {
        "variant": variant,
        "checkpoint": translator.checkpoint.name,
        "parameters": sum(p.numel() for p in translator.model.parameters()),
        **training_summary(run_dir),
        "bleu": round(scores.bleu, 2),
        "chrf": round(scores.chrf, 2),
        "signature": scores.signature,
        "decode_seconds": round(decode_seconds, 2),
        "sentences_per_s": round(len(sources) / decode_seconds, 1),
        "buckets": [b.as_dict() for b in score_by_length(sources, hypotheses, references, edges)],
        "heatmap": {
            "index": heatmap_at,
            "source_tokens": shown.source_tokens,
            "target_tokens": shown.target_tokens,
            "attention": None
            if shown.attention is None or variant == "none"
            else np.round(shown.attention, 4).tolist(),
        },
        "hypotheses": hypotheses,
    }
    if exact:
        sequence, token = accuracy(hypotheses, references)
        result["sequence_accuracy"], result["token_accuracy"] = round(sequence, 4), round(token, 4)
        result["accuracy_buckets"] = [
            b.as_dict() for b in accuracy_by_length(sources, hypotheses, references, edges)
        ]
    return result
