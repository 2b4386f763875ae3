"""Exact-match accuracy, hand-computed."""

from __future__ import annotations

import pytest

from softalign.study.accuracy import accuracy, accuracy_by_length, matched_positions


def test_matched_positions_counts_agreement_position_by_position():
    assert matched_positions("a b c".split(), "a b c".split()) == (3, 3)
    assert matched_positions("a c".split(), "a b c".split()) == (1, 3)  # a dropped word
    assert matched_positions("a b c d".split(), "a b c".split()) == (3, 4)  # an extra word
    assert matched_positions([], "a".split()) == (0, 1)


def test_accuracy_pools_over_sentences():
    hyps = ["a b c", "a c", "x y"]
    refs = ["a b c", "a b c", "x y"]
    sequence, token = accuracy(hyps, refs)
    assert sequence == pytest.approx(2 / 3)
    assert token == pytest.approx((3 + 1 + 2) / (3 + 3 + 2))


def test_accuracy_by_length_puts_each_sentence_in_its_bucket():
    sources = ["w " * 3, "w " * 12, "w " * 15, "w " * 30]
    hyps = ["a", "b", "c d", "e"]
    refs = ["a", "x", "c d", "e"]
    buckets = accuracy_by_length(sources, hyps, refs, edges=(10, 20))
    assert [b.label for b in buckets] == ["1-10", "11-20", "21+"]
    assert [b.count for b in buckets] == [1, 2, 1]
    assert [b.sequence for b in buckets] == [1.0, 0.5, 1.0]
    assert buckets[1].token == pytest.approx(2 / 3)


def test_empty_bucket_has_no_accuracy():
    buckets = accuracy_by_length(["w w"], ["a"], ["a"], edges=(10, 20))
    assert buckets[1].count == 0 and buckets[1].sequence is None
    assert buckets[1].as_dict()["sequence_accuracy"] is None
