"""Commands that make something new from run directories: ``average``, ``plot``, ``export``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def cmd_average(args: argparse.Namespace) -> int:
    from softalign.average import average_run, select_checkpoints

    steps = None if args.steps is None else [s.strip() for s in args.steps.split(",") if s.strip()]
    paths = select_checkpoints(Path(args.run_dir), last=args.last, steps=steps)
    written = average_run(args.run_dir, args.output, paths)
    names = ", ".join(path.name for path in paths)
    print(f"averaged {len(paths)} checkpoints ({names}) into {written}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import shlex

    from softalign.export import export_run, read_evaluation

    evaluations = [read_evaluation(path) for path in args.eval]
    command = ["softalign", "export", args.run_dir, "-o", args.output]
    command += ["--checkpoint", args.checkpoint] if args.checkpoint else []
    for path in args.eval:
        command += ["--eval", path]
    command += ["--onnx"] if args.onnx else []
    out = export_run(
        args.run_dir,
        args.output,
        checkpoint=args.checkpoint,
        evaluations=evaluations,
        command=shlex.join(map(str, command)),
        onnx=args.onnx,
    )
    print(out)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from softalign.analysis.curves import plot_learning_curves, read_metrics, run_names
    from softalign.outputs import check_output

    metrics = [Path(run) / "metrics.jsonl" for run in args.run_dirs]
    check_output(args.output, inputs=metrics, what="plot")
    runs = {
        name: read_metrics(run)
        for name, run in zip(run_names(args.run_dirs), args.run_dirs, strict=True)
    }
    print(plot_learning_curves(runs, args.output))
    return 0
