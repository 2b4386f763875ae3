"""The generated tasks: every target is exactly the rule applied to its source."""

from __future__ import annotations

import pytest

from softalign.data.sources import load_source
from softalign.data.synthetic import parse_spec
from softalign.errors import DataError


@pytest.mark.parametrize(
    ("task", "rule"),
    [
        ("copy", lambda w: w),
        ("reverse", lambda w: w[::-1]),
        ("swap", lambda w: w[len(w) // 2 :] + w[: len(w) // 2]),
    ],
)
def test_targets_follow_the_task_rule_in_every_split(task, rule):
    splits = load_source(f"synthetic:{task}?min=10&max=100&n=300&seed=3")
    for split in splits.values():
        for src, tgt in zip(split.src, split.tgt, strict=True):
            assert tgt.split() == rule(src.split())
            assert 10 <= len(src.split()) <= 100


def test_swap_puts_every_word_half_the_sentence_away_from_its_source():
    split = load_source("synthetic:swap?min=10&max=10&n=50&seed=1")["train"]
    for src, tgt in zip(split.src, split.tgt, strict=True):
        words, out = src.split(), tgt.split()
        assert all(out[i] == words[(i + 5) % 10] for i in range(10))


def test_same_arguments_give_the_same_corpus_and_seeds_differ():
    a = load_source("synthetic:reverse?min=5&max=50&n=100&seed=7")
    b = load_source("synthetic:reverse?min=5&max=50&n=100&seed=7")
    c = load_source("synthetic:reverse?min=5&max=50&n=100&seed=8")
    assert a["train"].src == b["train"].src and a["test"].src == b["test"].src
    assert a["train"].src != c["train"].src
    assert a["train"].src != a["test"].src  # held-out splits are different draws


def test_lengths_cover_the_whole_range():
    lengths = {
        len(s.split()) for s in load_source("synthetic:copy?min=10&max=100&n=3000")["train"].src
    }
    assert min(lengths) == 10 and max(lengths) == 100


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("rotate", "unknown task 'rotate'"),
        ("copy?min=9&max=3", "need 1 <= min <= max"),
        ("copy?len=3", "unknown parameter 'len'"),
        ("copy?n=many", "'n' must be an integer"),
        ("copy?vocab=1", "vocab must be in"),
    ],
)
def test_bad_specs_are_one_line_errors(spec, message):
    with pytest.raises(DataError, match=message):
        parse_spec(spec)
