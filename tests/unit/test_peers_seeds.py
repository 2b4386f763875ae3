"""benchmarks/peers.py --seeds: one softalign run per seed, the peers once, the mean ± sd."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import peers  # noqa: E402
from peers_systems import OpenNMT, SoftalignRecipe, SoftalignRecipeReference  # noqa: E402


def test_each_softalign_system_is_copied_per_seed_and_its_config_gets_the_seed(tmp_path):
    recipe = SoftalignRecipe(tmp_path, Path(sys.executable))
    seeded = peers.per_seed(recipe, [1, 7])
    assert [s.name for s in seeded] == ["softalign-recipe-seed1", "softalign-recipe-seed7"]
    assert [s.seed_of for s in seeded] == ["softalign-recipe"] * 2
    assert seeded[1].config(10, 1, 900.0)["training"]["seed"] == 7
    assert recipe.config(10, 1, 900.0)["training"]["seed"] == 42  # the original is untouched
    assert recipe.name == "softalign-recipe" and recipe.seed is None


def test_a_decode_only_system_decodes_the_budget_model_of_its_own_seed(tmp_path):
    reference = SoftalignRecipeReference(tmp_path, Path(sys.executable))
    (seeded,) = peers.per_seed(reference, [3])
    runs = tmp_path / "runs"
    assert peers.budget_dir(runs, seeded) == runs / "budget-softalign-recipe-seed3"


def test_a_peer_is_not_copied(tmp_path):
    onmt = OpenNMT.__new__(OpenNMT)
    assert peers.per_seed(onmt, [1, 2, 3]) == [onmt]


def test_mean_sd_uses_the_sample_standard_deviation():
    assert peers.mean_sd([37.0, 38.0, 39.0], 2) == "38.00 ± 1.00"
    assert peers.mean_sd([1700], 0) == "1,700 ± 0"


def test_seeds_are_parsed_into_the_budget_systems_only(tmp_path, monkeypatch):
    monkeypatch.setattr(
        peers,
        "make_system",
        lambda args, data, name: peers.SoftalignRecipe(data, Path(sys.executable)),
    )
    args = peers.parse_args(["--systems", "softalign-recipe", "--seeds", "1,2"])
    throughput, budget = peers.build_systems(args, tmp_path)
    assert [s.name for s in throughput] == ["softalign-recipe"]
    assert [s.name for s in budget] == ["softalign-recipe-seed1", "softalign-recipe-seed2"]


def test_the_recipe_keeps_its_config_vocabulary_the_others_share_the_joint_8k(tmp_path):
    import yaml
    from peers_systems import REPO, Softalign

    shipped_file = SoftalignRecipe(tmp_path, Path(sys.executable)).config_file(900.0)
    shipped = yaml.safe_load((REPO / "configs" / shipped_file).read_text())
    recipe = SoftalignRecipe(tmp_path, Path(sys.executable)).config(10, 1, 900.0)
    assert recipe["data"]["vocab"] == shipped["data"]["vocab"]
    plain = Softalign(tmp_path, Path(sys.executable)).config(10, 1, 900.0)
    assert plain["data"]["vocab"] == {"type": "unigram", "size": 8000, "joint": True}


def test_search_mfu_counts_the_outputs_found_and_is_blank_without_their_lengths(tmp_path):
    from peers_flops import ModelShape, search_macs
    from peers_systems import Decoded

    bare = Decoded(process=None, search_s=2.0, hypotheses=["a"])
    assert peers.search_mfu(bare, 1, 4000, 1e11) == ""
    found = Decoded(None, 2.0, ["a b", "c"], src_lengths=[3, 2], out_lengths=[2, 1])
    macs = search_macs(ModelShape(), 4000, [3, 2], [2, 1], 5)
    assert peers.search_mfu(found, 5, 4000, 1e11) == f"{2 * macs / 2.0 / 1e11:.1%}"


def test_the_recipe_trains_the_shipped_config_of_the_longest_budget_that_fits(tmp_path):
    import yaml
    from peers_systems import REPO

    recipe = SoftalignRecipe(tmp_path, Path(sys.executable))
    assert recipe.config_file(15 * 60.0) == "multi30k-en-de-15min.yaml"
    assert recipe.config_file(30 * 60.0) == "multi30k-en-de-15min.yaml"
    assert recipe.config_file(60.0) == "multi30k-en-de-15min.yaml"  # --quick: the shortest
    assert recipe.config_file(45 * 60.0) == "multi30k-en-de-45min.yaml"
    shipped = yaml.safe_load((REPO / "configs" / "multi30k-en-de-45min.yaml").read_text())
    config = recipe.config(10**9, 20, 45 * 60.0)
    assert config["model"]["dropout"] == shipped["model"]["dropout"]
    assert config["data"]["vocab"] == shipped["data"]["vocab"]
    assert config["training"]["average_last"] == shipped["training"]["average_last"]
    assert config["training"]["max_minutes"] == 44.0  # a minute for start-up and averaging
