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
    per_side = (config.data.vocab.size, config.data.vocab.joint) == (4000, False)
    assert per_side == (name in ("vocab-4000", "averaged"))
    assert per_side or (config.data.vocab.size, config.data.vocab.joint) == (8000, True)


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


def test_each_seed_is_set_in_its_own_run(tmp_path: Path) -> None:
    command = demo_recipe.demo_command("vocab-4000", tmp_path / "run", 13.0, seed=3)
    assert [command[i + 1] for i, arg in enumerate(command) if arg == "--set"] == [
        "training.seed=3"
    ]
    assert demo_recipe.run_name("vocab-4000", 3) == "vocab-4000-seed3"
    assert demo_recipe.parse_args(["--seeds", "1,2"]).seed_list == [1, 2]
    assert demo_recipe.parse_args([]).seed_list == [None]


def test_seeds_are_summed_up_per_variant_as_mean_and_sample_sd() -> None:
    def report(bleu: str, chrf: str) -> dict[str, str]:
        scores = {"val_bleu": f"{float(bleu) - 2:.2f}", "val_chrf": "40.00"}
        return {"steps": "1,600", "weights": "last", "bleu": bleu, "chrf": chrf} | scores

    rows = [
        ("before", 1, "10:00", report("19.00", "41.00")),
        ("before", 2, "10:14", report("21.00", "43.00")),
        ("cosine", None, "10:28", report("20.00", "42.00")),
    ]
    (line,) = demo_recipe.seed_means(rows)
    assert line == (
        "| **before, mean ± sd of 2 seeds** | | 1,600 | | **18.00 ± 1.41** | 40.00 ± 0.00 "
        "| **20.00 ± 1.41** | 42.00 ± 1.41 |"
    )
    assert line.count("|") == demo_recipe.HEADER.splitlines()[0].count("|")


def test_bad_seeds_are_one_line(capsys) -> None:
    with pytest.raises(SystemExit):
        demo_recipe.parse_args(["--seeds", "1,x"])
    assert "--seeds: comma-separated integers" in capsys.readouterr().err


def test_runs_go_seed_by_seed_through_every_variant():
    order = demo_recipe.run_order(["before", "cosine"], [1, 2])
    assert order == [("before", 1), ("cosine", 1), ("before", 2), ("cosine", 2)]
    assert demo_recipe.run_order(["cosine"], [None]) == [("cosine", None)]


def test_validation_scores_the_weights_the_demo_scored(tmp_path: Path) -> None:
    run = tmp_path / "run"
    for step in ("step-00000040", "step-00000080"):
        (run / "checkpoints" / step).mkdir(parents=True)
        (run / "checkpoints" / step / "state.json").write_text("{}")
    command = demo_recipe.validation_command(run, tmp_path / "v.en", tmp_path / "v.fr")
    assert command[command.index("evaluate") + 1] == str(run)
    assert command[command.index("--checkpoint") + 1].endswith("step-00000080")
    assert command[command.index("--beam") + 1] == "5"


def test_kept_validation_scores_are_read_back_not_recomputed(tmp_path: Path) -> None:
    (tmp_path / "valid-scores.json").write_text('{"bleu": 12.345, "chrf": 40.0}\n')
    scores = demo_recipe.score_validation(tmp_path, tmp_path / "v.en", tmp_path / "v.fr")
    assert scores == {"val_bleu": "12.35", "val_chrf": "40.00"}
