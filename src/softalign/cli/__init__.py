"""Command line: parses arguments and calls library functions, nothing else.

Every user-caused error is a one-line ``softalign: error: ...`` on stderr and exit status 2.

The subcommands' options are in :mod:`softalign.cli.parsers`; what they run is in
:mod:`softalign.cli.train_commands` (train, preprocess, demo, corpus),
:mod:`softalign.cli.translate_commands` (translate, evaluate, serve),
:mod:`softalign.cli.analysis_commands` (evaluate --by-length, attention, align, aer,
compare, study), :mod:`softalign.cli.run_commands` (average, plot, export) and
:mod:`softalign.cli.info_command` (info).
"""

from __future__ import annotations

import argparse
import gc
import sys

from softalign.cli.analysis_commands import (
    cmd_aer,
    cmd_align,
    cmd_attention,
    cmd_compare,
    cmd_evaluate_by_length,
    cmd_study,
)
from softalign.cli.info_command import cmd_info
from softalign.cli.parsers import (
    _add_aer,
    _add_align,
    _add_attention,
    _add_average,
    _add_compare,
    _add_corpus,
    _add_demo,
    _add_evaluate,
    _add_export,
    _add_info,
    _add_plot,
    _add_preprocess,
    _add_serve,
    _add_study,
    _add_train,
    _add_translate,
)
from softalign.cli.run_commands import cmd_average, cmd_export, cmd_plot
from softalign.cli.train_commands import cmd_corpus, cmd_demo, cmd_preprocess, cmd_train
from softalign.cli.translate_commands import cmd_evaluate, cmd_serve, cmd_translate
from softalign.errors import SoftalignError

__all__ = [
    "build_parser",
    "cmd_aer",
    "cmd_align",
    "cmd_attention",
    "cmd_average",
    "cmd_compare",
    "cmd_corpus",
    "cmd_demo",
    "cmd_evaluate",
    "cmd_evaluate_by_length",
    "cmd_export",
    "cmd_info",
    "cmd_plot",
    "cmd_preprocess",
    "cmd_serve",
    "cmd_study",
    "cmd_train",
    "cmd_translate",
    "main",
]


DESCRIPTION = """\
Neural machine translation with recurrent encoder-decoders and soft attention:
train a model from a YAML config, translate and evaluate with it, look at its attention.
"""
EXAMPLES = """\
examples:
  softalign demo                                  train and score a small model (minutes)
  softalign train config.yaml -o runs/en-de       train (resume with --resume runs/en-de)
  softalign translate runs/en-de -i test.en -o test.hyp
  softalign evaluate runs/en-de -i test.en --ref test.de
  softalign attention runs/en-de "A man rides a bike." -o heatmap.png

Run 'softalign COMMAND --help' for a command's options.
"""


def build_parser() -> argparse.ArgumentParser:
    from softalign import __version__

    parser = argparse.ArgumentParser(
        prog="softalign",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"softalign {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
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
        _add_average,
        _add_plot,
        _add_export,
        _add_info,
    ):
        add(sub)
    return parser


def run() -> int:
    """The ``softalign`` command: :func:`main`, then every object still alive moved out of the
    cyclic collector's sight (``gc.freeze``), so that the interpreter's shutdown does not walk
    all of PyTorch's objects (≈ 0.2 s of a ``softalign translate``)."""
    code = main()
    gc.freeze()
    return code


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
