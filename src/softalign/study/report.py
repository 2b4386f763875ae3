"""Build a study's report from its directory alone: ``results.json``, PNGs, ``report.html``.

Inputs (written by the runner): ``study.json``, ``test.src``/``test.ref`` and each variant's
``runs/VARIANT/study-eval.json``. The HTML embeds its images, so the one file can be sent
around; the PNGs are written next to it as well.
"""

from __future__ import annotations

import base64
import html
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from softalign import __version__
from softalign.analysis.heatmap import save_attention
from softalign.errors import SoftalignError
from softalign.study.figures import plot_by_length, plot_curves
from softalign.study.plan import StudyPlan, load_plan, run_dir

EVAL_FILE = "study-eval.json"


def load_results(study_dir: Path, plan: StudyPlan) -> dict[str, dict[str, Any]]:
    results = {}
    for variant in plan.variants:
        path = run_dir(study_dir, variant) / EVAL_FILE
        if not path.is_file():
            raise SoftalignError(
                f"{path}: variant '{variant}' has not been evaluated yet; run the study again"
            )
        results[variant] = json.loads(path.read_text(encoding="utf-8"))
    return results


def read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise SoftalignError(f"{path}: missing (written by the study runner)")
    return path.read_text(encoding="utf-8").splitlines()


SUMMARY_KEYS = ("parameters", "steps", "train_minutes", "tokens_per_s", "bleu", "chrf")


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The per-variant figures of ``results.json`` (no hypotheses, no matrices)."""
    keys = (*SUMMARY_KEYS, "stopped", "checkpoint", "decode_seconds", "sentences_per_s")
    keys += ("sequence_accuracy", "token_accuracy", "buckets", "accuracy_buckets")
    keys += ("valid_curve", "signature")
    return {key: result[key] for key in keys if key in result}


def markdown_tables(plan: StudyPlan, results: dict[str, dict[str, Any]]) -> str:
    """The summary table and the by-length table(s), in Markdown (printed and in README)."""
    exact = plan.is_synthetic
    head = "| variant | parameters | steps | minutes | target tok/s | BLEU | chrF |"
    if exact:
        head += " seq. acc. | token acc. |"
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for variant, r in results.items():
        row = (
            f"| {variant} | {r['parameters']:,} | {r['steps']} | {r['train_minutes']:.1f} "
            f"| {r['tokens_per_s'] or '-'} | {r['bleu']:.2f} | {r['chrf']:.2f} |"
        )
        if exact:
            row += f" {100 * r['sequence_accuracy']:.1f}% | {100 * r['token_accuracy']:.1f}% |"
        lines.append(row)
    out = "\n".join(lines) + "\n\n" + by_length_table(results, "buckets", "bleu", "BLEU")
    if exact:
        out += "\n\n" + by_length_table(
            results, "accuracy_buckets", "sequence_accuracy", "sequence accuracy", percent=True
        )
    return out


def by_length_table(
    results: dict[str, dict[str, Any]], table: str, key: str, label: str, percent: bool = False
) -> str:
    variants = list(results)
    first = results[variants[0]][table]
    show = lambda x: "-" if x is None else (f"{100 * x:.1f}%" if percent else f"{x:.2f}")  # noqa: E731
    lines = [
        f"| source words | sentences | {' | '.join(f'{label} {v}' for v in variants)} |",
        "|" + " --- |" * (len(variants) + 2),
    ]
    for k, bucket in enumerate(first):
        cells = [show(results[v][table][k][key]) for v in variants]
        lines.append(f"| {bucket['bucket']} | {bucket['count']} | {' | '.join(cells)} |")
    return "\n".join(lines)


def draw_figures(
    study_dir: Path, plan: StudyPlan, results: dict[str, dict[str, Any]]
) -> dict[str, Path]:
    figures = {
        "bleu_by_length": plot_by_length(
            results,
            study_dir / "bleu_by_length.png",
            table="buckets",
            metrics={"bleu": "BLEU", "chrf": "chrF"},
            title=f"test scores by source length ({plan.budget_label} per variant)",
        ),
        "curves": plot_curves(results, study_dir / "curves.png"),
    }
    if plan.is_synthetic:
        figures["accuracy_by_length"] = plot_by_length(
            results,
            study_dir / "accuracy_by_length.png",
            table="accuracy_buckets",
            metrics={"sequence_accuracy": "sequence accuracy", "token_accuracy": "token accuracy"},
            title="exact-match accuracy by input length",
        )
    for variant, result in results.items():
        shown = result["heatmap"]
        if shown["attention"] is not None and shown["target_tokens"]:
            figures[f"heatmap_{variant}"] = save_attention(
                study_dir / f"heatmap_{variant}.png",
                np.array(shown["attention"]),
                shown["source_tokens"],
                shown["target_tokens"],
                title=f"{variant} attention (rows: output, columns: source)",
            )
    return figures


def build_report(study_dir: Path) -> Path:
    """Write ``results.json``, the PNGs and ``report.html``; return the HTML's path."""
    plan = load_plan(study_dir)
    results = load_results(study_dir, plan)
    sources, references = read_lines(study_dir / "test.src"), read_lines(study_dir / "test.ref")
    figures = draw_figures(study_dir, plan, results)
    payload = {
        "budget": plan.budget_label,
        "beam": plan.beam,
        "test_sentences": len(sources),
        "corpus": plan.config["data"].get("corpus") or plan.config["data"].get("test_src"),
        "variants": {variant: summary(r) for variant, r in results.items()},
        "figures": {name: path.name for name, path in figures.items()},
        "environment": environment(),
    }
    (study_dir / "results.json").write_text(json.dumps(payload, indent=2) + "\n", "utf-8")
    page = render_html(plan, results, figures, sources, references, payload)
    path = study_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def environment() -> dict[str, str]:
    return {
        "softalign": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
    }


def image(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def markdown_to_html_table(markdown: str) -> str:
    """The pipe tables of :func:`markdown_tables` as HTML tables."""
    blocks = []
    for block in markdown.strip().split("\n\n"):
        rows = [
            [html.escape(c.strip()) for c in line.strip().strip("|").split("|")]
            for line in block.splitlines()
            if not set(line.replace("|", "").split()) <= {"---"}
        ]
        head = "".join(f"<th>{c}</th>" for c in rows[0])
        body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows[1:])
        blocks.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    return "\n".join(blocks)


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img { max-width: 100%; }
.example td { text-align: left; }
code, pre { background: #f4f4f4; padding: 2px 4px; }
"""


def render_html(
    plan: StudyPlan,
    results: dict[str, dict[str, Any]],
    figures: dict[str, Path],
    sources: list[str],
    references: list[str],
    payload: dict[str, Any],
) -> str:
    esc = html.escape
    shown = next(iter(results.values()))["heatmap"]["index"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>softalign study: {esc(', '.join(results))}</title><style>{STYLE}</style>",
        "</head><body>",
        "<h1>Fixed context vector vs soft attention</h1>",
        f"<p>Corpus <code>{esc(str(payload['corpus']))}</code>; {len(sources)} test sentences; "
        f"every variant trained with the same data, size, seed and a budget of "
        f"<b>{esc(plan.budget_label)}</b>, evaluated with its latest checkpoint, beam "
        f"{plan.beam}. Variant <code>none</code> is the encoder-decoder with a single "
        "fixed-length context vector (RNNenc); the others attend over every source position "
        "(RNNsearch).</p>",
        "<h2>Results</h2>",
        markdown_to_html_table(markdown_tables(plan, results)),
        "<h2>Scores by source length</h2>",
        image(figures["bleu_by_length"], "BLEU and chrF by source length"),
    ]
    if "accuracy_by_length" in figures:
        parts += [
            "<h2>Exact-match accuracy by length</h2>",
            image(figures["accuracy_by_length"], "accuracy by length"),
        ]
    parts += ["<h2>Training curves</h2>", image(figures["curves"], "loss against wall time")]
    parts += [
        "<h2>A long test sentence</h2>",
        "<table class='example'>",
        f"<tr><th>source</th><td>{esc(sources[shown])}</td></tr>",
        f"<tr><th>reference</th><td>{esc(references[shown])}</td></tr>",
    ]
    for variant, result in results.items():
        parts.append(f"<tr><th>{esc(variant)}</th><td>{esc(result['hypotheses'][shown])}</td></tr>")
    parts.append("</table>")
    for variant in results:
        if f"heatmap_{variant}" in figures:
            parts += [f"<h3>{esc(variant)}</h3>", image(figures[f"heatmap_{variant}"], variant)]
    parts += [
        "<h2>Plan and environment</h2>",
        f"<pre>{esc(json.dumps(plan.config, indent=2))}</pre>",
        f"<p>{esc(json.dumps(payload['environment']))}</p>",
        "</body></html>",
    ]
    return "\n".join(parts)
