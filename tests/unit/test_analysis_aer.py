"""AER (Och & Ney 2003) on hand-made gold/prediction pairs with known answers."""

import pytest

from softalign.analysis.aer import alignment_error_rate, score_files
from softalign.analysis.pharaoh import parse_line
from softalign.errors import DataError


def test_prediction_equal_to_sure_links_has_zero_aer():
    gold = [parse_line("0-0 1-1 2p2")]
    score = alignment_error_rate(gold, [{(0, 0), (1, 1)}])
    assert (score.precision, score.recall, score.aer) == (1.0, 1.0, 0.0)


def test_possible_links_are_not_penalised_and_not_required():
    gold = [parse_line("0-0 1p1")]
    assert alignment_error_rate(gold, [{(0, 0), (1, 1)}]).aer == 0.0
    assert alignment_error_rate(gold, [{(0, 0)}]).aer == 0.0


def test_hand_computed_example():
    # S = {0-0, 1-1, 2-2}, P = S ∪ {2-3}; A = {0-0, 1-2, 2-3, 3-3}
    gold = [parse_line("0-0 1-1 2-2 2p3")]
    score = alignment_error_rate(gold, [{(0, 0), (1, 2), (2, 3), (3, 3)}])
    # |A∩S| = 1, |A∩P| = 2, |A| = 4, |S| = 3
    assert score.precision == pytest.approx(2 / 4)
    assert score.recall == pytest.approx(1 / 3)
    assert score.aer == pytest.approx(1 - (1 + 2) / (4 + 3))


def test_counts_are_summed_over_the_corpus_before_dividing():
    gold = [parse_line("0-0"), parse_line("0-0 1-1 2-2")]
    score = alignment_error_rate(gold, [{(0, 0)}, {(0, 0)}])
    assert score.recall == pytest.approx(2 / 4)  # not the mean of 1 and 1/3
    assert score.aer == pytest.approx(1 - (2 + 2) / (2 + 4))


def test_disjoint_prediction_has_aer_one():
    assert alignment_error_rate([parse_line("0-0")], [{(1, 1)}]).aer == 1.0


def test_files_with_different_line_counts_are_an_error(tmp_path):
    gold, pred = tmp_path / "gold", tmp_path / "pred"
    gold.write_text("1-1\n2-2\n")
    pred.write_text("1-1\n")
    with pytest.raises(DataError, match="gold has 2 lines but .*pred has 1"):
        score_files(gold, pred, one_index=True)


def test_score_files_reads_one_indexed_files(tmp_path):
    gold, pred = tmp_path / "gold", tmp_path / "pred"
    gold.write_text("1-1 2-2 2p3\n")
    pred.write_text("1-1 2-3\n")
    score = score_files(gold, pred, one_index=True)
    assert score.as_dict() == {"precision": 1.0, "recall": 0.5, "aer": pytest.approx(0.25)}
