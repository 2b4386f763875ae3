"""BLEU/chrF per source-length bucket: bucketing, counts, table and plot."""

import pytest

from softalign.analysis.by_length import (
    bucket_of,
    format_table,
    parse_edges,
    score_by_length,
)
from softalign.analysis.length_plot import plot_by_length
from softalign.errors import SoftalignError


def test_a_length_goes_to_the_first_bucket_whose_edge_covers_it():
    edges = (10, 20)
    assert [bucket_of(n, edges) for n in (1, 10, 11, 20, 21, 500)] == [0, 0, 1, 1, 2, 2]


def test_edges_are_parsed_and_checked():
    assert parse_edges("5, 10,30") == (5, 10, 30)
    for bad in ("", "10,5", "0,10", "ten", "10,10"):
        with pytest.raises(SoftalignError, match="buckets"):
            parse_edges(bad)


def test_buckets_count_sentences_and_score_each_bucket_alone():
    sources = ["a b", "a b c d e", "a", "a b c d e f g h i j k l"]
    refs = ["the cat sat on the mat", "a dog ran in the park", "hello there my friend", "x y z w"]
    hyps = [refs[0], "nothing alike at all here", refs[2], refs[3]]
    buckets = score_by_length(sources, hyps, refs, edges=(2, 5, 8))
    assert [b.label for b in buckets] == ["1-2", "3-5", "6-8", "9+"]
    assert [b.count for b in buckets] == [2, 1, 0, 1]
    assert buckets[0].bleu == pytest.approx(100.0)
    assert buckets[1].bleu == pytest.approx(0.0)
    assert buckets[2].bleu is None and buckets[2].chrf is None  # empty bucket
    assert buckets[3].chrf == pytest.approx(100.0)


def test_count_mismatch_is_an_error():
    with pytest.raises(SoftalignError, match="counts must agree"):
        score_by_length(["a"], ["b", "c"], ["d"])


def test_table_has_one_row_per_bucket_and_columns_per_run():
    buckets = score_by_length(["a", "a b c"], ["x y", "x"], ["x y", "x"], edges=(2,))
    table = format_table({"run-a": buckets, "run-b": buckets}).splitlines()
    assert (
        table[0]
        == "| source words | sentences | BLEU run-a | chrF run-a | BLEU run-b | chrF run-b |"
    )
    assert table[2].startswith("| 1-2 | 1 | ")
    assert table[3].startswith("| 3+ | 1 | ")


def test_plot_is_written_for_several_runs(tmp_path):
    buckets = score_by_length(["a", "a b c"], ["x y", "x"], ["x y", "x"], edges=(2, 4))
    path = plot_by_length({"a": buckets, "b": buckets}, tmp_path / "len.svg")
    assert path.read_text().lstrip().startswith("<?xml")
    with pytest.raises(SoftalignError, match="unsupported plot format"):
        plot_by_length({"a": buckets}, tmp_path / "len.pdf")
