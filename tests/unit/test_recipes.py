"""benchmarks/recipes.py: its variants are valid configs, seeds multiply them, the table adds up."""

import sys
from pathlib import Path

import pytest

from softalign.config import load_config

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
import recipes  # noqa: E402


@pytest.mark.parametrize("name", list(recipes.GRIDS["en-de"]))
def test_every_variant_of_the_grid_is_a_valid_config(name):
    overrides = list(recipes.GRIDS["en-de"][name]) + ["training.max_minutes=10"]
    config = load_config(REPO / "configs" / "multi30k-en-de.yaml", overrides)
    if "training.average_last=5" in overrides:
        assert config.training.keep_checkpoints >= config.training.average_last


def test_the_shipped_15_minute_config_loads_and_ends_within_its_budget():
    config = load_config(REPO / "configs" / "multi30k-en-de-15min.yaml")
    assert config.training.schedule == "cosine"
    assert config.training.average_last >= 2
    assert 0 < config.training.max_minutes < 15  # start-up and averaging fit in 15 minutes


def test_seeds_multiply_the_variants_and_unknown_names_are_refused():
    args = recipes.parse_args(
        ["--grid", "en-de", "--only", "shipped,cosine-2e-3", "--minutes", "1", "--seeds", "1,2"]
    )
    chosen = recipes.variants(args)
    assert [v.slug for v in chosen] == [
        "shipped-seed1",
        "shipped-seed2",
        "cosine-2e-3-seed1",
        "cosine-2e-3-seed2",
    ]
    args = recipes.parse_args(["--grid", "en-de", "--only", "cosine-9", "--minutes", "1"])
    with pytest.raises(SystemExit, match="cosine-9"):
        recipes.variants(args)


def test_train_command_sets_the_budget_threads_and_seed():
    args = recipes.parse_args(
        ["--variant", "x=training.lr=0.002", "--minutes", "7", "--threads", "1"]
    )
    (variant,) = recipes.variants(args)
    variant.seed = 3
    command = recipes.train_command(args, variant, Path("RUN"))
    sets = [command[i + 1] for i, word in enumerate(command) if word == "--set"]
    assert sets[0] == "training.lr=0.002"
    assert {"training.max_minutes=7.0", "training.threads=1", "training.seed=3"} <= set(sets)


def test_table_gives_mean_and_sd_over_seeds_best_first():
    def run(name, seed, bleu):
        v = recipes.Variant(name, (), seed, steps=100)
        v.scores["val"] = {"bleu": bleu, "chrf": 50.0}
        return v

    done = [run("a", 1, 30.0), run("a", 2, 32.0), run("b", 1, 35.0), run("b", 2, 35.0)]
    args = recipes.parse_args(["--grid", "en-de", "--minutes", "1"])
    rows = recipes.table(args, done).splitlines()[2:]
    assert rows[0].startswith("| b | 1,2 | 100 / 100 |")
    assert "| 35.00 ± 0.00 |" in rows[0]
    assert "| 31.00 ± 1.41 |" in rows[1]
    assert rows[1].endswith("| 31.00 ± 1.41 | 50.00 ± 0.00 |")  # one chrF column per split


def test_split_files_follow_the_config_language_pair():
    src, ref = recipes.split_files(REPO / "configs" / "multi30k-en-fr.yaml", "test2016")
    assert (src.name, ref.name) == ("test_2016_flickr.en.gz", "test_2016_flickr.fr.gz")
    src, ref = recipes.split_files(REPO / "configs" / "multi30k-en-de-15min.yaml", "val")
    assert (src.name, ref.name) == ("val.en.gz", "val.de.gz")


def test_val_settings_put_the_default_first_then_penalties_then_beams():
    args = recipes.parse_args(
        ["--minutes", "1", "--length-penalties", "0.6,1.4", "--beams", "1,5,10"]
    )
    assert recipes.val_settings(args) == [(5, None), (5, 0.6), (5, 1.4), (1, None), (10, None)]


def test_each_run_keeps_its_own_scores_beside_the_mean():
    run = recipes.Variant("vocab-4000", ("data.vocab.size=4000",), 2, steps=4116)
    run.scores["val"] = {"bleu": 57.812, "chrf": 73.1}
    run.scores["test2016"] = {"bleu": 59.4449, "chrf": 74.93}
    (line,) = recipes.run_lines([run])
    assert line == (
        "- vocab-4000-seed2: data.vocab.size=4000; 4116 steps; val 57.81 (chrF 73.10), "
        "test2016 59.44 (chrF 74.93)"
    )
