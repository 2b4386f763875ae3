"""benchmarks/demo_recipe.py: its variants are valid demo configs, its report reader reads."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import demo_recipe  # noqa: E402

from softalign import demo  # noqa: E402
from softalign.config import parse_overrides  # noqa: E402


@pytest.mark.parametrize("name", list(demo_recipe.VARIANTS))
def test_each_variant_is_a_valid_demo_config(name: str) -> None:
    overrides = parse_overrides(list(demo_recipe.VARIANTS[name]))
    config = demo.demo_config(demo.DEMO_CORPUS, 13.0, overrides)
    averaging = config.training.average_last > 0
    assert averaging == (name == "averaged")
    assert config.training.schedule == ("plateau" if name == "before" else "cosine")


def test_the_command_sets_each_override(tmp_path: Path) -> None:
    command = demo_recipe.demo_command("averaged", tmp_path / "run", 13.0)
    assert command[command.index("--minutes") + 1] == "13"
    sets = [command[i + 1] for i, arg in enumerate(command) if arg == "--set"]
    assert sets == list(demo_recipe.VARIANTS["averaged"])


def test_report_reader_reads_what_the_demo_writes(tmp_path: Path) -> None:
    (tmp_path / "report.md").write_text(
        "- training: 2013 steps, 13.0 minutes, 2 full epochs; stopped: budget\n"
        "- weights evaluated: `averaged/step-00002013`, the mean of the last 2 checkpoint(s) "
        "(how many: chosen on the validation verses)\n\n| BLEU | chrF |\n| ---: | ---: |\n"
        "| 20.62 | 42.93 |\n"
    )
    assert demo_recipe.read_report(tmp_path) == {
        "steps": "2,013",
        "weights": "`averaged/step-00002013`, the mean of the last 2 checkpoint(s)",
        "bleu": "20.62",
        "chrf": "42.93",
    }


def test_unknown_variant_is_refused(capsys) -> None:
    with pytest.raises(SystemExit):
        demo_recipe.parse_args(["--only", "before,fastest"])
    assert "unknown variant(s) fastest" in capsys.readouterr().err
