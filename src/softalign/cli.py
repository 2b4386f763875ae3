"""Command line: parses arguments and calls library functions, nothing else.

Every user-caused error is a one-line ``softalign: error: ...`` on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from softalign.errors import SoftalignError


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config (or resume a run)")
    p.add_argument("config", nargs="?", help="run config (YAML)")
    p.add_argument("-o", "--output", help="run directory to create")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    p.add_argument("--max-steps", type=int, help="stop at this (total) step")
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    p.add_argument("--data-dir", help="folder the config's data paths are relative to")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: config, else auto)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set model.attention=dot",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


def _add_preprocess(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "preprocess", help="tokenize training data once into memory-mapped arrays (binarize)"
    )
    p.add_argument("config", help="run config (YAML) naming the data and vocabulary")
    p.add_argument("-o", "--output", required=True, help="folder to write (DATA_DIR)")
    p.add_argument("--data-dir", help="folder the config's data paths are relative to")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key"
    )
    p.set_defaults(func=cmd_preprocess)


def _add_translate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("translate", help="translate text with a trained run")
    p.add_argument("run_dir")
    p.add_argument("-i", "--input", default="-", help="input file, - for stdin (default)")
    p.add_argument("-o", "--output", default="-", help="output file, - for stdout (default)")
    p.add_argument("--beam", type=int, help="beam size (1 = greedy; default from config)")
    p.add_argument(
        "--nbest",
        type=int,
        default=1,
        help="write N lines 'index ||| text ||| score' per input line",
    )
    p.add_argument("--length-penalty", type=float, help="GNMT alpha (default from config)")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--attention",
        metavar="FILE.jsonl",
        help="also write each sentence's tokens and attention matrix, one JSON per line",
    )
    p.set_defaults(func=cmd_translate)


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="BLEU, chrF and perplexity on a test set")
    p.add_argument("run_dir")
    p.add_argument("--src", required=True, help="source file (plain or .gz)")
    p.add_argument("--ref", required=True, help="reference file (plain or .gz)")
    p.add_argument("--beam", type=int, help="beam size (default from config)")
    p.add_argument("--length-penalty", type=float, help="GNMT alpha (default from config)")
    p.add_argument("--output", help="also write the hypotheses to this file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--by-length",
        action="store_true",
        help="BLEU and chrF per source-length bucket, with a plot (see --buckets, --plot)",
    )
    _add_bucket_options(p, default_plot="bleu_by_length.png")
    p.set_defaults(func=cmd_evaluate)


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="train and evaluate a small model on a built-in corpus")
    p.add_argument(
        "-o",
        "--output",
        default="runs/demo",
        help="run directory (default runs/demo); run again to train the same model longer",
    )
    p.add_argument("--minutes", type=float, default=10.0, help="training time budget (default 10)")
    p.add_argument(
        "--test-size", type=int, default=300, help="held-out verses to score (0 = all 583)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_demo)


def _add_corpus(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("corpus", help="list or export a built-in corpus as plain text files")
    p.add_argument("source", choices=("bible",), help="the built-in corpus")
    p.add_argument("pair", nargs="?", help="SRC-TGT, e.g. en-fr (or en-fr?license=open)")
    p.add_argument("-o", "--output", help="folder for {train,valid,test}.{SRC,TGT,ref}")
    p.add_argument("--list", action="store_true", help="list the texts and their status")
    p.set_defaults(func=cmd_corpus)


def _add_study(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "study",
        help="fixed context vector vs attention: train one model per variant, report",
    )
    p.add_argument("config", nargs="?", help="base run config (YAML)")
    p.add_argument("-o", "--output", help="study directory (rerun it to resume)")
    p.add_argument(
        "--variants",
        default="none,additive,dot,general",
        help="attention types to compare (default none,additive,dot,general)",
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--budget-minutes", type=float, default=0.0, help="per variant")
    budget.add_argument("--budget-steps", type=int, default=0, help="per variant")
    p.add_argument("--beam", type=int, default=5, help="beam size for the test set (5)")
    p.add_argument(
        "--test-size", type=int, default=0, help="evenly spaced test sentences (0 = all)"
    )
    p.add_argument(
        "--buckets",
        metavar="N,N,...",
        help="source-length bucket edges in words (default: from the test lengths)",
    )
    p.add_argument(
        "--report",
        metavar="DIR",
        help="only rebuild the report of an existing study directory",
    )
    p.add_argument("--data-dir", help="folder the config's data paths are relative to")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_study)


def _add_bucket_options(p: argparse.ArgumentParser, default_plot: str | None) -> None:
    p.add_argument(
        "--buckets",
        default="10,20,30,40,50",
        metavar="N,N,...",
        help="upper edges of the source-length buckets in words (default: 10,20,30,40,50)",
    )
    p.add_argument(
        "--plot",
        default=default_plot,
        metavar="FILE.png|FILE.svg",
        help=f"BLEU-by-length plot to write (default: {default_plot})",
    )


def _add_attention(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("attention", help="draw attention heatmaps of translations")
    p.add_argument("run_dir")
    p.add_argument("sentence", nargs="?", help="one source sentence (or use --input)")
    p.add_argument("--ref", help="force-decode this target instead of translating")
    p.add_argument("-o", "--output", help="image for the one sentence (.png or .svg)")
    p.add_argument("--input", help="file of source sentences, one heatmap each")
    p.add_argument("--refs", help="with --input: file of targets to force-decode")
    p.add_argument("--outdir", help="with --input: folder for 0001.png, 0002.png, ...")
    p.add_argument("--format", choices=("png", "svg"), default="png", help="with --outdir")
    p.add_argument(
        "--granularity",
        choices=("subword", "word"),
        default="subword",
        help="word: sum over source pieces, average over target pieces",
    )
    p.add_argument("--beam", type=int, help="beam size (default from config)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_attention)


def _add_align(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("align", help="word alignments (Pharaoh i-j) from attention")
    p.add_argument("run_dir", help="model trained source -> target")
    p.add_argument("--src", required=True, help="tokenized source sentences, one per line")
    p.add_argument("--tgt", required=True, help="tokenized target sentences, one per line")
    p.add_argument("-o", "--output", required=True, help="Pharaoh alignment file to write")
    p.add_argument("--method", choices=("argmax", "threshold"), default="argmax")
    p.add_argument(
        "--threshold", type=float, default=0.3, help="weight for --method threshold (0.3)"
    )
    p.add_argument("--reverse-run", help="model trained target -> source, to symmetrize")
    p.add_argument(
        "--symmetrize",
        choices=("intersect", "union", "grow-diag", "grow-diag-final-and"),
        default="grow-diag",
        help="how to combine the two directions (with --reverse-run)",
    )
    p.add_argument("--one-index", action="store_true", help="write 1-indexed positions")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_align)


def _add_aer(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("aer", help="precision, recall and AER of alignments against gold")
    p.add_argument("--gold", required=True, help="gold Pharaoh file (i-j sure, ipj possible)")
    p.add_argument("--pred", required=True, help="predicted Pharaoh file")
    p.add_argument("--one-index", action="store_true", help="both files are 1-indexed")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_aer)


def _add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="BLEU/chrF of several runs, overall and by length")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--src", required=True, help="source file (plain or .gz)")
    p.add_argument("--ref", required=True, help="reference file (plain or .gz)")
    _add_bucket_options(p, default_plot="compare_by_length.png")
    p.add_argument("--beam", type=int, help="beam size (default from each config)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_compare)


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="REST API and attention explorer page (needs [serve])")
    p.add_argument("run_dir")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--max-batch", type=int, default=64, help="sentences per model call (64)")
    p.add_argument("--batch-wait-ms", type=float, default=5.0, help="wait for more requests (5 ms)")
    p.add_argument("--max-sentences", type=int, default=64, help="per request (64)")
    p.add_argument("--max-chars", type=int, default=1000, help="per sentence (1000)")
    p.add_argument("--max-beam", type=int, default=10, help="largest beam allowed (10)")
    p.add_argument(
        "--max-pending", type=int, default=4096, help="queued sentences before 503 (4096)"
    )
    p.add_argument(
        "--max-body-bytes", type=int, default=1_000_000, help="request body size (1000000)"
    )
    p.set_defaults(func=cmd_serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="softalign", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (
        _add_train,
        _add_preprocess,
        _add_translate,
        _add_evaluate,
        _add_demo,
        _add_corpus,
        _add_attention,
        _add_align,
        _add_aer,
        _add_compare,
        _add_study,
        _add_serve,
    ):
        add(sub)
    return parser


# ---------------------------------------------------------------------------- commands


def cmd_train(args: argparse.Namespace) -> int:
    from softalign.config import load_config
    from softalign.train.loop import resume, train

    overrides = list(args.set)
    if args.data_dir:
        overrides.append(f"data.dir={args.data_dir}")
    if args.device:
        overrides.append(f"training.device={args.device}")
    if args.resume:
        if args.config:
            raise SoftalignError("give either CONFIG.yaml or --resume RUN_DIR, not both")
        state = resume(
            Path(args.resume),
            max_steps=args.max_steps,
            checkpoint_every=args.checkpoint_every,
            overrides=overrides,
            progress=not args.no_progress,
        )
    else:
        if not args.config or not args.output:
            raise SoftalignError("train needs CONFIG.yaml and -o RUN_DIR (or --resume RUN_DIR)")
        config = load_config(args.config, overrides)
        state = train(
            config,
            Path(args.output),
            max_steps=args.max_steps,
            checkpoint_every=args.checkpoint_every,
            progress=not args.no_progress,
        )
    return 3 if "non-finite" in state.stopped else 0


def cmd_preprocess(args: argparse.Namespace) -> int:
    from softalign.config import load_config
    from softalign.data.binarized import preprocess

    overrides = list(args.set) + ([f"data.dir={args.data_dir}"] if args.data_dir else [])
    counts = preprocess(load_config(args.config, overrides), Path(args.output))
    print(", ".join(f"{key}: {value}" for key, value in counts.items()))
    print(f"wrote {args.output}; train from it with data.binarized: {args.output}")
    return 0


def _open_output(path: str):
    return sys.stdout if path == "-" else open(path, "w", encoding="utf-8")  # noqa: SIM115


def _open_for_writing(path: str):
    try:
        return open(path, "w", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise SoftalignError(f"{path}: cannot write: {exc.strerror or exc}") from None


def cmd_translate(args: argparse.Namespace) -> int:
    from softalign.analysis.views import attention_record
    from softalign.data.corpus import iter_lines
    from softalign.translator import Translator

    translator = Translator.load(args.run_dir, device=args.device)
    lines = iter_lines(args.input)  # "-" is stdin, checked like a file (UTF-8, no NUL)
    out = _open_output(args.output)
    attention_out = _open_for_writing(args.attention) if args.attention else None
    try:
        stream = translator.translate_stream(
            lines, beam=args.beam, nbest=args.nbest, length_penalty=args.length_penalty
        )
        for index, translation in enumerate(stream):
            if attention_out is not None:
                record = attention_record(index, translation)
                attention_out.write(json.dumps(record, ensure_ascii=False) + "\n")
            if args.nbest > 1:
                for cand in translation.nbest or []:
                    out.write(f"{index} ||| {cand.text} ||| {cand.score:.4f}\n")
            else:
                out.write(translation.text + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
        if attention_out is not None:
            attention_out.close()
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from softalign.evaluate import evaluate_files

    if args.by_length:
        return cmd_evaluate_by_length(args)
    result = evaluate_files(
        args.run_dir,
        args.src,
        args.ref,
        beam=args.beam,
        length_penalty=args.length_penalty,
        device=args.device,
        hypotheses_path=args.output,
    )
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from softalign.demo import run_demo

    run_demo(
        Path(args.output),
        minutes=args.minutes,
        test_size=args.test_size,
        progress=not args.no_progress,
    )
    return 0


def cmd_corpus(args: argparse.Namespace) -> int:
    from softalign.data.bible import describe_texts, export_corpus

    if args.list:
        print(describe_texts())
        return 0
    if not args.pair or not args.output:
        raise SoftalignError("corpus bible needs SRC-TGT and -o DIR (or --list)")
    counts = export_corpus(args.pair, Path(args.output))
    for name, count in counts.items():
        print(f"{name}: {count} verse pairs")
    print(f"wrote {args.output} (texts and licences in SOURCES.md)")
    return 0


def _length_report_json(report) -> dict:
    return {**report.overall.as_dict(), "buckets": [b.as_dict() for b in report.buckets]}


def cmd_evaluate_by_length(args: argparse.Namespace) -> int:
    from softalign.analysis.by_length import evaluate_by_length, format_table, parse_edges
    from softalign.analysis.length_plot import plot_by_length

    report = evaluate_by_length(
        args.run_dir,
        args.src,
        args.ref,
        parse_edges(args.buckets),
        beam=args.beam,
        length_penalty=args.length_penalty,
        device=args.device,
    )
    if args.output:
        Path(args.output).write_text("".join(h + "\n" for h in report.hypotheses), "utf-8")
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

    if (args.sentence is None) == (args.input is None):
        raise SoftalignError("give one source sentence or --input FILE (not both)")
    if args.sentence is not None:
        if not args.output or args.outdir or args.refs:
            raise SoftalignError(
                "one sentence needs -o FILE.png|FILE.svg (--outdir, --refs: with --input)"
            )
        sources, refs = [args.sentence], None if args.ref is None else [args.ref]
        paths = [Path(args.output)]
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

    reports = compare_runs(
        args.run_dirs,
        args.src,
        args.ref,
        parse_edges(args.buckets),
        beam=args.beam,
        device=args.device,
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
        report = run_study(plan, study_dir, progress=not args.no_progress)
    plan = load_plan(study_dir)
    print(markdown_tables(plan, load_results(study_dir, plan)))
    print(f"report: {report}", file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from softalign.serve import ServeLimits, serve
    except ImportError as exc:
        raise SoftalignError(
            f"serve needs FastAPI and uvicorn: pip install 'softalign[serve]' ({exc})"
        ) from None
    try:
        limits = ServeLimits(
            max_sentences=args.max_sentences,
            max_chars=args.max_chars,
            max_beam=args.max_beam,
            max_pending=args.max_pending,
            max_body_bytes=args.max_body_bytes,
        )
    except ValueError as exc:
        raise SoftalignError(f"serve: {exc}") from None
    if args.max_batch < 1:
        raise SoftalignError("serve: --max-batch must be at least 1")
    serve(
        args.run_dir,
        host=args.host,
        port=args.port,
        device=args.device,
        limits=limits,
        max_batch=args.max_batch,
        max_wait_ms=args.batch_wait_ms,
        threads=args.threads,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SoftalignError as exc:
        print(f"softalign: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("softalign: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
