"""Forced decoding reproduces the search's attention and scores; word alignment of files."""

import numpy as np
import pytest

from softalign.analysis.align import align_pairs
from softalign.analysis.forced import attend_ids, encode_words, force_decode
from softalign.analysis.views import attention_record, attention_views
from softalign.decoding.search import decode_ids
from softalign.translator import Translator


@pytest.fixture(scope="module")
def translator(tiny_run):
    return Translator.load(tiny_run, device="cpu")


def test_forcing_the_greedy_output_gives_the_greedy_attention_and_score(translator):
    src_ids = translator.src_vocab.encode(["ba be bi bo", "ku ka"])
    found = decode_ids(translator.model, src_ids, beam=1, max_length=20)
    tgt_ids = [h[0].tokens for h in found]
    matrices, log_probs = attend_ids(translator, src_ids, tgt_ids)
    for hypotheses, matrix, log_prob in zip(found, matrices, log_probs, strict=True):
        np.testing.assert_allclose(matrix, hypotheses[0].attention.numpy(), atol=1e-5)
        assert log_prob == pytest.approx(hypotheses[0].score, abs=1e-3)


def test_forced_attention_has_one_row_per_target_piece_summing_to_one(translator):
    [forced] = force_decode(translator, ["ba be bi"], ["bi be ba ko"])
    assert forced.attention.shape == (len(forced.target_tokens), len(forced.source_tokens))
    np.testing.assert_allclose(forced.attention.sum(axis=1), 1.0, atol=1e-5)
    assert forced.log_prob < 0


def test_empty_side_gives_an_empty_matrix(translator):
    forced = force_decode(translator, ["ba be", ""], ["", "ku"])
    assert forced[0].attention.shape == (0, len(forced[0].source_tokens))
    assert forced[1].attention.size == 0


def test_pretokenized_words_map_exactly_to_their_pieces(translator):
    ids, words, word_of_piece = encode_words(translator.src_vocab, "ba  bebi ,")
    assert words == ["ba", "bebi", ","]
    assert len(ids) == len(word_of_piece) and sorted(set(word_of_piece)) == [0, 1, 2]


def test_alignments_link_only_existing_words(translator):
    src, tgt = ["ba be bi", "ko"], ["bi be ba", "ko ku"]
    for links, s, t in zip(align_pairs(translator, src, tgt), src, tgt, strict=True):
        assert len(links) == len(t.split())  # argmax: one link per target word
        assert all(i < len(s.split()) and j < len(t.split()) for i, j in links)
    both = align_pairs(translator, src, tgt, reverse=translator, symmetrize="intersect")
    assert all(len(links) <= len(t.split()) for links, t in zip(both, tgt, strict=True))


def test_word_views_have_word_labels(translator):
    [view] = attention_views(translator, ["ba be bi"], ["bi be ba"], granularity="word")
    assert view.attention.shape == (len(view.target_labels), len(view.source_labels))
    assert view.source_labels == ["ba", "be", "bi"]


def test_attention_record_is_plain_json_data(translator):
    [translation] = translator.translate(["ba be bi"], beam=2)
    record = attention_record(7, translation)
    assert record["index"] == 7 and record["source"] == "ba be bi"
    assert len(record["attention"]) == len(record["target_tokens"])
    assert all(len(row) == len(record["source_tokens"]) for row in record["attention"])


def test_reverse_run_must_translate_the_other_way():
    from types import SimpleNamespace

    from softalign.analysis.align import check_reverse
    from softalign.config import from_dict
    from softalign.errors import SoftalignError

    def run(src, tgt):
        config = from_dict(
            {"data": {"corpus": "synthetic:reverse", "src_lang": src, "tgt_lang": tgt}}
        )
        return SimpleNamespace(config=config, checkpoint=f"runs/{src}-{tgt}")

    check_reverse(run("en", "fr"), run("fr", "en"))
    check_reverse(run("src", "tgt"), run("src", "tgt"))  # unnamed languages: not checked
    with pytest.raises(SoftalignError, match="translates en->fr, expected fr->en"):
        check_reverse(run("en", "fr"), run("en", "fr"))
