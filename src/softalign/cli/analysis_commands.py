"""Analysis commands: ``attention``, ``align``, ``aer``, ``compare``, ``study``, BLEU by length."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from softalign.config import decoding_overrides
from softalign.decoding.options import check_search_options
from softalign.errors import SoftalignError
from softalign.outputs import check_output, write_text


def check_plot_path(path: str) -> Path:
    """A .png or .svg path in an existing directory (checked before any decoding)."""
    from softalign.analysis.heatmap import check_image_path

    return check_image_path(path)


def _length_report_json(report) -> dict:
    return {**report.overall.as_dict(), "buckets": [b.as_dict() for b in report.buckets]}


def cmd_evaluate_by_length(args: argparse.Namespace) -> int:
    from softalign.analysis.by_length import evaluate_by_length, format_table, parse_edges
    from softalign.analysis.length_plot import plot_by_length

    if args.plot:
        check_output(check_plot_path(args.plot), inputs=[args.src, args.ref], what="plot")
    report = evaluate_by_length(
        args.run_dir,
        args.src,
        args.ref,
        parse_edges(args.buckets),
        beam=args.beam,
        length_penalty=args.length_penalty,
        device=args.device,
        backend=args.backend,
        precision=args.precision,
        checkpoint=args.checkpoint,
        decoding=decoding_overrides(args.set),
    )
    if args.output:
        write_text(args.output, "".join(h + "\n" for h in report.hypotheses))
    if args.plot:
        plot_by_length({Path(args.run_dir).name: report.buckets}, args.plot)
    if args.json:
        print(json.dumps(_length_report_json(report)))
    else:
        print(f"bleu: {report.overall.bleu:.2f}\nchrf: {report.overall.chrf:.2f}\n")
        print(format_table({Path(args.run_dir).name: report.buckets}))
    if args.plot:
        print(f"plot: {args.plot}", file=sys.stderr)
    return 0


def cmd_attention(args: argparse.Namespace) -> int:
    from softalign.analysis.views import draw_heatmaps, numbered_paths
    from softalign.data.corpus import read_lines

    check_search_options(args.beam)
    if (args.sentence is None) == (args.input is None):
        raise SoftalignError("give one source sentence or --input FILE (not both)")
    if args.sentence is not None:
        if not args.output or args.outdir or args.refs:
            raise SoftalignError(
                "one sentence needs -o FILE.png|FILE.svg (--outdir, --refs: with --input)"
            )
        sources, refs = [args.sentence], None if args.ref is None else [args.ref]
        paths = [check_output(args.output, what="image")]
    else:
        if not args.outdir or args.output or args.ref:
            raise SoftalignError(
                "--input needs --outdir DIR (and --refs FILE for targets, not --ref)"
            )
        sources = read_lines(args.input)
        refs = read_lines(args.refs) if args.refs else None
        paths = numbered_paths(args.outdir, len(sources), args.format)
    written = draw_heatmaps(
        args.run_dir,
        sources,
        paths,
        refs,
        granularity=args.granularity,
        beam=args.beam,
        device=args.device,
        backend=args.backend,
        checkpoint=args.checkpoint,
        decoding=decoding_overrides(args.set),
    )
    for path in written:
        print(path)
    if len(written) < len(paths):
        skipped = len(paths) - len(written)
        print(
            f"softalign: {skipped} sentence(s) with an empty source or output: no image",
            file=sys.stderr,
        )
    return 0


def cmd_align(args: argparse.Namespace) -> int:
    from softalign.analysis.align import align_files

    inputs = [args.src, args.tgt]
    check_output(args.output, inputs=inputs, what="alignments")
    align_files(
        args.run_dir,
        args.src,
        args.tgt,
        args.output,
        method=args.method,
        threshold=args.threshold,
        reverse_run=args.reverse_run,
        symmetrize=args.symmetrize,
        one_index=args.one_index,
        device=args.device,
        backend=args.backend,
        checkpoint=args.checkpoint,
        decoding=decoding_overrides(args.set),
        progress=sys.stderr.isatty(),
    )
    return 0


def cmd_aer(args: argparse.Namespace) -> int:
    from softalign.analysis.aer import score_files

    score = score_files(args.gold, args.pred, one_index=args.one_index)
    if args.json:
        print(json.dumps(score.as_dict()))
    else:
        for key, value in score.as_dict().items():
            print(f"{key}: {value}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from softalign.analysis.by_length import parse_edges
    from softalign.analysis.compare import compare_runs, comparison_table
    from softalign.analysis.length_plot import plot_by_length

    check_search_options(args.beam)
    if args.plot:
        check_output(check_plot_path(args.plot), inputs=[args.src, args.ref], what="plot")
    reports = compare_runs(
        args.run_dirs,
        args.src,
        args.ref,
        parse_edges(args.buckets),
        beam=args.beam,
        device=args.device,
        backend=args.backend,
        precision=args.precision,
    )
    if args.plot:
        plot_by_length({name: r.buckets for name, r in reports.items()}, args.plot)
    if args.json:
        print(json.dumps({name: _length_report_json(r) for name, r in reports.items()}))
    else:
        print(comparison_table(reports))
    if args.plot:
        print(f"plot: {args.plot}", file=sys.stderr)
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from softalign.analysis.by_length import parse_edges
    from softalign.config import load_config
    from softalign.study import StudyPlan, build_report, load_plan, run_study
    from softalign.study.report import load_results, markdown_tables

    if args.report:
        if args.config or args.output:
            raise SoftalignError("give either --report DIR or CONFIG.yaml -o DIR, not both")
        study_dir = Path(args.report)
        report = build_report(study_dir)
    else:
        if not args.config or not args.output:
            raise SoftalignError("study needs CONFIG.yaml and -o DIR (or --report DIR)")
        overrides = list(args.set) + ([f"data.dir={args.data_dir}"] if args.data_dir else [])
        plan = StudyPlan(
            config=load_config(args.config, overrides).to_dict(),
            variants=tuple(v.strip() for v in args.variants.split(",") if v.strip()),
            budget_minutes=args.budget_minutes,
            budget_steps=args.budget_steps,
            beam=args.beam,
            test_size=args.test_size,
            buckets=parse_edges(args.buckets) if args.buckets else (),
        )
        study_dir = Path(args.output)
        report = run_study(plan, study_dir, progress=not args.no_progress, backend=args.backend)
    plan = load_plan(study_dir)
    print(markdown_tables(plan, load_results(study_dir, plan)))
    print(f"report: {report}", file=sys.stderr)
    return 0
