"""What buys BLEU per minute: train config variants for the same wall-clock budget, side by side.

    python benchmarks/recipes.py --grid en-de --minutes 10 --parallel 2 --threads 1
    python benchmarks/recipes.py --config configs/multi30k-en-de-15min.yaml --minutes 15 \\
        --seeds 1,2,3 --test                          # the final figure: mean ± sd over seeds

Each variant is the base config plus ``--set`` overrides (a grid below, or ``--variant
NAME=KEY=VALUE,KEY=VALUE``), trained by ``softalign train`` for ``--minutes`` of training
wall clock (``training.max_minutes``; the budget schedules end their decay there) and scored
on the **validation** set with beam 5 (``--length-penalties`` and ``--beams`` try others on
it): only validation figures choose a recipe. ``--test`` also scores test2016 — for the final,
already chosen recipe, never to choose one. A run that wrote ``RUN/averaged``
(``training.average_last``) is scored on the average. The validation and test files are the
config's own (``data.valid_*``, ``data.test_*``), so an En→Fr config scores En→Fr.

``--parallel 2 --threads 1`` trains two variants at once, one core each: a cheaper proxy for
the 2-core budget (each run gets about 60% of a 2-thread run's steps), fine for ranking
variants against each other, not for absolute figures. Runs go under ``--workdir`` (default
``~/.cache/softalign-recipes``); a variant whose run already finished is scored again, not
retrained. Prints a markdown table, best validation BLEU first, with the machine named.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("SOFTALIGN_SHARED_DATA", REPO.parent / "shared" / "data")) / "multi30k"

# Overrides shared by every budget recipe: no validation during the run (the budget schedule
# needs none; it would cost minutes), a checkpoint every 50 steps, the last 5 kept and
# averaged at the end with K chosen on the validation loss.
BUDGET = (
    "training.valid_every=1000000",
    "training.checkpoint_every=50",
    "training.keep_checkpoints=5",
    "training.average_last=5",
)
COSINE = ("training.schedule=cosine", "training.warmup_steps=100", "training.min_lr=1e-5")

GRIDS: dict[str, dict[str, tuple[str, ...]]] = {
    # configs/multi30k-en-de.yaml (the peers' model) under a short budget: "shipped" is the
    # config as it is (plateau schedule, validation with BLEU every 400 steps), the others
    # train without validation and average their last checkpoints (BUDGET); cosine = COSINE
    "en-de": {
        "shipped": (),
        "constant-1e-3": BUDGET,
        "cosine-1e-3": BUDGET + COSINE + ("training.lr=0.001",),
        "cosine-2e-3": BUDGET + COSINE + ("training.lr=0.002",),
        "cosine-3e-3": BUDGET + COSINE + ("training.lr=0.003",),
        "cosine-2e-3-dropout-0.1": BUDGET + COSINE + ("training.lr=0.002", "model.dropout=0.1"),
        "cosine-2e-3-dropout-0.3": BUDGET + COSINE + ("training.lr=0.002", "model.dropout=0.3"),
        "cosine-2e-3-batch-4000": BUDGET
        + COSINE
        + ("training.lr=0.002", "training.batch_tokens=4000"),
        "cosine-2e-3-batch-1000": BUDGET
        + COSINE
        + ("training.lr=0.002", "training.batch_tokens=1000"),
        "cosine-2e-3-tied": BUDGET
        + COSINE
        + ("training.lr=0.002", "model.tie_embeddings=true", "model.output_size=256"),
        "cosine-2e-3-lstm": BUDGET + COSINE + ("training.lr=0.002", "model.rnn_type=lstm"),
        "cosine-2e-3-no-smoothing": BUDGET
        + COSINE
        + ("training.lr=0.002", "training.label_smoothing=0.0"),
        # the next round, around the winner (cosine 3e-3)
        "cosine-4e-3": BUDGET + COSINE + ("training.lr=0.004",),
        "cosine-3e-3-word-dropout-0.1": BUDGET
        + COSINE
        + ("training.lr=0.003", "training.word_dropout=0.1"),
        "cosine-3e-3-lstm": BUDGET + COSINE + ("training.lr=0.003", "model.rnn_type=lstm"),
        "cosine-3e-3-no-input-feeding": BUDGET
        + COSINE
        + ("training.lr=0.003", "model.input_feeding=false"),
        "cosine-3e-3-vocab-4000": BUDGET + COSINE + ("training.lr=0.003", "data.vocab.size=4000"),
        "cosine-3e-3-vocab-10000": BUDGET + COSINE + ("training.lr=0.003", "data.vocab.size=10000"),
        "cosine-3e-3-no-smoothing": BUDGET
        + COSINE
        + ("training.lr=0.003", "training.label_smoothing=0.0"),
    },
}


@dataclass
class Variant:
    name: str
    overrides: tuple[str, ...]
    seed: int | None = None
    scores: dict[str, dict] = field(default_factory=dict)  # split -> evaluate's JSON
    steps: int = 0
    averaged: int = 0

    @property
    def slug(self) -> str:
        base = "".join(c if c.isalnum() else "-" for c in self.name.lower()).strip("-")
        return f"{base}-seed{self.seed}" if self.seed is not None else base


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=Path, default=REPO / "configs" / "multi30k-en-de.yaml")
    p.add_argument("--grid", choices=sorted(GRIDS), help="the variants to train")
    p.add_argument("--only", help="comma-separated variant names of the grid")
    p.add_argument(
        "--variant", action="append", default=[], metavar="NAME=KEY=VALUE,...", help="one more"
    )
    p.add_argument("--minutes", type=float, required=True, help="training budget per run")
    p.add_argument("--seeds", default="", help="comma-separated seeds (default: the config's)")
    p.add_argument("--parallel", type=int, default=1, help="runs at once")
    p.add_argument("--threads", type=int, default=0, help="torch threads per run (0 = all)")
    p.add_argument("--length-penalties", default="", help="also score these on val, e.g. 0.6,1.4")
    p.add_argument("--beams", default="", help="also score these beam sizes on val, e.g. 1,10")
    p.add_argument("--test", action="store_true", help="also score test2016 (final figures)")
    p.add_argument("--workdir", type=Path, default=Path.home() / ".cache" / "softalign-recipes")
    args = p.parse_args(argv)
    if not args.grid and not args.variant:
        args.variant = ["config="]
    return args


def variants(args: argparse.Namespace) -> list[Variant]:
    chosen: list[Variant] = []
    if args.grid:
        grid = GRIDS[args.grid]
        names = args.only.split(",") if args.only else list(grid)
        for name in names:
            if name not in grid:
                raise SystemExit(f"--only: {name!r} is not in grid {args.grid} ({', '.join(grid)})")
            chosen.append(Variant(name, grid[name]))
    for spec in args.variant:
        name, _, sets = spec.partition("=")
        chosen.append(Variant(name or "config", tuple(s for s in sets.split(",") if s)))
    if args.seeds:
        seeds = [int(s) for s in args.seeds.split(",")]
        chosen = [Variant(v.name, v.overrides, seed) for v in chosen for seed in seeds]
    return chosen


def softalign(*arguments: str, threads: int, log: Path) -> subprocess.Popen:
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, "-m", "softalign", *arguments]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log.open("a"), env=env, text=True)


def train_command(args: argparse.Namespace, variant: Variant, run: Path) -> list[str]:
    sets = list(variant.overrides) + [f"training.max_minutes={args.minutes}"]
    sets += ["training.max_steps=1000000"]
    if args.threads:
        sets.append(f"training.threads={args.threads}")
    if variant.seed is not None:
        sets.append(f"training.seed={variant.seed}")
    command = ["train", str(args.config), "-o", str(run), "--no-progress"]
    command += ["--data-dir", str(DATA)]
    for s in sets:
        command += ["--set", s]
    return command


def finished(run: Path) -> bool:
    return (run / "recipe-done").exists()


def train_all(args: argparse.Namespace, todo: list[Variant]) -> None:
    queue = [v for v in todo if not finished(args.workdir / v.slug)]
    running: list[tuple[Variant, subprocess.Popen]] = []
    while queue or running:
        while queue and len(running) < args.parallel:
            variant = queue.pop(0)
            run = args.workdir / variant.slug
            if run.exists():  # an unfinished run from before: start it afresh
                subprocess.run(["rm", "-rf", str(run)], check=True)
            run.mkdir(parents=True)
            print(f"[recipes] training {variant.slug} for {args.minutes:g} min", file=sys.stderr)
            proc = softalign(
                *train_command(args, variant, run),
                threads=args.threads,
                log=run / "recipe-train.log",
            )
            running.append((variant, proc))
        time.sleep(5)
        for variant, proc in list(running):
            if proc.poll() is not None:
                running.remove((variant, proc))
                run = args.workdir / variant.slug
                if proc.returncode:
                    raise SystemExit(
                        f"{variant.slug}: training failed, see {run / 'recipe-train.log'}"
                    )
                (run / "recipe-done").touch()


def split_files(config: Path, split: str) -> tuple[Path, Path]:
    """The config's own validation or test files (``data.valid_*``, ``data.test_*``), in DATA."""
    from softalign.config import load_config

    data = load_config(config).data
    names = {"val": (data.valid_src, data.valid_tgt), "test2016": (data.test_src, data.test_tgt)}
    src, tgt = names[split]
    if not src or not tgt:
        raise SystemExit(f"{config}: data has no {split} files")
    return DATA / src, DATA / tgt


def scored_run(run: Path) -> Path:
    from softalign.average import current_average

    return current_average(run) or run


def val_settings(args: argparse.Namespace) -> list[tuple[int, float | None]]:
    """(beam, length penalty) pairs scored on val: beam 5 with the config's penalty first."""
    settings: list[tuple[int, float | None]] = [(5, None)]
    settings += [(5, float(x)) for x in args.length_penalties.split(",") if x]
    settings += [(int(x), None) for x in args.beams.split(",") if x and int(x) != 5]
    return settings


def evaluate_all(args: argparse.Namespace, todo: list[Variant]) -> None:
    jobs = []
    settings = val_settings(args)
    splits = ["val"] + (["test2016"] if args.test else [])
    files = {split: split_files(args.config, split) for split in splits}  # read the config once
    for variant in todo:
        run = args.workdir / variant.slug
        variant.steps = last_step(run)
        variant.averaged = averaged_last(run)
        for split in splits:
            for beam, lp in settings if split == "val" else [(5, None)]:
                jobs.append((variant, split, beam, lp))
    running: list[tuple[Variant, str, int, float | None, subprocess.Popen]] = []
    while jobs or running:
        while jobs and len(running) < args.parallel:
            variant, split, beam, lp = jobs.pop(0)
            src, ref = files[split]
            run = args.workdir / variant.slug
            command = ["evaluate", str(scored_run(run)), "--src", str(src), "--ref", str(ref)]
            command += ["--beam", str(beam), "--json"]
            if lp is not None:
                command += ["--length-penalty", str(lp)]
            proc = softalign(*command, threads=args.threads, log=run / "recipe-evaluate.log")
            running.append((variant, split, beam, lp, proc))
        time.sleep(2)
        for item in list(running):
            variant, split, beam, lp, proc = item
            if proc.poll() is None:
                continue
            running.remove(item)
            out = proc.stdout.read() if proc.stdout else ""
            if proc.returncode:
                raise SystemExit(f"{variant.slug}: evaluate failed, see its recipe-evaluate.log")
            key = split + (f" beam {beam}" if beam != 5 else "")
            key += f" lp {lp:g}" if lp is not None else ""
            variant.scores[key] = json.loads(out.strip().splitlines()[-1])


def last_step(run: Path) -> int:
    from softalign.checkpoint import latest_checkpoint

    return int(latest_checkpoint(run).name.split("-")[1])


def averaged_last(run: Path) -> int:
    metrics = run / "metrics.jsonl"
    for line in metrics.open() if metrics.exists() else []:
        record = json.loads(line)
        if "averaged_last" in record:
            return int(record["averaged_last"])
    return 0


def mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def table(args: argparse.Namespace, done: list[Variant]) -> str:
    names = list(dict.fromkeys(v.name for v in done))
    keys = list(dict.fromkeys(k for v in done for k in v.scores))
    header = ["variant", "seeds", "steps", "averaged K"]
    chrf_keys = list(dict.fromkeys(keys[:1] + keys[-1:]))  # val's, and test's when scored
    header += [f"{k} BLEU" for k in keys] + [f"{k} chrF" for k in chrf_keys]
    rows = []
    for name in names:
        runs = [v for v in done if v.name == name]
        row = [name, ",".join(str(v.seed) for v in runs if v.seed is not None) or "config"]
        row.append(" / ".join(str(v.steps) for v in runs))
        row.append(" / ".join(str(v.averaged or "-") for v in runs))
        row += [mean_sd([v.scores[k]["bleu"] for v in runs]) for k in keys]
        row += [mean_sd([v.scores[k]["chrf"] for v in runs]) for k in chrf_keys]
        rows.append(row)
    rows.sort(key=lambda r: -float(r[4].split()[0]))
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "")
    return f"{cpu}, {os.cpu_count()} cores" + (f", oneDNN capped to {cap}" if cap else "")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not DATA.exists():
        raise SystemExit(f"{DATA}: Multi30k not found (set SOFTALIGN_SHARED_DATA)")
    args.workdir = args.workdir.expanduser().resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    todo = variants(args)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    train_all(args, todo)
    evaluate_all(args, todo)
    print(f"## {args.config.name}: {args.minutes:g}-minute budget ({started})\n")
    print(
        f"{machine()}; {args.parallel} run(s) at once, {args.threads or 'all'} thread(s) each; "
        f"beam 5, cased sacreBLEU; runs in {args.workdir}\n"
    )
    print(table(args, todo))
    print()
    print("\n".join(run_lines(todo)))
    return 0


def run_lines(done: list[Variant]) -> list[str]:
    """One line per run: its overrides, then each score it got, so a mean ± sd over seeds can
    be read back to the seeds it came from."""
    lines = []
    for v in done:
        scores = ", ".join(
            f"{key} {v.scores[key]['bleu']:.2f} (chrF {v.scores[key]['chrf']:.2f})"
            for key in v.scores
        )
        overrides = " ".join(v.overrides) or "(the config as it is)"
        lines.append(f"- {v.slug}: {overrides}; {v.steps} steps; {scores}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
