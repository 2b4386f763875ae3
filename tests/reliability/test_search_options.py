"""Search options on the command line are checked as the server checks them: one line, exit 2,
before the model is loaded (never a ZeroDivisionError, a silently reduced n-best, or a beam
of 100000 running for minutes)."""

from __future__ import annotations

import pytest
from tests.reliability.clicheck import fails_cleanly, run_cli

from softalign.decoding.options import MAX_BEAM, SearchOptionError, check_search_options

BAD_OPTIONS = {
    "beam_0": (["--beam", "0"], "beam must be at least 1"),
    "beam_negative": (["--beam", "-3"], "beam must be at least 1"),
    "beam_absurd": (["--beam", "100000"], f"beam must be at most {MAX_BEAM}"),
    "nbest_0": (["--nbest", "0"], "nbest must be an integer of at least 1"),
    "nbest_over_beam": (["--nbest", "5", "--beam", "2"], "nbest 5 is more than the beam 2"),
    "nbest_over_default_beam": (["--nbest", "5"], "more than the beam 3 (the run's decoding.beam)"),
    "negative_length_penalty": (["--length-penalty", "-1"], "length penalty must be >= 0"),
    "nan_length_penalty": (["--length-penalty", "nan"], "length penalty must be a finite"),
}


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("ba de\nko lu\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("case", BAD_OPTIONS)
def test_translate_refuses_bad_search_options_in_one_line(tiny_run, source, case):
    options, message = BAD_OPTIONS[case]
    assert message in fails_cleanly("translate", tiny_run, "-i", source, *options)


@pytest.mark.parametrize(
    "case", ["beam_0", "beam_negative", "beam_absurd", "negative_length_penalty"]
)
def test_evaluate_refuses_bad_search_options_in_one_line(tiny_run, source, case):
    options, message = BAD_OPTIONS[case]
    line = fails_cleanly("evaluate", tiny_run, "--src", source, "--ref", source, *options)
    assert message in line


@pytest.mark.parametrize("command", ["attention", "compare"])
def test_analysis_commands_refuse_a_zero_beam(tiny_run, source, tmp_path, command):
    if command == "attention":
        args = ["attention", tiny_run, "ba de", "-o", tmp_path / "a.png"]
    else:
        args = ["compare", tiny_run, "--src", source, "--ref", source, "--plot", tmp_path / "c.png"]
    assert "beam must be at least 1" in fails_cleanly(*args, "--beam", "0")


def test_nbest_equal_to_the_beam_gives_that_many_lines(tiny_run, source):
    code, out, err = run_cli("translate", tiny_run, "-i", source, "--beam", "2", "--nbest", "2")
    assert code == 0, err
    assert [line.split(" ||| ")[0] for line in out.splitlines()] == ["0", "0", "1", "1"]


@pytest.mark.parametrize("port", ["-1", "65536", "70000"])
def test_serve_refuses_a_port_out_of_range_in_one_line(tiny_run, port):
    line = fails_cleanly("serve", tiny_run, "--port", port)
    assert line == f"softalign: error: serve: --port must be between 1 and 65535, got {port}"


def test_check_is_an_error_for_the_cli_and_a_value_error_for_the_api():
    with pytest.raises(SearchOptionError) as info:
        check_search_options(3, nbest=4)
    assert isinstance(info.value, ValueError)
    check_search_options(MAX_BEAM, nbest=MAX_BEAM, length_penalty=0.0)  # the edges are valid
    check_search_options(MAX_BEAM + 1, max_beam=None)  # no maximum for a caller who says so
