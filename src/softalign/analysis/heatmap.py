"""Attention heatmaps (as in Bahdanau et al. 2015, Figure 3), PNG or SVG, via matplotlib Agg.

Source tokens run along the top (x axis), target tokens down the left (y axis); a cell's
brightness is the weight α_ts (white = 1, black = 0; the server's downloads pass the explorer
page's colours as ``cmap`` instead). The figure size is fixed by the number
of tokens and the label lengths, so a matrix of n_tgt x n_src gets a predictable image size:
``figure_inches(...) * dpi`` pixels. Labels in non-Latin scripts use whichever installed fonts
cover them (matplotlib falls back glyph by glyph through ``font.family``); glyphs that no
installed font has are reported once, with a hint.
"""

from __future__ import annotations

import functools
import io
import logging
import threading
import unicodedata
import warnings
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.colors import Colormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from softalign.errors import SoftalignError  # noqa: E402
from softalign.outputs import atomic_output  # noqa: E402

log = logging.getLogger("softalign")

CELL = 0.32  # inches per token
FONT_SIZE = 10.0  # points
PAD = 0.25  # inches around labels and plot
COLORBAR = 0.75  # inches on the right for the colour bar
FORMATS = ("png", "svg")
# matplotlib's rc_context changes global settings: one figure is drawn and saved at a time
# (the server renders heatmaps from several threads)
_DRAWING = threading.Lock()

# Tried in order, glyph by glyph; only installed ones are used.
FONT_CANDIDATES = (
    "DejaVu Sans",
    "Noto Sans",
    "Noto Sans CJK JP",
    "Noto Sans CJK SC",
    "Noto Sans Devanagari",
    "Noto Sans Arabic",
    "Noto Sans Hebrew",
    "Noto Sans Thai",
    "WenQuanYi Zen Hei",
    "Droid Sans Fallback",
    "Arial Unicode MS",
)


@functools.cache
def label_fonts() -> tuple[str, ...]:
    """The installed fonts among :data:`FONT_CANDIDATES`, in order."""
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return tuple(name for name in FONT_CANDIDATES if name in installed) or ("sans-serif",)


@functools.cache
def _covered_codepoints() -> frozenset[int]:
    from matplotlib.ft2font import FT2Font

    covered: set[int] = set()
    for name in label_fonts():
        try:
            path = font_manager.findfont(name, fallback_to_default=False)
            covered.update(FT2Font(path).get_charmap())
        except (ValueError, RuntimeError, OSError):
            continue
    return frozenset(covered)


def missing_glyphs(labels: Sequence[str]) -> set[str]:
    """Characters of ``labels`` that no installed label font can draw."""
    covered = _covered_codepoints()
    return {c for label in labels for c in label if not c.isspace() and ord(c) not in covered}


def label_inches(labels: Sequence[str]) -> float:
    """Approximate printed length of the longest label (wide East Asian characters = 1 em)."""
    em = FONT_SIZE / 72.0

    def width(label: str) -> float:
        return sum(1.0 if unicodedata.east_asian_width(c) in "WF" else 0.62 for c in label)

    return em * max((width(label) for label in labels), default=0.0)


def figure_inches(src_labels: Sequence[str], tgt_labels: Sequence[str]) -> tuple[float, float]:
    """(width, height) in inches of the heatmap of these labels."""
    width = PAD + label_inches(tgt_labels) + PAD + len(src_labels) * CELL + COLORBAR
    height = PAD + label_inches(src_labels) + PAD + len(tgt_labels) * CELL + PAD
    return width, height


def draw_attention(
    attention: np.ndarray,
    src_labels: Sequence[str],
    tgt_labels: Sequence[str],
    title: str | None = None,
    cmap: str | Colormap = "gray",
) -> Figure:
    """A figure of the (len(tgt_labels), len(src_labels)) attention matrix; ``cmap`` maps
    weight 0 to 1 to colours (a matplotlib colormap or its name)."""
    attention = np.asarray(attention, dtype=np.float32)
    if attention.shape != (len(tgt_labels), len(src_labels)) or attention.size == 0:
        raise SoftalignError(
            f"attention of shape {attention.shape} cannot be drawn with "
            f"{len(tgt_labels)} target and {len(src_labels)} source labels"
        )
    missing = missing_glyphs([*src_labels, *tgt_labels])
    if missing:
        log.warning(
            "no installed font can draw %s; install e.g. fonts-noto-cjk or fonts-noto",
            "".join(sorted(missing)[:10]),
        )
    width, height = figure_inches(src_labels, tgt_labels)
    left = (PAD + label_inches(tgt_labels) + PAD) / width
    top = (PAD + label_inches(src_labels) + PAD) / height
    cell_w, cell_h = CELL / width, CELL / height
    with plt.rc_context({"font.family": list(label_fonts()), "font.size": FONT_SIZE}):
        fig = Figure(figsize=(width, height))
        ax = fig.add_axes((left, PAD / height, cell_w * len(src_labels), 1 - top - PAD / height))
        image = ax.imshow(attention, cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
        ax.xaxis.tick_top()
        ax.set_xticks(range(len(src_labels)), list(src_labels), rotation=90)
        ax.set_yticks(range(len(tgt_labels)), list(tgt_labels))
        ax.tick_params(length=0)
        bar = fig.add_axes(
            (
                left + cell_w * (len(src_labels) + 0.5),
                PAD / height,
                cell_w / 2,
                cell_h * len(tgt_labels),
            )
        )
        fig.colorbar(image, cax=bar)
        if title:
            fig.suptitle(title, fontsize=FONT_SIZE, y=1 - PAD / (2 * height), va="center")
    return fig


def check_image_path(path: str | Path) -> Path:
    """The path, if it names a .png or .svg file in an existing directory."""
    path = Path(path)
    if path.suffix.lstrip(".").lower() not in FORMATS:
        raise SoftalignError(f"{path}: unsupported image format '{path.suffix}' (use .png or .svg)")
    if not path.parent.is_dir():
        raise SoftalignError(f"{path}: directory {path.parent} does not exist")
    return path


def attention_image(
    attention: np.ndarray,
    src_labels: Sequence[str],
    tgt_labels: Sequence[str],
    fmt: str = "png",
    *,
    title: str | None = None,
    dpi: int = 100,
    cmap: str | Colormap = "gray",
) -> bytes:
    """The heatmap as the bytes of a ``fmt`` (png or svg) image."""
    if fmt not in FORMATS:
        raise SoftalignError(f"unsupported image format '{fmt}' (use png or svg)")
    buffer = io.BytesIO()
    with (
        _DRAWING,
        plt.rc_context({"font.family": list(label_fonts()), "svg.fonttype": "path"}),
        warnings.catch_warnings(),
    ):
        fig = draw_attention(attention, src_labels, tgt_labels, title, cmap)
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")  # logged above
        fig.savefig(buffer, format=fmt, dpi=dpi)
    return buffer.getvalue()


def save_attention(
    path: str | Path,
    attention: np.ndarray,
    src_labels: Sequence[str],
    tgt_labels: Sequence[str],
    *,
    title: str | None = None,
    dpi: int = 100,
) -> Path:
    """Draw and write a heatmap; the format (png or svg) comes from the file extension."""
    path = check_image_path(path)
    fmt = path.suffix.lstrip(".").lower()
    image = attention_image(attention, src_labels, tgt_labels, fmt, title=title, dpi=dpi)
    with atomic_output(path, binary=True) as out:
        out.write(image)
    return path
