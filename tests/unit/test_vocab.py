"""Vocabulary training is reproducible: seeded sampling, the same bytes for the same seed."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest

from softalign.data.synthetic import WORDS, generate
from softalign.data.vocab import SubwordVocab, seeded_sample


def model_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    """5000 lines: more than the sample of 1000 SentencePiece is given."""
    return generate("copy", 5000, 3, 12, len(WORDS), seed=3).src


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_same_corpus_and_seed_give_the_same_model_bytes(model_type, corpus, tmp_path):
    digests = {
        model_sha256(
            SubwordVocab.train(
                corpus, tmp_path / f"spm{i}", 60, model_type, sample_sentences=1000, seed=42
            ).path
        )
        for i in range(3)
    }
    assert len(digests) == 1


def test_the_seed_chooses_the_sample(corpus):
    assert seeded_sample(corpus, 1000, seed=1) == seeded_sample(iter(corpus), 1000, seed=1)
    assert seeded_sample(corpus, 1000, seed=1) != seeded_sample(corpus, 1000, seed=2)


def test_a_sample_keeps_corpus_order_and_every_line_is_equally_likely():
    lines = [f"line {i:03d}" for i in range(100)]
    sample = seeded_sample(lines, 10, seed=0)
    assert len(sample) == 10 and sample == sorted(sample)
    counts = Counter(line for seed in range(2000) for line in seeded_sample(lines, 10, seed))
    # each line is drawn with probability 1/10: 200 of 2000 times (binomial sd ~13)
    assert min(counts.values()) > 140 and max(counts.values()) < 260


def test_a_corpus_smaller_than_the_sample_is_taken_whole():
    assert seeded_sample(["a", "b", "c"], 1000, seed=5) == ["a", "b", "c"]
