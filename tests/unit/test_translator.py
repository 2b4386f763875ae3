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


def test_a_single_string_is_refused_naming_the_fix(tiny_run):
    translator = Translator.load(tiny_run)
    with pytest.raises(TypeError, match=r"pass a list such as \['A man'\]"):
        translator.translate("A man")
    with pytest.raises(TypeError, match="translate_stream: lines must be a list"):
        list(translator.translate_stream("A man"))
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str, got int"):
        translator.translate(["A man", 3])


def test_other_text_apis_refuse_a_single_string(tiny_run):
    from softalign.analysis.align import align_pairs
    from softalign.analysis.forced import force_decode
    from softalign.analysis.views import attention_views
    from softalign.metrics import score_corpus

    translator = Translator.load(tiny_run)
    with pytest.raises(TypeError, match="force_decode: sources"):
        force_decode(translator, "ba de", ["de ba"])
    with pytest.raises(TypeError, match="align_pairs: targets"):
        align_pairs(translator, ["ba de"], "de ba")
    with pytest.raises(TypeError, match="attention_views: sources"):
        attention_views(translator, "ba de")
    with pytest.raises(TypeError, match="score_corpus: hypotheses"):
        score_corpus("de ba", "de ba")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"beam": 0}, "beam must be at least 1"),
        ({"beam": -3}, "beam must be at least 1"),
        ({"nbest": 0}, "nbest must be an integer of at least 1"),
        ({"beam": 2, "nbest": 5}, "nbest 5 is more than the beam 2"),
        ({"nbest": 5}, "nbest 5 is more than the beam 3 (the run's decoding.beam)"),
        ({"length_penalty": -0.5}, "length penalty must be >= 0"),
    ],
)
def test_search_options_out_of_range_are_a_value_error(tiny_run, options, message):
    with pytest.raises(ValueError) as info:
        Translator.load(tiny_run).translate(["ba de"], **options)
    assert message in str(info.value)


def test_progress_counts_every_sentence_once(tiny_run):
    done = []
    sentences = ["ba be bi", "", "ko ku ka ke ki", "ma"] * 5
    Translator.load(tiny_run).translate(sentences, beam=2, progress=done.append)
    assert sum(done) == len(sentences)
