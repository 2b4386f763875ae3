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
    p.set_defaults(func=cmd_evaluate)


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="train and evaluate a small model on a built-in corpus")
    p.add_argument("-o", "--output", default="runs/demo", help="run directory")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="softalign", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_train, _add_translate, _add_evaluate, _add_demo, _add_corpus):
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


def _open_output(path: str):
    return sys.stdout if path == "-" else open(path, "w", encoding="utf-8")  # noqa: SIM115


def cmd_translate(args: argparse.Namespace) -> int:
    from softalign.data.corpus import iter_lines
    from softalign.translator import Translator

    translator = Translator.load(args.run_dir, device=args.device)
    lines = (
        (line.rstrip("\n") for line in sys.stdin) if args.input == "-" else iter_lines(args.input)
    )
    out = _open_output(args.output)
    try:
        stream = translator.translate_stream(
            lines, beam=args.beam, nbest=args.nbest, length_penalty=args.length_penalty
        )
        for index, translation in enumerate(stream):
            if args.nbest > 1:
                for cand in translation.nbest or []:
                    out.write(f"{index} ||| {cand.text} ||| {cand.score:.4f}\n")
            else:
                out.write(translation.text + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from softalign.evaluate import evaluate_files

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
