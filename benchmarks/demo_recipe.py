"""The demo's budget with and without the recipe, side by side: what the recipe buys on the Bible.

    python benchmarks/demo_recipe.py [--minutes 13] [--only before,cosine] [--seeds 1,2,3]
        [--workdir DIR] [--report-only]

Each variant is ``softalign demo`` (English -> French on the embedded Bible, 300 held-out
verses from books never seen in training, beam 5) from scratch for the same training budget,
one after the other (seed by seed, every variant in turn), with ``--set`` overrides of the
demo's config:

- ``before``: the demo as it was before the budget recipe: one joint 8k unigram vocabulary,
  Adam at a constant 2e-3 that halves when the validation loss stops improving (checked every
  400 steps), no warm-up, the latest checkpoint scored;
- ``cosine``: the recipe's schedule (warm-up 100, a cosine from 3e-3 that ends at the
  deadline) on that joint 8k vocabulary, the latest checkpoint scored;
- ``vocab-4000``: the shipped demo: that schedule with the recipe's vocabularies, 4,000
  unigram pieces per side (chosen on Multi30k's val, and again on the Bible's val verses);
- ``averaged``: the shipped demo plus the recipe's end, a checkpoint every 50 steps and the
  last K <= 5 averaged, K chosen on the validation verses.

Each run is also scored (beam 5) on all the corpus's validation verses (the demo's training
validates on the first 100 of them), written once to ``--workdir``: the val columns are what a
choice between variants may read. The held-out verses choose nothing here. With ``--seeds``
each variant runs once per seed (``training.seed``), and the table adds each variant's mean ±
sd: one 13-minute run moves by about a point, more than the variants differ. Prints a markdown
table with the machine named; each run stays under ``--workdir`` with its ``report.md``.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recipes import machine, mean_sd  # noqa: E402  (the CPU named as in the sweep's table)

JOINT_8K = ("data.vocab.size=8000", "data.vocab.joint=true")  # the demo's vocabulary before
VARIANTS: dict[str, tuple[str, ...]] = {
    "before": (
        *JOINT_8K,
        "training.schedule=plateau",
        "training.lr=0.002",
        "training.warmup_steps=0",
        "training.plateau_patience=1",
        "training.checkpoint_every=400",
        "training.keep_checkpoints=2",
        "training.average_last=0",
    ),
    "cosine": JOINT_8K,
    "vocab-4000": (),
    "averaged": (
        "training.checkpoint_every=50",
        "training.keep_checkpoints=5",
        "training.average_last=5",
    ),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=13.0, help="training budget of each run")
    p.add_argument("--only", default=",".join(VARIANTS), help="comma-separated variants")
    p.add_argument("--seeds", default="", help="comma-separated seeds (default: the demo's)")
    p.add_argument("--workdir", type=Path, default=Path.home() / ".cache" / "softalign-demo")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: score and tabulate the finished runs already under --workdir",
    )
    args = p.parse_args(argv)
    try:
        args.seed_list = [int(seed) for seed in args.seeds.split(",")] if args.seeds else [None]
    except ValueError:
        p.error(f"--seeds: comma-separated integers, got {args.seeds!r}")
    unknown = [v for v in args.only.split(",") if v not in VARIANTS]
    if unknown:
        p.error(f"--only: unknown variant(s) {', '.join(unknown)} ({', '.join(VARIANTS)})")
    return args


def demo_command(name: str, run_dir: Path, minutes: float, seed: int | None = None) -> list[str]:
    command = [sys.executable, "-m", "softalign", "demo", "-o", str(run_dir)]
    command += ["--minutes", f"{minutes:g}", "--no-progress"]
    seeded = () if seed is None else (f"training.seed={seed}",)
    for override in (*VARIANTS[name], *seeded):
        command += ["--set", override]
    return command


def validation_files(workdir: Path) -> tuple[Path, Path]:
    """The demo corpus's validation split as ``valid.SRC`` / ``valid.TGT`` under ``workdir``."""
    from softalign.data.sources import load_source
    from softalign.demo import DEMO_CONFIG, DEMO_CORPUS

    data = DEMO_CONFIG["data"]
    paths = workdir / f"valid.{data['src_lang']}", workdir / f"valid.{data['tgt_lang']}"
    if not all(path.exists() for path in paths):
        valid = load_source(DEMO_CORPUS)["valid"]
        for path, lines in zip(paths, (valid.src, valid.tgt), strict=True):
            path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return paths


def validation_command(run_dir: Path, src: Path, ref: Path) -> list[str]:
    """``softalign evaluate`` of the weights the demo scored (its average when it made one,
    else its latest checkpoint) on the validation verses, beam 5, one JSON line."""
    from softalign.demo import weights_to_evaluate

    weights, checkpoint = weights_to_evaluate(run_dir)
    command = [sys.executable, "-m", "softalign", "evaluate", str(weights)]
    command += ["--checkpoint", str(checkpoint), "--src", str(src), "--ref", str(ref)]
    return command + ["--beam", "5", "--json"]


def score_validation(run_dir: Path, src: Path, ref: Path) -> dict[str, str]:
    """Val BLEU and chrF of a finished run, kept in ``RUN/valid-scores.json``."""
    kept = run_dir / "valid-scores.json"
    if not kept.exists():
        done = subprocess.run(
            validation_command(run_dir, src, ref), capture_output=True, text=True, check=False
        )
        if done.returncode:
            raise SystemExit(f"{run_dir}: evaluate on the validation verses failed: {done.stderr}")
        kept.write_text(done.stdout.strip().splitlines()[-1] + "\n", encoding="utf-8")
    scores = json.loads(kept.read_text(encoding="utf-8"))
    return {"val_bleu": f"{scores['bleu']:.2f}", "val_chrf": f"{scores['chrf']:.2f}"}


def read_report(run_dir: Path) -> dict[str, str]:
    """Steps, the weights scored, BLEU and chrF from the demo's ``report.md``."""
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    steps = re.search(r"- training: (\d+) steps", report)
    weights = re.search(r"- weights evaluated: (.+)", report)
    scores = re.search(r"^\| ([\d.]+) \| ([\d.]+) \|$", report, re.MULTILINE)
    if not (steps and weights and scores):
        raise SystemExit(f"{run_dir / 'report.md'}: no steps, weights or scores in it")
    return {
        "steps": f"{int(steps.group(1)):,}",
        "weights": weights.group(1).split(" (how many")[0],
        "bleu": scores.group(1),
        "chrf": scores.group(2),
    }


def run_name(name: str, seed: int | None) -> str:
    return name if seed is None else f"{name}-seed{seed}"


def run_order(variants: list[str], seeds: list[int | None]) -> list[tuple[str, int | None]]:
    """Seed by seed, every variant in turn: a load that drifts over the hours, or a sweep cut
    short, touches every variant alike."""
    return [(name, seed) for seed in seeds for name in variants]


HEADER = (
    "| variant | started (UTC) | steps | weights scored | val BLEU | val chrF "
    "| held-out BLEU | held-out chrF |\n|---|---|---:|---|---:|---:|---:|---:|"
)


def table_row(label: str, started: str, report: dict[str, str]) -> str:
    r = report
    return (
        f"| {label} | {started} | {r['steps']} | {r['weights']} | {r['val_bleu']} "
        f"| {r['val_chrf']} | {r['bleu']} | {r['chrf']} |"
    )


def seed_means(rows: list[tuple[str, int | None, str, dict[str, str]]]) -> list[str]:
    """A ``mean ± sd`` table row for each variant run with more than one seed; ``rows``:
    (variant, seed, start time, report) of each run."""
    by_variant: dict[str, list[dict[str, str]]] = {}
    for name, _, _, report in rows:
        by_variant.setdefault(name, []).append(report)
    lines = []
    for name, reports in by_variant.items():
        if len(reports) < 2:
            continue
        keys = ("val_bleu", "val_chrf", "bleu", "chrf")
        val_bleu, val_chrf, bleu, chrf = (mean_sd([float(r[key]) for r in reports]) for key in keys)
        steps = statistics.mean(int(r["steps"].replace(",", "")) for r in reports)
        lines.append(
            f"| **{name}, mean ± sd of {len(reports)} seeds** | | {steps:,.0f} | "
            f"| **{val_bleu}** | {val_chrf} | **{bleu}** | {chrf} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    todo = run_order(args.only.split(","), args.seed_list)
    for name, seed in todo:
        run_dir = args.workdir / run_name(name, seed)
        if args.report_only and not (run_dir / "report.md").exists():
            raise SystemExit(f"{run_dir}: no finished demo there (no report.md)")
        if run_dir.exists() and not args.report_only:
            raise SystemExit(f"{run_dir}: exists; the demo would continue it (remove it first)")
    args.workdir.mkdir(parents=True, exist_ok=True)
    valid_src, valid_ref = validation_files(args.workdir)
    rows = []
    for name, seed in todo:
        label = run_name(name, seed)
        run_dir = args.workdir / label
        started = "-" if args.report_only else time.strftime("%H:%M", time.gmtime())
        if not args.report_only:
            print(f"[demo_recipe] {label}: {args.minutes:g} minutes from {started} UTC", flush=True)
            with (args.workdir / f"{label}.log").open("w") as log:
                command = demo_command(name, run_dir, args.minutes, seed)
                subprocess.run(command, stdout=log, stderr=log, check=True)
        report = read_report(run_dir) | score_validation(run_dir, valid_src, valid_ref)
        rows.append((name, seed, started, report))
        print(f"[demo_recipe] {table_row(label, started, report)}", flush=True)
    print(f"\nMachine: {machine()}; budget {args.minutes:g} minutes each, one after the other\n")
    print(HEADER)
    for name, seed, started, report in rows:
        print(table_row(run_name(name, seed), started, report))
    print("\n".join(seed_means(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
