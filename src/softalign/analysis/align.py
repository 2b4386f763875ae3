"""Word alignments of parallel text from a model's attention (forced decoding).

    links = align_pairs(Translator.load("runs/en-fr"), src_lines, tgt_lines)

Inputs are taken as whitespace-tokenized: word k of a line is its k-th token, as in
alignment gold standards. With a second model trained in the reverse direction (target ->
source), both directions are extracted and symmetrized.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from softalign.analysis.extract import EXTRACTORS, SYMMETRIZERS, transpose
from softalign.analysis.forced import ForcedAlignment, force_decode
from softalign.analysis.pharaoh import Link, write_alignments
from softalign.analysis.words import merge_attention
from softalign.data.corpus import read_parallel
from softalign.errors import SoftalignError, require_texts
from softalign.translator import Translator


def word_attention(forced: ForcedAlignment) -> np.ndarray:
    """(target words, source words) attention of one forced pair."""
    return merge_attention(
        forced.attention,
        forced.src_word_of_piece,
        forced.tgt_word_of_piece,
        len(forced.source_words),
        len(forced.target_words),
    )


def _check_choice(name: str, value: str, choices: dict) -> None:
    if value not in choices:
        raise SoftalignError(f"unknown {name} '{value}' (choose from {', '.join(choices)})")


def align_pairs(
    translator: Translator,
    sources: Sequence[str],
    targets: Sequence[str],
    *,
    method: str = "argmax",
    threshold: float = 0.3,
    reverse: Translator | None = None,
    symmetrize: str = "grow-diag",
    progress: Callable[[int], object] | None = None,
) -> list[set[Link]]:
    """Links (source word, target word) of every pair, 0-indexed. ``progress`` is called
    with the pairs done in each batch, in each direction."""
    require_texts(sources, "align_pairs", "sources")
    require_texts(targets, "align_pairs", "targets")
    _check_choice("alignment method", method, EXTRACTORS)
    _check_choice("symmetrization", symmetrize, SYMMETRIZERS)
    extract = EXTRACTORS[method]
    forward = [
        extract(word_attention(f), threshold)
        for f in force_decode(translator, sources, targets, pretokenized=True, progress=progress)
    ]
    if reverse is None:
        return forward
    backward = [
        transpose(extract(word_attention(f), threshold))
        for f in force_decode(reverse, targets, sources, pretokenized=True, progress=progress)
    ]
    combine = SYMMETRIZERS[symmetrize]
    return [combine(f, b) for f, b in zip(forward, backward, strict=True)]


def check_reverse(forward: Translator, reverse: Translator) -> None:
    """The reverse run must translate target -> source (when both runs name their languages)."""
    fwd, rev = forward.config.data, reverse.config.data
    if "src" in (fwd.src_lang, rev.src_lang) or "tgt" in (fwd.tgt_lang, rev.tgt_lang):
        return  # default names: nothing to check
    if (rev.src_lang, rev.tgt_lang) != (fwd.tgt_lang, fwd.src_lang):
        raise SoftalignError(
            f"{reverse.checkpoint}: the reverse run translates {rev.src_lang}->{rev.tgt_lang}, "
            f"expected {fwd.tgt_lang}->{fwd.src_lang}"
        )


def align_files(
    run_dir: str | Path,
    src_path: str | Path,
    tgt_path: str | Path,
    out_path: str | Path,
    *,
    method: str = "argmax",
    threshold: float = 0.3,
    reverse_run: str | Path | None = None,
    symmetrize: str = "grow-diag",
    one_index: bool = False,
    device: str = "auto",
    backend: str = "auto",
    checkpoint: str | Path | None = None,
    decoding: dict[str, Any] | None = None,
    progress: bool = False,
) -> int:
    """Align two line-aligned files into a Pharaoh file; returns the number of lines.
    ``progress`` shows a bar of the pairs force-decoded (both directions) on stderr."""
    pairs = read_parallel(src_path, tgt_path)
    translator = Translator.load(
        run_dir, checkpoint, device=device, backend=backend, decoding=decoding
    )
    reverse = (
        Translator.load(reverse_run, device=device, backend=backend, decoding=decoding)
        if reverse_run
        else None
    )
    if reverse is not None:
        check_reverse(translator, reverse)
    directions = 1 if reverse is None else 2
    with tqdm(
        total=directions * len(pairs),
        unit=" pairs",
        disable=not progress,
        file=sys.stderr,
        leave=False,
    ) as bar:
        links = align_pairs(
            translator,
            pairs.src,
            pairs.tgt,
            method=method,
            threshold=threshold,
            reverse=reverse,
            symmetrize=symmetrize,
            progress=bar.update,
        )
    write_alignments(out_path, links, one_index)
    return len(links)
