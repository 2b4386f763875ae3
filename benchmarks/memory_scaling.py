"""Peak memory of training from a binarized corpus as the corpus grows (30k vs 1M pairs).

For each size N this writes N generated sentence pairs (the synthetic reversal task, 5-40
words) as text files, runs ``softalign preprocess`` on them, then ``softalign train`` from
the binarized directory for a few steps, and records each command's peak resident memory
(``ru_maxrss`` of the process itself). With ``--raw`` it also trains from the raw text,
which holds the whole encoded corpus in memory, for comparison. Prints a Markdown table.

    nice -n 15 .venv/bin/python benchmarks/memory_scaling.py --sizes 30000,1000000 --raw
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import yaml

from softalign.data.synthetic import generate

CHUNK = 100_000

# peak RSS of the wrapped softalign command, printed to stderr as "PEAK_RSS_KB <n>"
MEASURED = (
    "import resource, sys\n"
    "from softalign.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "print('PEAK_RSS_KB', peak, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def write_corpus(folder: Path, pairs: int) -> None:
    """``train.{src,tgt}`` with ``pairs`` lines and ``valid.{src,tgt}`` with 500."""
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "train.tgt").is_file():
        return
    with open(folder / "train.src", "w") as src, open(folder / "train.tgt", "w") as tgt:
        for start in range(0, pairs, CHUNK):
            chunk = generate("reverse", min(CHUNK, pairs - start), 5, 40, 40, seed=start + 1)
            src.writelines(s + "\n" for s in chunk.src)
            tgt.writelines(t + "\n" for t in chunk.tgt)
    valid = generate("reverse", 500, 5, 40, 40, seed=-1)
    (folder / "valid.src").write_text("".join(s + "\n" for s in valid.src))
    (folder / "valid.tgt").write_text("".join(t + "\n" for t in valid.tgt))


def config(folder: Path, steps: int) -> Path:
    path = folder / "config.yaml"
    data = {
        "data": {
            "dir": str(folder),
            "train_src": "train.src",
            "train_tgt": "train.tgt",
            "valid_src": "valid.src",
            "valid_tgt": "valid.tgt",
            "vocab": {"size": 100},
        },
        "model": {
            "embedding_size": 64,
            "encoder_hidden": 64,
            "encoder_layers": 1,
            "decoder_hidden": 128,
            "attention_size": 64,
            "output_size": 64,
        },
        "training": {
            "max_steps": steps,
            "batch_tokens": 2000,
            "valid_every": 10**6,
            "checkpoint_every": 10**6,
            "valid_bleu": False,
            "log_every": max(1, steps // 2),
            "threads": 1,
        },
    }
    path.write_text(yaml.safe_dump(data))
    return path


def measured(*argv: str) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of one softalign command."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", MEASURED, *argv], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"softalign {' '.join(argv)} failed:\n{done.stderr[-3000:]}")
    line = next(x for x in done.stderr.splitlines() if x.startswith("PEAK_RSS_KB"))
    return int(line.split()[1]) / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="30000,1000000", help="corpus sizes in pairs")
    parser.add_argument("--steps", type=int, default=20, help="training steps per run")
    parser.add_argument("--workdir", default="runs/memory-scaling", help="scratch folder")
    parser.add_argument("--raw", action="store_true", help="also train from raw text")
    args = parser.parse_args()
    root = Path(args.workdir)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        folder = root / f"corpus-{size}"
        write_corpus(folder, size)
        cfg = config(folder, args.steps)
        data_dir = folder / "bin"
        prep_rss, prep_s = measured("preprocess", str(cfg), "-o", str(data_dir))
        run_dir = folder / f"run-bin-{time.time_ns()}"
        train_rss, train_s = measured(
            "train", str(cfg), "-o", str(run_dir), "--no-progress", "--device", "cpu",
            "--set", f"data.binarized={data_dir.resolve()}",
        )  # fmt: skip
        row = {
            "pairs": size,
            "preprocess MiB": prep_rss,
            "preprocess s": prep_s,
            "train binarized MiB": train_rss,
            "train binarized s": train_s,
        }
        if args.raw:
            raw_dir = folder / f"run-raw-{time.time_ns()}"
            row["train raw MiB"], row["train raw s"] = measured(
                "train", str(cfg), "-o", str(raw_dir), "--no-progress", "--device", "cpu"
            )
        rows.append(row)
        print(row, file=sys.stderr, flush=True)
    header = list(rows[0])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(f"{row[k]:.0f}" for k in header) + " |")


if __name__ == "__main__":
    main()
