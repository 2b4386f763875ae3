"""What the ``attention`` command draws and ``translate --attention`` writes: per sentence,
the source and target labels and the attention between them, at subword or word level.

The target is the model's translation, or a given reference (forced decoding).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from softalign.analysis.forced import force_decode
from softalign.analysis.heatmap import check_image_path, save_attention
from softalign.analysis.words import to_words
from softalign.errors import SoftalignError, require_texts
from softalign.translator import Translation, Translator

GRANULARITIES = ("subword", "word")


@dataclass
class AttentionView:
    """attention: (len(target_labels), len(source_labels))."""

    source: str
    target: str
    source_labels: list[str]
    target_labels: list[str]
    attention: np.ndarray


def _view(
    source: str,
    target: str,
    src_pieces: Sequence[str],
    tgt_pieces: Sequence[str],
    attention: np.ndarray,
    granularity: str,
) -> AttentionView:
    if granularity not in GRANULARITIES:
        raise SoftalignError(f"unknown granularity '{granularity}' (choose subword or word)")
    if granularity == "word":
        attention, src_labels, tgt_labels = to_words(attention, src_pieces, tgt_pieces)
    else:
        src_labels, tgt_labels = list(src_pieces), list(tgt_pieces)
    return AttentionView(source, target, src_labels, tgt_labels, np.asarray(attention))


def attention_views(
    translator: Translator,
    sources: Sequence[str],
    references: Sequence[str] | None = None,
    *,
    granularity: str = "subword",
    beam: int | None = None,
) -> list[AttentionView]:
    """Views of the translations of ``sources``, or of the given ``references``."""
    require_texts(sources, "attention_views", "sources")
    if references is not None:
        require_texts(references, "attention_views", "references")
    if translator.model.decoder.attention is None:
        raise SoftalignError(f"{translator.checkpoint}: this model has no attention to show")
    if references is not None:
        forced = force_decode(translator, sources, references)
        return [
            _view(s, r, f.source_tokens, f.target_tokens, f.attention, granularity)
            for s, r, f in zip(sources, references, forced, strict=True)
        ]
    views = []
    for s, t in zip(sources, translator.translate(list(sources), beam=beam), strict=True):
        if t.attention is None or not t.target_tokens:  # empty source or empty output
            views.append(AttentionView(s, t.text, [], [], np.zeros((0, 0))))
        else:
            views.append(
                _view(s, t.text, t.source_tokens, t.target_tokens, t.attention, granularity)
            )
    return views


def write_heatmaps(views: Sequence[AttentionView], paths: Sequence[Path]) -> list[Path]:
    """One image per view; an empty sentence (nothing to draw) is skipped with no file."""
    written = []
    for view, path in zip(views, paths, strict=True):
        if view.attention.size:
            written.append(
                save_attention(path, view.attention, view.source_labels, view.target_labels)
            )
    return written


def attention_record(index: int, translation: Translation, decimals: int = 4) -> dict[str, Any]:
    """One JSON-lines record: tokens and the (target x source) matrix of a translation."""
    matrix = translation.attention
    return {
        "index": index,
        "source": translation.source,
        "translation": translation.text,
        "source_tokens": translation.source_tokens,
        "target_tokens": translation.target_tokens,
        "attention": []
        if matrix is None
        else np.round(np.asarray(matrix, dtype=np.float64), decimals).tolist(),
    }


def numbered_paths(outdir: str | Path, count: int, fmt: str = "png") -> list[Path]:
    """``outdir/0001.png`` … for ``count`` sentences (the directory is created)."""
    if fmt not in ("png", "svg"):
        raise SoftalignError(f"unsupported image format '{fmt}' (use png or svg)")
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise SoftalignError(f"{outdir}: exists and is not a directory")
    outdir.mkdir(parents=True, exist_ok=True)
    width = max(4, len(str(count)))
    return [outdir / f"{i:0{width}d}.{fmt}" for i in range(1, count + 1)]


def draw_heatmaps(
    run_dir: str | Path,
    sources: Sequence[str],
    paths: Sequence[Path],
    references: Sequence[str] | None = None,
    *,
    granularity: str = "subword",
    beam: int | None = None,
    device: str = "auto",
    backend: str = "auto",
    checkpoint: str | Path | None = None,
    decoding: dict[str, Any] | None = None,
) -> list[Path]:
    """Translate (or force-decode ``references``) and write one heatmap per sentence."""
    if references is not None and len(references) != len(sources):
        raise SoftalignError(f"{len(sources)} source sentences but {len(references)} references")
    paths = [check_image_path(path) for path in paths]
    translator = Translator.load(
        run_dir, checkpoint, device=device, backend=backend, decoding=decoding
    )
    views = attention_views(translator, sources, references, granularity=granularity, beam=beam)
    return write_heatmaps(views, paths)
