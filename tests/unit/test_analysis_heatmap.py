"""Heatmap files: format by extension, size set by the token counts, labels in any script."""

import re
import struct

import numpy as np
import pytest

from softalign.analysis.heatmap import (
    CELL,
    draw_attention,
    figure_inches,
    missing_glyphs,
    save_attention,
)
from softalign.errors import SoftalignError

SRC = ["▁the", "▁cat", "▁sat", "."]
TGT = ["▁le", "▁chat", "▁était", "▁assis", "."]


def png_size(path):
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def attention(n_tgt, n_src, seed=0):
    return np.random.default_rng(seed).dirichlet(np.ones(n_src), size=n_tgt)


def test_png_has_the_size_of_its_token_grid(tmp_path):
    path = save_attention(tmp_path / "a.png", attention(5, 4), SRC, TGT, dpi=100)
    width, height = figure_inches(SRC, TGT)
    pixels = png_size(path)
    assert pixels[0] == pytest.approx(width * 100, abs=1)
    assert pixels[1] == pytest.approx(height * 100, abs=1)


def test_one_more_source_token_widens_the_image_by_one_cell(tmp_path):
    small = save_attention(tmp_path / "s.png", attention(5, 4), SRC, TGT, dpi=100)
    wide = save_attention(tmp_path / "w.png", attention(5, 5), [*SRC, "▁x"], TGT, dpi=100)
    (w1, h1), (w2, h2) = png_size(small), png_size(wide)
    assert w2 - w1 == pytest.approx(CELL * 100, abs=1) and h1 == h2


def test_image_shows_the_matrix_with_tokens_on_the_axes():
    matrix = attention(5, 4)
    fig = draw_attention(matrix, SRC, TGT)
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.images[0].get_array(), matrix, rtol=1e-6)
    assert [t.get_text() for t in ax.get_xticklabels()] == SRC
    assert [t.get_text() for t in ax.get_yticklabels()] == TGT


def test_svg_is_written_with_its_size_in_points(tmp_path):
    path = save_attention(tmp_path / "a.svg", attention(5, 4), SRC, TGT)
    text = path.read_text()
    width, height = figure_inches(SRC, TGT)
    size = re.search(r'<svg [^>]*width="([0-9.]+)pt" height="([0-9.]+)pt"', text)
    assert size is not None
    assert float(size.group(1)) == pytest.approx(width * 72, abs=0.01)
    assert float(size.group(2)) == pytest.approx(height * 72, abs=0.01)


def test_non_latin_labels_are_covered_by_the_installed_fonts(tmp_path):
    labels = ["▁Москва", "▁Αθήνα", "▁שלום"]
    assert missing_glyphs(labels) == set()  # DejaVu Sans covers Cyrillic, Greek, Hebrew
    save_attention(tmp_path / "ru.png", attention(3, 3), labels, labels)


def test_wide_characters_get_wider_label_margins():
    narrow, _ = figure_inches(["ab"], ["abcd"])
    wide, _ = figure_inches(["ab"], ["東京大学"])
    assert wide > narrow


def test_unknown_format_and_shape_mismatch_are_user_errors(tmp_path):
    with pytest.raises(SoftalignError, match=r"unsupported image format '\.jpg'"):
        save_attention(tmp_path / "a.jpg", attention(5, 4), SRC, TGT)
    with pytest.raises(SoftalignError, match="cannot be drawn"):
        save_attention(tmp_path / "a.png", attention(4, 4), SRC, TGT)
    with pytest.raises(SoftalignError, match="does not exist"):
        save_attention(tmp_path / "no" / "a.png", attention(5, 4), SRC, TGT)
