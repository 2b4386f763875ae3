"""What the fast CPU backend buys: training speed of the same model by backend, in one run.

    python benchmarks/backend_speed.py [--data-dir ../shared/data/multi30k] [--steps 60]
        [--warmup 20] [--rounds 2] [--variants reference,fast,fast-nokernels]

Trains ``configs/multi30k-en-de.yaml`` (the peers' model, fp32) for ``--warmup`` +
``--steps`` steps with each variant, in a fresh ``softalign train`` process each, the order
rotating between rounds, and prints the median target tokens/s of the logged steps after
warm-up and its ratio to the reference backend:

- ``reference``: ``--backend reference`` (plain PyTorch: packed nn.GRU, autograd per step,
  F.cross_entropy over the full logits);
- ``fast``: ``--backend fast`` with softalign's C kernels;
- ``fast-nokernels``: ``--backend fast`` with ``SOFTALIGN_NATIVE=0`` (what a machine without
  a C compiler gets; the figure in ``softalign/backend.py``'s warning comes from here).

Every variant inherits this process's environment, so a capped rehearsal of an AVX2 machine is
``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 SOFTALIGN_MARCH=x86-64-v3 python ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VARIANTS = {  # name: (backend, extra environment)
    "reference": ("reference", {}),
    "fast": ("fast", {}),
    "fast-nokernels": ("fast", {"SOFTALIGN_NATIVE": "0"}),
}
CAPS = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "SOFTALIGN_MARCH", "SOFTALIGN_NATIVE")


def cpu_class() -> str:
    model, flags = "unknown CPU", set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name") and model == "unknown CPU":
            model = line.split(":", 1)[1].strip()
        if line.startswith("flags") and not flags:
            flags = set(line.split(":", 1)[1].split())
    isa = [
        f for f in ("avx2", "avx512bw", "avx512_bf16", "amx_bf16", "avx_ne_convert") if f in flags
    ]
    caps = [f"{k}={os.environ[k]}" for k in CAPS if k in os.environ]
    return f"{model}, {os.cpu_count()} cores ({' '.join(isa)}); caps: {' '.join(caps) or 'none'}"


def train_rates(variant: str, args: argparse.Namespace, workdir: Path) -> list[float]:
    backend, env = VARIANTS[variant]
    run_dir = workdir / f"{variant}-{len(list(workdir.iterdir()))}"
    overrides = [
        f"data.dir={args.data_dir.resolve()}",
        f"training.max_steps={args.warmup + args.steps}",
        "training.max_minutes=0",
        "training.log_every=10",
        "training.valid_every=1000000",
        "training.checkpoint_every=1000000",
    ]
    command = [
        sys.executable,
        "-m",
        "softalign",
        "train",
        str(REPO / "configs/multi30k-en-de.yaml"),
    ]
    command += ["-o", str(run_dir), "--backend", backend, "--no-progress"]
    command += [item for o in overrides for item in ("--set", o)]
    done = subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, timeout=3600
    )
    if done.returncode:
        raise SystemExit(f"{variant}: softalign train failed:\n{done.stderr[-2000:]}")
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["tokens_per_s"] for r in records if "tokens_per_s" in r and r["step"] > args.warmup]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=REPO.parent / "shared/data/multi30k")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--variants", default="reference,fast,fast-nokernels")
    args = p.parse_args()
    variants = args.variants.split(",")
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"--variants: unknown {sorted(unknown)} (use {', '.join(VARIANTS)})")
    if not (args.data_dir / "train.en.gz").is_file():
        raise SystemExit(f"{args.data_dir}: no Multi30k here (train.en.gz); give --data-dir")
    print(f"machine: {cpu_class()}\n")
    rates: dict[str, list[float]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for round_no in range(args.rounds):
            k = round_no % len(variants)
            for variant in variants[k:] + variants[:k]:
                rates[variant] += train_rates(variant, args, Path(tmp))
                print(f"round {round_no + 1}: {variant} done", file=sys.stderr, flush=True)
    base = statistics.median(rates["reference"]) if "reference" in rates else None
    print("| backend | target tok/s (median) | vs reference |\n|---|---|---|")
    for variant in variants:
        rate = statistics.median(rates[variant])
        ratio = f"{rate / base:.2f}×" if base else ""
        print(f"| {variant} | {rate:,.0f} | {ratio} |")


if __name__ == "__main__":
    main()
