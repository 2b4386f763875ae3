"""Commands that use a trained run: ``translate``, ``evaluate`` and ``serve``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import nullcontext
from typing import TYPE_CHECKING

from softalign.cli.analysis_commands import cmd_evaluate_by_length
from softalign.config import decoding_overrides
from softalign.decoding.options import check_search_options
from softalign.errors import SoftalignError
from softalign.outputs import STDIO, atomic_output, check_output, open_output

if TYPE_CHECKING:
    from tqdm import tqdm

    from softalign.translator import Translation

CHUNK = 2000  # lines of a file translated per call (sorted by length inside it)


def progress_bar(total: int | None, *, shown: bool) -> tqdm:
    """Sentences done, on stderr (``shown`` when stderr is a terminal)."""
    from tqdm import tqdm

    return tqdm(total=total, unit=" sentences", disable=not shown, file=sys.stderr, leave=False)


def _count_lines(path: str) -> int | None:
    """Lines of a plain file, for the progress bar's total (None for stdin or gzip)."""
    if path == STDIO or path.endswith(".gz"):
        return None
    try:
        with open(path, "rb") as handle:
            return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
    except OSError:
        return None


def cmd_translate(args: argparse.Namespace) -> int:
    """Translate lines: as they arrive from a pipe or a terminal (each output line flushed),
    in chunks of :data:`CHUNK` lines from a file; outputs written whole (see outputs.py)."""
    from softalign.analysis.views import attention_record
    from softalign.data.stream import input_batches
    from softalign.decoding.ensemble import load_ensemble
    from softalign.translator import Translator

    check_search_options(args.beam, args.nbest, args.length_penalty)  # before loading the run
    decoding = decoding_overrides(args.set)
    if args.prefix == STDIO and args.input == STDIO:
        raise SoftalignError("--prefix -: the input is standard input already (give -i FILE)")
    if args.prefix and args.prefix != STDIO and not os.path.exists(args.prefix):
        raise SoftalignError(f"{args.prefix}: file not found")
    if args.output != STDIO:
        check_output(args.output, inputs=[args.input, args.prefix])
    if args.attention:
        check_output(
            args.attention, inputs=[args.input, args.output, args.prefix], what="attention"
        )
    load = Translator.load if len(args.run_dir) == 1 else load_ensemble
    translator = load(
        args.run_dir[0] if len(args.run_dir) == 1 else args.run_dir,
        args.checkpoint,
        device=args.device,
        precision=args.precision,
        backend=args.backend,
        decoding=decoding,
    )
    batches, live = input_batches(args.input, CHUNK)  # "-" is stdin, checked like a file
    prefixes = PrefixLines(args.prefix) if args.prefix else None
    shown = not live and sys.stderr.isatty() and not (args.output == STDIO and sys.stdout.isatty())
    index = 0
    with (
        open_output(args.output) as out,
        atomic_output(args.attention) if args.attention else nullcontext() as attention_out,
        progress_bar(None if live else _count_lines(args.input), shown=shown) as bar,
    ):
        for batch in batches:
            translations = translator.translate(
                batch,
                beam=args.beam,
                nbest=args.nbest,
                length_penalty=args.length_penalty,
                attention=attention_out is not None,  # collected only when written
                progress=bar.update,
                prefix=None if prefixes is None else prefixes.take(len(batch)),
            )
            for translation in translations:
                if attention_out is not None:
                    record = attention_record(index, translation)
                    attention_out.write(json.dumps(record, ensure_ascii=False) + "\n")
                out.write(_output_lines(index, translation, args.nbest))
                if live:
                    out.flush()
                index += 1
        if prefixes is not None:
            prefixes.check_finished()
    return 0


class PrefixLines:
    """The lines of ``translate --prefix FILE``, taken as many at a time as input lines
    arrive (line i starts the translation of input line i; an empty line: no prefix)."""

    def __init__(self, path: str) -> None:
        from softalign.data.corpus import iter_lines

        self.path = path
        self.lines = iter_lines(path)

    def take(self, count: int) -> list[str]:
        taken = [line for _, line in zip(range(count), self.lines, strict=False)]
        if len(taken) < count:
            raise SoftalignError(f"{self.path}: fewer lines than the input")
        return taken

    def check_finished(self) -> None:
        if next(self.lines, None) is not None:
            raise SoftalignError(f"{self.path}: more lines than the input")


def _output_lines(index: int, translation: Translation, nbest: int) -> str:
    if nbest == 1:
        return translation.text + "\n"
    return "".join(f"{index} ||| {c.text} ||| {c.score:.4f}\n" for c in translation.nbest)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from softalign.evaluate import evaluate_files

    check_search_options(args.beam, length_penalty=args.length_penalty)
    if args.output:
        check_output(args.output, inputs=[args.src, args.ref], what="hypotheses")
    if args.by_length:
        return cmd_evaluate_by_length(args)
    result = evaluate_files(
        args.run_dir,
        args.src,
        args.ref,
        beam=args.beam,
        length_penalty=args.length_penalty,
        device=args.device,
        backend=args.backend,
        hypotheses_path=args.output,
        precision=args.precision,
        progress=sys.stderr.isatty(),
        checkpoint=args.checkpoint,
        decoding=decoding_overrides(args.set),
    )
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise SoftalignError(f"serve: --port must be between 1 and 65535, got {args.port}")
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
            max_work=args.max_work,
            max_attention_cells=args.max_attention_cells,
            max_pending=args.max_pending,
            max_queue_s=args.max_queue_s,
            max_body_bytes=args.max_body_bytes,
            timeout_s=args.timeout,
            max_heatmap_tokens=args.max_heatmap_tokens,
        )
    except ValueError as exc:
        raise SoftalignError(f"serve: {exc}") from None
    if args.max_batch < 1 or args.round_work < 1:
        raise SoftalignError("serve: --max-batch and --round-work must be at least 1")
    serve(
        args.run_dir,
        host=args.host,
        port=args.port,
        device=args.device,
        backend=args.backend,
        limits=limits,
        max_batch=args.max_batch,
        max_wait_ms=args.batch_wait_ms,
        round_work=args.round_work,
        threads=args.threads,
        checkpoint=args.checkpoint,
        decoding=decoding_overrides(args.set),
    )
    return 0
