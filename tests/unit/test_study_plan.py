"""The study plan: validation, one config per variant, and rerun consistency."""

from __future__ import annotations

import json

import pytest
from tests.helpers import tiny_config

from softalign.errors import SoftalignError
from softalign.study.measure import default_edges, heatmap_index
from softalign.study.plan import (
    UNLIMITED_STEPS,
    StudyPlan,
    check_same_study,
    load_plan,
    save_plan,
)


def plan(**changes) -> StudyPlan:
    fields = {"config": tiny_config().to_dict(), "variants": ("none", "additive")}
    return StudyPlan(**{**fields, "budget_steps": 10, **changes})


def test_variants_differ_only_in_attention_and_share_the_budget():
    study = plan(budget_steps=0, budget_minutes=3)
    none, additive = study.variant_config("none"), study.variant_config("additive")
    assert none.model.attention == "none" and additive.model.attention == "additive"
    assert none.replace(**{"model.attention": "additive"}) == additive
    assert additive.training.max_minutes == 3 and additive.training.max_steps == UNLIMITED_STEPS
    by_steps = plan().variant_config("dot")
    assert by_steps.training.max_steps == 10 and by_steps.training.max_minutes == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"variants": ()}, "at least one variant"),
        ({"variants": ("none", "luong")}, "unknown variant 'luong'"),
        ({"variants": ("dot", "dot")}, "named twice"),
        ({"budget_steps": 0}, "one budget"),
        ({"budget_minutes": 5}, "one budget"),
        ({"beam": 0}, "--beam"),
    ],
)
def test_bad_plans_are_one_line_errors(changes, message):
    with pytest.raises(SoftalignError, match=message):
        plan(**changes)


def test_plan_round_trips_through_the_directory(tmp_path):
    original = plan(buckets=(10, 20))
    save_plan(original, tmp_path)
    assert load_plan(tmp_path) == original


def test_rerun_may_change_variants_but_not_the_budget_or_config(tmp_path):
    save_plan(plan(), tmp_path)
    check_same_study(plan(variants=("none", "additive", "dot")), tmp_path)  # fine
    with pytest.raises(SoftalignError, match="different budget_steps"):
        check_same_study(plan(budget_steps=20), tmp_path)
    other = plan(config=tiny_config(**{"model.decoder_hidden": 96}).to_dict())
    with pytest.raises(SoftalignError, match=r"different config \(model.decoder_hidden\)"):
        check_same_study(other, tmp_path)


def test_a_study_from_before_a_new_config_key_is_still_the_same_study(tmp_path):
    save_plan(plan(), tmp_path)
    stored = json.loads((tmp_path / "study.json").read_text())
    del stored["config"]["data"]["vocab"]["sample_sentences"]  # written by an older softalign
    (tmp_path / "study.json").write_text(json.dumps(stored))
    check_same_study(plan(), tmp_path)  # the default fills the gap
    changed = tiny_config(**{"data.vocab.sample_sentences": 5000}).to_dict()
    with pytest.raises(SoftalignError, match=r"config \(data.vocab.sample_sentences\)"):
        check_same_study(plan(config=changed), tmp_path)


def test_default_edges_follow_the_test_lengths():
    short = ["w " * n for n in range(1, 31)]
    assert default_edges(short) == (10, 20)
    long = ["w " * n for n in range(10, 101)]
    assert default_edges(long) == (20, 40, 60, 80)


def test_heatmap_sentence_is_long_but_drawable():
    sources = ["w " * n for n in (5, 8, 30, 60, 90, 12)]
    chosen = heatmap_index(sources)
    assert len(sources[chosen].split()) == 30  # nearest the 80th percentile, at most 40
