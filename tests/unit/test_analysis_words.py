"""Subword -> word attention: source pieces summed, target pieces averaged."""

import numpy as np
import pytest

from softalign.analysis.words import group_pieces, merge_attention, to_words


def test_pieces_group_into_words_at_word_start_marks():
    words, index = group_pieces(["▁New", "▁Yor", "k", "▁", ",", "▁ok"])
    assert words == ["New", "York", ",", "ok"]
    assert index == [0, 1, 1, 2, 2, 3]


def test_first_piece_without_mark_still_starts_a_word():
    assert group_pieces(["ab", "▁c"]) == (["ab", "c"], [0, 1])


def test_word_merging_on_a_hand_example():
    # target pieces: ▁la ▁mai son   source pieces: ▁the ▁ho use
    attention = np.array(
        [
            [0.8, 0.1, 0.1],  # ▁la
            [0.2, 0.5, 0.3],  # ▁mai
            [0.0, 0.4, 0.6],  # son
        ]
    )
    merged, src_words, tgt_words = to_words(
        attention, ["▁the", "▁ho", "use"], ["▁la", "▁mai", "son"]
    )
    assert src_words == ["the", "house"] and tgt_words == ["la", "maison"]
    expected = np.array(
        [
            [0.8, 0.1 + 0.1],  # la: house = ho + use
            [(0.2 + 0.0) / 2, ((0.5 + 0.3) + (0.4 + 0.6)) / 2],  # maison: mean of mai, son
        ]
    )
    np.testing.assert_allclose(merged, expected)
    np.testing.assert_allclose(merged.sum(axis=1), 1.0)  # rows still sum to one


def test_word_without_pieces_gets_zero_column():
    merged = merge_attention(np.array([[0.3, 0.7]]), [0, 2], [0], n_src_words=3, n_tgt_words=1)
    np.testing.assert_allclose(merged, [[0.3, 0.0, 0.7]])


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="does not match"):
        merge_attention(np.ones((2, 2)), [0, 1, 2], [0, 1])
