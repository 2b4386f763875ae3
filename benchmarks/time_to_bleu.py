"""Time to a BLEU target: train a config for a wall-clock budget, checkpointing every N steps,
then translate the test set with each checkpoint and report test BLEU against training time.

    python benchmarks/time_to_bleu.py configs/multi30k-en-de.yaml -o runs/ttb-gpu \\
        --minutes 4 --every 200 --target 32 --device cuda --set training.precision=bf16

Training time is the trainer's own clock (``elapsed_seconds`` in each checkpoint: training
and validation, not start-up or this script's evaluation). Throughput is the median target
tokens/s the trainer logged after its first two reports. Prints a Markdown table and writes
``RUN/time_to_bleu.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from softalign import checkpoint as ckpt
from softalign.config import load_config
from softalign.data.corpus import read_parallel
from softalign.metrics import score_corpus
from softalign.translator import Translator


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("-o", "--output", required=True, help="run directory to create")
    parser.add_argument("--minutes", type=float, required=True, help="training budget")
    parser.add_argument("--every", type=int, default=200, help="steps between checkpoints")
    parser.add_argument("--target", type=float, default=32.0, help="test BLEU to reach")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-evals", type=int, default=12, help="checkpoints to evaluate")
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    return parser.parse_args()


def train(args: argparse.Namespace, run_dir: Path) -> float:
    command = [sys.executable, "-m", "softalign", "train", args.config, "-o", str(run_dir)]
    command += ["--device", args.device, "--checkpoint-every", str(args.every), "--no-progress"]
    command += ["--set", f"training.max_minutes={args.minutes}"]
    command += [
        "--set",
        "training.max_steps=100000000",
        "--set",
        "training.keep_checkpoints=100000",
    ]
    command += [x for s in args.set for x in ("--set", s)]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def chosen(checkpoints: list[Path], most: int) -> list[Path]:
    """At most ``most`` checkpoints, evenly spaced, always the last."""
    if len(checkpoints) <= most:
        return checkpoints
    stride = len(checkpoints) / most
    picked = {
        checkpoints[min(len(checkpoints) - 1, round((i + 1) * stride) - 1)] for i in range(most)
    }
    return sorted(picked | {checkpoints[-1]}, key=lambda p: p.name)


def main() -> int:
    args = parse_args()
    run_dir = Path(args.output)
    overrides = list(args.set) + ([f"data.dir={args.data_dir}"] if args.data_dir else [])
    config = load_config(args.config, overrides)
    test = read_parallel(
        Path(config.data.dir) / config.data.test_src, Path(config.data.dir) / config.data.test_tgt
    )
    wall = train(args, run_dir)

    log = run_dir / "metrics.jsonl"
    metrics = [json.loads(x) for x in log.read_text().splitlines()] if log.is_file() else []
    speeds = [m["tokens_per_s"] for m in metrics if "tokens_per_s" in m][2:]

    def measure(path: Path) -> dict:
        state = ckpt.read_state(path)
        translator = Translator.load(run_dir, checkpoint=path, device=args.device)
        started = time.perf_counter()
        hypotheses = [t.text for t in translator.translate(test.src, beam=args.beam)]
        seconds = time.perf_counter() - started
        scores = score_corpus(hypotheses, test.tgt)
        row = {
            "step": state["step"],
            "train_minutes": round(state["train"]["elapsed_seconds"] / 60, 2),
            "bleu": round(scores.bleu, 2),
            "chrf": round(scores.chrf, 2),
            "decode_sentences_per_s": round(len(test.src) / seconds, 1),
        }
        print(f"step {row['step']}: {row['train_minutes']} min, BLEU {row['bleu']}", flush=True)
        return row

    checkpoints = ckpt.list_checkpoints(run_dir)
    rows = [measure(path) for path in chosen(checkpoints, args.max_evals)]
    reached = next((r for r in rows if r["bleu"] >= args.target), None)
    if reached is not None:  # the skipped checkpoints just before it: did one reach it sooner?
        done = {r["step"] for r in rows}
        step_of = {path: ckpt.read_state(path)["step"] for path in checkpoints}
        earlier = [path for path in checkpoints if step_of[path] < reached["step"]]
        for path in reversed(earlier):
            if step_of[path] in done:
                break
            row = measure(path)
            rows.append(row)
            if row["bleu"] < args.target:
                break
            reached = row
        rows.sort(key=lambda r: r["step"])
    device = torch.cuda.get_device_name() if "cuda" in args.device else "cpu"
    result = {
        "config": args.config,
        "overrides": args.set,
        "device": device,
        "beam": args.beam,
        "target_bleu": args.target,
        "minutes_to_target": reached["train_minutes"] if reached else None,
        "median_tokens_per_s": round(statistics.median(speeds)) if speeds else None,
        "process_wall_minutes": round(wall / 60, 2),
        "checkpoints": rows,
    }
    (run_dir / "time_to_bleu.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"\n{args.config} on {device}, {' '.join(args.set) or 'as configured'}; "
        f"median {result['median_tokens_per_s']} target tok/s"
    )
    print("\n| step | training minutes | test BLEU | chrF | beam sentences/s |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        cells = (r["step"], r["train_minutes"], r["bleu"], r["chrf"], r["decode_sentences_per_s"])
        print("| " + " | ".join(str(c) for c in cells) + " |")
    if reached:
        print(
            f"\nBLEU {args.target:g} first reached at step {reached['step']}, "
            f"{reached['train_minutes']} minutes of training"
        )
    else:
        print(f"\nBLEU {args.target:g} not reached within {args.minutes:g} minutes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
