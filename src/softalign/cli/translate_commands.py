"""Commands that use a trained run: ``translate``, ``evaluate`` and ``serve``."""

from __future__ import annotations

import argparse
import json
import sys

from softalign.cli.analysis_commands import cmd_evaluate_by_length
from softalign.config import decoding_overrides
from softalign.errors import SoftalignError


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
    from softalign.decoding.ensemble import load_ensemble
    from softalign.translator import Translator

    load = Translator.load if len(args.run_dir) == 1 else load_ensemble
    translator = load(
        args.run_dir[0] if len(args.run_dir) == 1 else args.run_dir,
        args.checkpoint,
        device=args.device,
        precision=args.precision,
        decoding=decoding_overrides(args.set),
    )
    lines = iter_lines(args.input)  # "-" is stdin, checked like a file (UTF-8, no NUL)
    out = _open_output(args.output)
    attention_out = _open_for_writing(args.attention) if args.attention else None
    try:
        options = dict(
            beam=args.beam,
            nbest=args.nbest,
            length_penalty=args.length_penalty,
            attention=attention_out is not None,  # collected only when written
        )
        if args.prefix:
            stream = _translate_with_prefixes(translator, lines, args.prefix, **options)
        else:
            stream = translator.translate_stream(lines, **options)
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


def _translate_with_prefixes(translator, lines, prefix_path: str, chunk: int = 2000, **options):
    """Like ``translate_stream``, each line's translation starting with the same line of
    ``prefix_path`` (an empty line: no prefix)."""
    from softalign.data.corpus import iter_lines

    prefixes = iter_lines(prefix_path)
    sources: list[str] = []
    starts: list[str] = []
    for line in lines:
        start = next(prefixes, None)
        if start is None:
            raise SoftalignError(f"{prefix_path}: fewer lines than the input")
        sources.append(line.rstrip("\r\n"))
        starts.append(start)
        if len(sources) >= chunk:
            yield from translator.translate(sources, prefix=starts, **options)
            sources, starts = [], []
    if next(prefixes, None) is not None:
        raise SoftalignError(f"{prefix_path}: more lines than the input")
    if sources:
        yield from translator.translate(sources, prefix=starts, **options)


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
        precision=args.precision,
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
            timeout_s=args.timeout,
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
        checkpoint=args.checkpoint,
        decoding=decoding_overrides(args.set),
    )
    return 0
