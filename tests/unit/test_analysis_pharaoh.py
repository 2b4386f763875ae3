"""Pharaoh alignment files: sure/possible links, indexing, and clear errors."""

import pytest

from softalign.analysis.pharaoh import format_links, parse_line, read_alignments, write_alignments
from softalign.errors import DataError


def test_sure_and_possible_links_are_parsed():
    alignment = parse_line("0-1 2p3 1-0")
    assert alignment.sure == {(0, 1), (1, 0)}
    assert alignment.possible == {(0, 1), (1, 0), (2, 3)}  # a sure link is also possible


def test_one_indexed_links_are_shifted_to_zero():
    assert parse_line("1-1 3p2", one_index=True).possible == {(0, 0), (2, 1)}


def test_empty_line_is_a_sentence_without_links():
    assert parse_line("   ").possible == frozenset()


@pytest.mark.parametrize("bad", ["1-", "a-b", "1-2-3", "-1-2", "1:2", "1x2", "1.5-2"])
def test_malformed_link_names_file_line_and_token(tmp_path, bad):
    path = tmp_path / "pred.align"
    path.write_text(f"0-0\n0-0 {bad}\n")
    with pytest.raises(DataError) as error:
        read_alignments(path)
    message = str(error.value)
    assert f"{path}:2:" in message and repr(bad)[1:-1] in message
    assert "\n" not in message


def test_position_zero_in_a_one_indexed_file_is_an_error(tmp_path):
    path = tmp_path / "gold"
    path.write_text("1-1 0-2\n")
    with pytest.raises(DataError, match=r"gold:1: bad link '0-2': position 0 in a 1-indexed"):
        read_alignments(path, one_index=True)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_alignments(tmp_path / "nope.align")


def test_write_then_read_round_trips_in_both_indexings(tmp_path):
    links = [{(2, 0), (0, 1)}, set(), {(1, 1)}]
    for one_index in (False, True):
        path = tmp_path / f"out{one_index}.align"
        write_alignments(path, links, one_index=one_index)
        assert [a.sure for a in read_alignments(path, one_index=one_index)] == links
    assert format_links({(2, 0), (0, 1)}, one_index=True) == "1-2 3-1"
