"""Argument parsers of the subcommands: one ``_add_*`` function per command.

Each function adds its subcommand's options and binds the ``cmd_*`` function that runs it.
"""

from __future__ import annotations

import argparse

from softalign.cli.analysis_commands import (
    cmd_aer,
    cmd_align,
    cmd_attention,
    cmd_compare,
    cmd_study,
)
from softalign.cli.info_command import cmd_info
from softalign.cli.run_commands import cmd_average, cmd_export, cmd_plot
from softalign.cli.train_commands import cmd_corpus, cmd_demo, cmd_preprocess, cmd_train
from softalign.cli.translate_commands import cmd_evaluate, cmd_serve, cmd_translate
from softalign.config import BACKENDS, PRECISIONS


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config (or resume a run)")
    p.add_argument("config", nargs="?", help="run config (YAML)")
    p.add_argument("-o", "--output", help="run directory to create")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    p.add_argument("--max-steps", type=int, help="stop at this (total) step")
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    p.add_argument("--data-dir", help="folder the config's data paths are relative to")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: config, else auto)")
    _add_backend_option(p, default=None)
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


def _add_backend_option(p: argparse.ArgumentParser, default: str | None = "auto") -> None:
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default=default,
        help="what computes the model: fast (softalign's CPU backend), reference (plain "
        "PyTorch), or auto: fast on the CPU, reference on a GPU (default: auto)",
    )


def _add_precision_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="matrix products in bf16 (fast on a CPU with AMX/AVX-512 BF16, on CUDA) or fp16 "
        "(CUDA) under autocast; auto: the fastest that keeps quality here (see softalign "
        "info) (default: the run's decoding.precision, fp32)",
    )


def _add_model_options(p: argparse.ArgumentParser) -> None:
    """``--checkpoint`` and ``--set decoding.*``: which weights of the run, how to decode."""
    p.add_argument(
        "--checkpoint",
        metavar="STEP|best|latest|PATH",
        help="which checkpoint of the run (default: best, else latest)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="decoding.KEY=VALUE",
        help="override a decoding key of the run's config, e.g. --set decoding.max_length=50",
    )


def _add_translate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("translate", help="translate text with a trained run (or an ensemble)")
    p.add_argument(
        "run_dir",
        nargs="+",
        metavar="RUN_DIR",
        help="a run directory or exported model; several: an ensemble (probabilities averaged)",
    )
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
    _add_precision_option(p)
    _add_model_options(p)
    p.add_argument(
        "--prefix",
        metavar="FILE",
        help="target prefixes, one per input line: each translation starts with its line",
    )
    p.add_argument(
        "--attention",
        metavar="FILE.jsonl",
        help="also write each sentence's tokens and attention matrix, one JSON per line",
    )
    _add_backend_option(p)
    p.set_defaults(func=cmd_translate)


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="BLEU, chrF and perplexity on a test set")
    p.add_argument("run_dir")
    p.add_argument(
        "-i", "--input", "--src", dest="src", required=True, help="source file (plain or .gz)"
    )
    p.add_argument("--ref", required=True, help="reference file (plain or .gz)")
    p.add_argument("--beam", type=int, help="beam size (default from config)")
    p.add_argument("--length-penalty", type=float, help="GNMT alpha (default from config)")
    p.add_argument("-o", "--output", help="also write the hypotheses to this file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--device", default="auto")
    _add_precision_option(p)
    _add_model_options(p)
    p.add_argument(
        "--by-length",
        action="store_true",
        help="BLEU and chrF per source-length bucket, with a plot (see --buckets, --plot)",
    )
    _add_bucket_options(p, default_plot="bleu_by_length.png")
    _add_backend_option(p)
    p.set_defaults(func=cmd_evaluate)


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="train and evaluate a small model on a built-in corpus")
    p.add_argument(
        "-o",
        "--output",
        default="runs/demo",
        help="run directory (default runs/demo); run again to train the same model longer",
    )
    p.add_argument("--minutes", type=float, default=13.0, help="training time budget (default 13)")
    p.add_argument(
        "--test-size", type=int, default=300, help="held-out verses to score (0 = all 583)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a key of the demo's config for a new run, e.g. --set training.lr=0.002",
    )
    _add_backend_option(p)
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
    _add_backend_option(p)
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
    p.add_argument("-i", "--input", help="file of source sentences, one heatmap each")
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
    _add_model_options(p)
    _add_backend_option(p)
    p.set_defaults(func=cmd_attention)


def _add_align(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("align", help="word alignments (Pharaoh i-j) from attention")
    p.add_argument("run_dir", help="model trained source -> target")
    p.add_argument(
        "-i",
        "--input",
        "--src",
        dest="src",
        required=True,
        help="tokenized source sentences, one per line",
    )
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
    _add_model_options(p)
    _add_backend_option(p)
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
    p.add_argument(
        "-i", "--input", "--src", dest="src", required=True, help="source file (plain or .gz)"
    )
    p.add_argument("--ref", required=True, help="reference file (plain or .gz)")
    _add_bucket_options(p, default_plot="compare_by_length.png")
    p.add_argument("--beam", type=int, help="beam size (default from each config)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--device", default="auto")
    _add_precision_option(p)
    _add_backend_option(p)
    p.set_defaults(func=cmd_compare)


def _add_average(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "average", help="average the weights of several checkpoints into a new run directory"
    )
    p.add_argument("run_dir")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--last", type=int, metavar="N", help="the newest N checkpoints")
    which.add_argument("--steps", metavar="A,B,...", help="these steps (or best, latest)")
    p.add_argument("-o", "--output", required=True, help="run directory to write")
    p.set_defaults(func=cmd_average)


def _add_plot(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot", help="learning curves of runs: loss, validation loss and BLEU vs step and time"
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument(
        "-o", "--output", default="curves.png", help="image to write, .png or .svg (curves.png)"
    )
    p.set_defaults(func=cmd_plot)


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="a checkpoint as a shareable model folder (weights, vocabularies, card)"
    )
    p.add_argument("run_dir")
    p.add_argument("-o", "--output", required=True, help="folder to write (must not exist)")
    p.add_argument(
        "--checkpoint",
        metavar="STEP|best|latest|PATH",
        help="which checkpoint of the run (default: best, else latest)",
    )
    p.add_argument(
        "--eval",
        action="append",
        default=[],
        metavar="FILE.json",
        help="a 'softalign evaluate --json' result to put on the model card (repeatable)",
    )
    p.add_argument(
        "--onnx",
        action="store_true",
        help="also write the encoder and one decoder step as ONNX graphs (needs [onnx])",
    )
    p.set_defaults(func=cmd_export)


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="REST API and attention explorer page (needs [serve])")
    p.add_argument("run_dir")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--device", default="auto")
    _add_model_options(p)
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
    p.add_argument(
        "--max-work", type=int, default=64_000, help="beam x output steps per request (64000)"
    )
    p.add_argument(
        "--max-attention-cells",
        type=int,
        default=500_000,
        help="attention numbers per request (500000)",
    )
    p.add_argument(
        "--max-queue-s", type=int, default=5, help="seconds of queued work before 503 (5)"
    )
    p.add_argument("--round-work", type=int, default=8000, help="work per decoding round (8000)")
    p.add_argument(
        "--max-heatmap-tokens",
        type=int,
        default=120,
        help="tokens per side of a downloaded heatmap image (120)",
    )
    p.add_argument(
        "--timeout", type=int, default=15, help="seconds a request waits before 504 (15)"
    )
    _add_backend_option(p)
    p.set_defaults(func=cmd_serve)


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info", help="this machine's capabilities (CPU features, bf16, kernels, CUDA, versions)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_info)
