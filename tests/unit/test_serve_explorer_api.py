"""What the attention explorer asks the API for, beyond translation: word-level attention,
forced decoding of a reference (``POST /force``) and heatmap images (``POST /heatmap``)."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="needs the serve extra: pip install -e '.[serve]'")
pytest.importorskip("fastapi_offline", reason="needs the serve extra: pip install -e '.[serve]'")
pytest.importorskip("httpx", reason="needs the serve extra: pip install -e '.[serve]'")

from matplotlib import image as mpimg  # noqa: E402

from softalign.analysis.forced import force_decode  # noqa: E402
from softalign.analysis.heatmap import figure_inches  # noqa: E402
from softalign.analysis.words import group_pieces, to_words  # noqa: E402
from softalign.serve import ServeLimits, create_app  # noqa: E402
from softalign.translator import Translator  # noqa: E402

with warnings.catch_warnings():  # newer Starlette prefers httpx2 over httpx; both work
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

LIMITS = ServeLimits(max_sentences=4, max_chars=40, max_beam=4, max_heatmap_tokens=6)
SENTENCE = "babebi kokuka de"  # made-up words: several pieces each
REFERENCE = "ed akukok ibebab"


@pytest.fixture(scope="module")
def translator(tiny_run) -> Translator:
    return Translator.load(tiny_run)


@pytest.fixture(scope="module")
def client(translator):
    with TestClient(create_app(translator, limits=LIMITS)) as client:
        yield client


def error_of(response) -> tuple[int, str, str]:
    error = response.json()["error"]
    assert error["message"] and "\n" not in error["message"]
    return response.status_code, error["code"], error["message"]


# ---------------------------------------------------------------------------- words


def test_word_granularity_merges_pieces_as_the_attention_command_does(client):
    request = {"text": [SENTENCE], "beam": 2, "nbest": 2, "attention": True}
    pieces = client.post("/translate", json=request).json()
    words = client.post("/translate", json={**request, "granularity": "word"}).json()
    assert (pieces["granularity"], words["granularity"]) == ("subword", "word")
    by_piece, by_word = pieces["translations"][0], words["translations"][0]
    assert len(by_piece["source_tokens"]) > 3, "no word of several pieces: nothing to merge"
    assert by_word["source_tokens"] == SENTENCE.split()
    for piece, word in zip(by_piece["nbest"], by_word["nbest"], strict=True):
        assert piece["text"] == word["text"]
        merged, src, tgt = to_words(
            np.array(piece["attention"]), by_piece["source_tokens"], piece["target_tokens"]
        )
        assert (word["target_tokens"], by_word["source_tokens"]) == (tgt, src)
        assert word["target_tokens"] == group_pieces(piece["target_tokens"])[0]
        assert np.allclose(word["attention"], merged, atol=1e-3)
        assert np.allclose(np.sum(word["attention"], axis=1), 1.0, atol=1e-3)


def test_granularity_is_only_reported_with_attention(client):
    body = client.post("/translate", json={"text": ["ba be"], "granularity": "word"}).json()
    assert "granularity" not in body and "source_tokens" not in body["translations"][0]


# ---------------------------------------------------------------------------- /force


def test_force_returns_what_forced_decoding_gives_the_cli(client, translator):
    response = client.post("/force", json={"text": [SENTENCE], "reference": [REFERENCE]})
    assert response.status_code == 200, response.text
    body = response.json()
    [pair] = body["alignments"]
    [direct] = force_decode(translator, [SENTENCE], [REFERENCE])
    assert body["granularity"] == "subword"
    assert (pair["source"], pair["reference"]) == (SENTENCE, REFERENCE)
    assert pair["source_tokens"] == direct.source_tokens
    assert pair["target_tokens"] == direct.target_tokens
    assert np.allclose(pair["attention"], direct.attention, atol=1e-4)
    assert pair["log_prob"] == pytest.approx(direct.log_prob, abs=1e-4)
    assert pair["log_prob"] < 0


def test_force_at_word_granularity_labels_the_reference_words(client):
    request = {"text": [SENTENCE, "ba be"], "reference": [REFERENCE, ""], "granularity": "word"}
    first, empty = client.post("/force", json=request).json()["alignments"]
    assert first["source_tokens"] == SENTENCE.split()
    assert first["target_tokens"] == REFERENCE.split()
    weights = np.array(first["attention"])
    assert weights.shape == (3, 3) and np.allclose(weights.sum(axis=1), 1.0, atol=1e-3)
    # an empty reference: only p(EOS | source), no attention rows
    assert empty["target_tokens"] == [] and empty["attention"] == []
    assert empty["log_prob"] < 0


BAD_FORCE = [
    pytest.param({"text": ["ba"], "reference": ["a", "b"]}, 422, "invalid_request", id="count"),
    pytest.param({"text": [" "], "reference": ["ab"]}, 422, "invalid_request", id="empty-src"),
    pytest.param({"text": ["ba"]}, 422, "invalid_request", id="no-reference"),
    pytest.param({"text": ["ba"], "ref": ["ab"]}, 422, "invalid_request", id="misspelt"),
    pytest.param({"text": ["ba"], "reference": [3]}, 422, "invalid_request", id="not-a-str"),
    pytest.param(
        {"text": ["ba"], "reference": ["ab"], "granularity": "char"},
        422,
        "invalid_request",
        id="granularity",
    ),
    pytest.param({"text": ["b"] * 5, "reference": ["a"] * 5}, 413, "too_many_sentences", id="n"),
    pytest.param({"text": ["ba"], "reference": ["a" * 41]}, 413, "sentence_too_long", id="long"),
]


@pytest.mark.parametrize(("body", "status", "code"), BAD_FORCE)
def test_bad_force_requests_get_a_4xx_json_error(client, body, status, code):
    assert error_of(client.post("/force", json=body))[:2] == (status, code)


def test_force_errors_name_the_field(client):
    _, _, message = error_of(client.post("/force", json={"text": ["ba"], "reference": ["a", "b"]}))
    assert message == "reference: one per source sentence (1 in text, got 2)"
    _, _, message = error_of(client.post("/force", json={"text": ["ba"], "reference": ["a" * 41]}))
    assert message == "reference[0]: at most 40 characters per sentence (got 41)"


def test_force_refuses_attention_over_the_limit_before_decoding(translator):
    limits = ServeLimits(max_attention_cells=100)
    with TestClient(create_app(translator, limits=limits)) as client:
        body = {"text": ["ba be bi bo bu"], "reference": ["ub ob ib eb ab"]}  # 15 x 15 bound
        status, code, message = error_of(client.post("/force", json=body))
        assert (status, code) == (413, "too_much_attention")
        assert "max_attention_cells=100" in message
        body = {"text": ["ba be"], "reference": ["eb ab"]}  # 6 x 6 = 36
        assert client.post("/force", json=body).status_code == 200


# ---------------------------------------------------------------------------- /heatmap

HEATMAP = {
    "source_tokens": ["ba", "be", "bi"],
    "target_tokens": ["ib", "eb"],
    "attention": [[0.0, 0.25, 0.75], [1, 0, 0]],  # JSON integers are weights too
}


def test_heatmap_png_is_a_download_of_the_figure_size(client):
    response = client.post("/heatmap", json=HEATMAP)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"] == 'attachment; filename="attention.png"'
    pixels = mpimg.imread(io.BytesIO(response.content), format="png")
    width, height = figure_inches(HEATMAP["source_tokens"], HEATMAP["target_tokens"])
    assert pixels.shape[:2] == (round(height * 100), round(width * 100))


def test_heatmap_downloads_use_the_page_colours(client):
    """Weight 1 is the page's accent (#2563eb, rgb 37 99 235), weight 0 white."""
    pixels = mpimg.imread(io.BytesIO(client.post("/heatmap", json=HEATMAP).content))
    rgb = np.round(pixels[..., :3] * 255).reshape(-1, 3)
    assert (np.abs(rgb - [37, 99, 235]).max(axis=1) <= 1).sum() > 100
    assert (rgb == 255).all(axis=1).sum() > 100


def test_heatmap_svg_has_the_labels_as_text_paths(client):
    response = client.post("/heatmap", json={**HEATMAP, "format": "svg", "title": "ba be bi"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.headers["content-disposition"] == 'attachment; filename="attention.svg"'
    assert b"<svg" in response.content[:1000]


BAD_HEATMAPS = [
    pytest.param({"attention": [[0.5, 0.5, 0.0]]}, 422, "invalid_request", id="rows"),
    pytest.param({"attention": [[1, 0], [1, 0]]}, 422, "invalid_request", id="columns"),
    pytest.param({"attention": [[1.5, 0, 0], [1, 0, 0]]}, 422, "invalid_request", id="over-1"),
    pytest.param({"attention": [[-0.1, 0, 0], [1, 0, 0]]}, 422, "invalid_request", id="negative"),
    pytest.param({"attention": [["1", 0, 0], [1, 0, 0]]}, 422, "invalid_request", id="string"),
    pytest.param({"format": "gif"}, 422, "invalid_request", id="format"),
    pytest.param({"source_tokens": []}, 422, "invalid_request", id="no-tokens"),
    pytest.param({"target_tokens": ["x" * 51, "eb"]}, 422, "invalid_request", id="long-label"),
    pytest.param({"colours": "red"}, 422, "invalid_request", id="unknown-key"),
    pytest.param(
        {"source_tokens": ["a"] * 7, "attention": [[0.0] * 7] * 2},
        413,
        "heatmap_too_large",
        id="too-many-tokens",
    ),
]


@pytest.mark.parametrize(("change", "status", "code"), BAD_HEATMAPS)
def test_bad_heatmap_requests_get_a_4xx_json_error(client, change, status, code):
    assert error_of(client.post("/heatmap", json={**HEATMAP, **change}))[:2] == (status, code)


def test_heatmap_errors_name_the_row_and_the_limit(client):
    body = {**HEATMAP, "attention": [[1, 0, 0], [1, 0]]}
    assert error_of(client.post("/heatmap", json=body))[2] == (
        "attention[1]: one weight per source token (3), got 2"
    )
    body = {**HEATMAP, "source_tokens": ["a"] * 7}
    assert error_of(client.post("/heatmap", json=body))[2] == (
        "source_tokens: at most 6 tokens per side (got 7)"
    )
