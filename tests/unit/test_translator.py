"""Translator API on a tiny trained run."""

import numpy as np
import pytest
from tests.helpers import needs_bf16_products

from softalign.errors import CheckpointError, SoftalignError
from softalign.translator import Translator


def test_translate_returns_text_score_and_attention(tiny_run):
    translator = Translator.load(tiny_run)
    [result] = translator.translate(["ba be bi bo"], beam=3)
    assert isinstance(result.text, str) and result.text
    assert result.score < 0
    assert result.attention.shape == (len(result.target_tokens), len(result.source_tokens))
    assert np.allclose(result.attention.sum(axis=1), 1.0, atol=1e-5)


def test_empty_lines_give_empty_translations_in_order(tiny_run):
    translator = Translator.load(tiny_run)
    results = translator.translate(["ba be", "", "   ", "ka ke ki"], beam=2)
    assert [bool(r.nbest) for r in results] == [True, False, False, True]  # decoded or not
    assert results[1].text == results[2].text == ""
    assert results[3].source == "ka ke ki"


def test_nbest_is_ordered(tiny_run):
    [result] = Translator.load(tiny_run).translate(["ba be bi"], beam=4, nbest=3)
    scores = [c.score for c in result.nbest]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)


def test_greedy_and_beam_one_agree(tiny_run):
    translator = Translator.load(tiny_run)
    sentences = ["ba be bi", "ko ku ka ke ki", "ma"]
    greedy = [r.text for r in translator.translate(sentences, beam=1)]
    beam = [r.text for r in translator.translate(sentences, beam=1, nbest=1)]
    assert greedy == beam


def test_stream_keeps_input_order_across_chunks(tiny_run):
    translator = Translator.load(tiny_run)
    lines = ["ba be bi", "ka", "", "mo mu ma me", "da de"] * 3
    streamed = [t.text for t in translator.translate_stream(lines, chunk=4, beam=1)]
    assert streamed == [t.text for t in translator.translate(lines, beam=1)]


def test_missing_run_directory_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        Translator.load(tmp_path / "nope")


@needs_bf16_products()
@pytest.mark.parametrize("beam", [1, 3])
def test_bf16_decoding_on_the_cpu_finds_the_fp32_translations(tiny_run, beam):
    translator = Translator.load(tiny_run)
    sources = ["ba be bi bo", "ka ke ki", "bo bi be ba ka", "ke ka"] * 3
    full = translator.translate(sources, beam=beam)
    translator.config = translator.config.replace(**{"decoding.precision": "bf16"})
    low = translator.translate(sources, beam=beam)
    assert sum(a.text == b.text for a, b in zip(full, low, strict=True)) >= len(sources) - 2
    for result in low:  # scores and attention are fp32 and normalised under autocast too
        assert result.attention.dtype == np.float32
        assert np.allclose(result.attention.sum(axis=1), 1.0, atol=1e-5)


def test_fp16_decoding_on_the_cpu_is_a_clear_error(tiny_run):
    translator = Translator.load(tiny_run)
    translator.config = translator.config.replace(**{"decoding.precision": "fp16"})
    with pytest.raises(SoftalignError, match="decoding.precision fp16 needs a CUDA device"):
        translator.translate(["ba be"], beam=1)
