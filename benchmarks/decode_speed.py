"""Decoding speed of one trained run, cold and warm, in one process.

    python benchmarks/decode_speed.py RUN_DIR SOURCE [--precision fp32 bf16] [--beam 1 5]
        [--batch-tokens 2000] [--repeats 3] [--out DIR]

Translates every line of SOURCE with ``Translator.translate`` ``--repeats`` times for each
precision and beam size and prints a Markdown table of sentences/s: *cold* is the first pass
(what a fresh process translating one file sees: under bf16, oneDNN builds a kernel for every
new matrix shape on first use; kernels built for an earlier row of the table are reused, so
give one precision and one beam size for a strictly cold figure), *warm* the best of the
others (a long-running server). No attention is kept, as in ``peers.py`` and ``softalign
translate`` without ``--attention``. The
batches hold ``--batch-tokens`` source tokens, as ``peers.py`` gives every system. ``--out``
writes the last pass's translations, ``hyp.{precision}.beam{K}.txt``, to compare outputs or
score them (``sacrebleu REF -i FILE``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from softalign.translator import Translator


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("source", type=Path, help="one sentence per line")
    p.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    p.add_argument("--beam", type=int, nargs="+", default=[1, 5])
    p.add_argument("--batch-tokens", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    if args.repeats < 2:
        raise SystemExit("--repeats: at least 2 (one cold pass, then warm ones)")
    lines = args.source.read_text(encoding="utf-8").splitlines()
    print(f"{len(lines)} sentences of {args.source}, {args.batch_tokens} source tokens a batch\n")
    print("| precision | beam | cold sent/s | warm sent/s |\n|---|---|---|---|")
    for precision in args.precision:
        for beam in args.beam:
            translator = Translator.load(args.run_dir, precision=precision)  # a fresh model
            budget = {"decoding.batch_tokens": args.batch_tokens * beam}  # as peers.py
            translator.config = translator.config.replace(**budget)
            seconds = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                found = translator.translate(lines, beam=beam, attention=False)
                seconds.append(time.perf_counter() - start)
            cold, warm = len(lines) / seconds[0], len(lines) / min(seconds[1:])
            print(f"| {precision} | {beam} | {cold:.1f} | {warm:.1f} |", flush=True)
            if args.out:
                args.out.mkdir(parents=True, exist_ok=True)
                hyp = args.out / f"hyp.{precision}.beam{beam}.txt"
                hyp.write_text("".join(t.text + "\n" for t in found), encoding="utf-8")


if __name__ == "__main__":
    main()
