"""The command line's surface: --version, a user-facing --help, the same short flags everywhere."""

import pytest

from softalign import __version__
from softalign.cli import build_parser


def parse(*argv):
    return build_parser().parse_args(list(argv))


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as done:
        parse("--version")
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"softalign {__version__}"


def test_top_level_help_describes_the_tool_for_users(capsys):
    with pytest.raises(SystemExit):
        parse("--help")
    text = capsys.readouterr().out
    assert "translate" in text and "examples:" in text
    assert ":mod:" not in text and "Every user-caused error" not in text  # not the module doc


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("translate", "RUN", "-i", "a.txt", "-o", "b.txt"), {"input": "a.txt", "output": "b.txt"}),
        (
            ("evaluate", "RUN", "-i", "a.txt", "--ref", "r", "-o", "h"),
            {"src": "a.txt", "output": "h"},
        ),
        (("evaluate", "RUN", "--src", "a.txt", "--ref", "r", "--output", "h"), {"src": "a.txt"}),
        (("attention", "RUN", "-i", "a.txt", "--outdir", "d"), {"input": "a.txt"}),
        (("align", "RUN", "-i", "a", "--tgt", "b", "-o", "c"), {"src": "a", "output": "c"}),
        (("align", "RUN", "--src", "a", "--tgt", "b", "--output", "c"), {"src": "a"}),
        (("compare", "A", "B", "-i", "a.txt", "--ref", "r"), {"src": "a.txt"}),
    ],
)
def test_short_flags_i_and_o_mean_input_and_output_on_every_command(argv, expected):
    args = parse(*argv)
    for key, value in expected.items():
        assert getattr(args, key) == value


@pytest.mark.parametrize(
    "argv",
    [
        ("translate", "RUN"),
        ("evaluate", "RUN", "-i", "a", "--ref", "b"),
        ("attention", "RUN", "a sentence", "-o", "x.png"),
        ("align", "RUN", "-i", "a", "--tgt", "b", "-o", "c"),
        ("serve", "RUN"),
    ],
)
def test_decoding_commands_take_checkpoint_and_decoding_overrides(argv):
    args = parse(*argv, "--checkpoint", "best", "--set", "decoding.max_length=50")
    assert args.checkpoint == "best" and args.set == ["decoding.max_length=50"]


def test_translate_takes_several_runs_for_an_ensemble():
    assert parse("translate", "A", "B", "-i", "x").run_dir == ["A", "B"]
