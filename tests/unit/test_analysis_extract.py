"""Hard links from attention, symmetrization, and the diagonal baseline."""

import numpy as np

from softalign.analysis.extract import (
    argmax_links,
    diagonal_links,
    grow_diag,
    threshold_links,
    transpose,
)

# rows: target words, columns: source words
ATTENTION = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.1, 0.45, 0.45],
        [0.0, 0.0, 0.0],  # a target word with no pieces
    ]
)


def test_argmax_links_each_target_word_to_its_strongest_source_word():
    assert argmax_links(ATTENTION) == {(0, 0), (1, 1)}


def test_threshold_keeps_every_weight_at_or_above_it():
    assert threshold_links(ATTENTION, 0.45) == {(0, 0), (1, 1), (2, 1)}
    assert threshold_links(ATTENTION, 0.9) == set()


def test_transpose_swaps_source_and_target():
    assert transpose({(0, 2), (1, 0)}) == {(2, 0), (0, 1)}


def test_grow_diag_adds_neighbouring_union_links_of_unaligned_words():
    forward = {(0, 0), (1, 1), (2, 1)}
    backward = {(0, 0), (1, 1), (3, 3)}
    grown = grow_diag(forward, backward)
    assert grown == {(0, 0), (1, 1), (2, 1)}  # (2,1) neighbours (1,1); (3,3) is isolated
    assert grow_diag(forward, backward, final_and=True) == grown | {(3, 3)}


def test_grow_diag_keeps_the_intersection_and_stays_inside_the_union():
    rng = np.random.default_rng(0)
    for _ in range(50):
        forward = {tuple(p) for p in rng.integers(0, 5, size=(6, 2)).tolist()}
        backward = {tuple(p) for p in rng.integers(0, 5, size=(6, 2)).tolist()}
        grown = grow_diag(forward, backward, final_and=True)
        assert forward & backward <= grown <= forward | backward


def test_diagonal_baseline_on_known_lengths():
    assert diagonal_links(3, 3) == {(0, 0), (1, 1), (2, 2)}
    # |e| = 4, |f| = 2: i·2/4 = 0.5, 1, 1.5, 2 -> 1, 1, 2, 2 (1-indexed)
    assert diagonal_links(4, 2) == {(0, 0), (1, 0), (2, 1), (3, 1)}
    assert diagonal_links(0, 5) == set()
