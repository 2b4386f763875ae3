"""Hard word alignments from soft attention, symmetrization of two directions, and the
diagonal baseline. Links are (source position, target position), 0-indexed.

From a word attention matrix A (target words x source words):

- ``argmax``: each target word t links to argmax_s A[t, s] (one link per target word);
- ``threshold``: every (s, t) with A[t, s] >= τ (none, one or several per target word).

Two directions (A from x -> y, and B from a model trained y -> x, transposed) combine as the
intersection (high precision), the union, or ``grow-diag`` (Koehn et al. 2003): start from the
intersection and repeatedly add union links that neighbour (also diagonally) an existing link
and cover a so-far unaligned word; ``grow-diag-final-and`` then adds the remaining one-way links
whose two words are both still unaligned.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from softalign.analysis.pharaoh import Link

NEIGHBOURS = ((-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


def argmax_links(attention: np.ndarray) -> set[Link]:
    """One link per target word (rows that are all zero, e.g. unencodable words, get none)."""
    attention = np.asarray(attention)
    return {(int(np.argmax(row)), t) for t, row in enumerate(attention) if row.size and row.any()}


def threshold_links(attention: np.ndarray, threshold: float) -> set[Link]:
    """Every (source, target) pair whose weight is at least ``threshold``."""
    targets, sources = np.nonzero(np.asarray(attention) >= threshold)
    return {(int(s), int(t)) for s, t in zip(sources, targets, strict=True)}


EXTRACTORS: dict[str, Callable[[np.ndarray, float], set[Link]]] = {
    "argmax": lambda attention, threshold: argmax_links(attention),
    "threshold": threshold_links,
}


def transpose(links: set[Link]) -> set[Link]:
    """Links of the reverse direction (target, source) -> (source, target)."""
    return {(j, i) for i, j in links}


def grow_diag(forward: set[Link], backward: set[Link], final_and: bool = False) -> set[Link]:
    """Koehn et al.'s grow-diag(-final-and) of two alignments in the same orientation."""
    union = forward | backward
    links = set(forward & backward)
    src_aligned = {i for i, _ in links}
    tgt_aligned = {j for _, j in links}
    added = True
    while added:
        added = False
        for i, j in sorted(links):
            for di, dj in NEIGHBOURS:
                candidate = (i + di, j + dj)
                if candidate in union and candidate not in links:
                    if candidate[0] not in src_aligned or candidate[1] not in tgt_aligned:
                        links.add(candidate)
                        src_aligned.add(candidate[0])
                        tgt_aligned.add(candidate[1])
                        added = True
    if final_and:
        for one_way in (forward, backward):
            for i, j in sorted(one_way):
                if i not in src_aligned and j not in tgt_aligned:
                    links.add((i, j))
                    src_aligned.add(i)
                    tgt_aligned.add(j)
    return links


SYMMETRIZERS: dict[str, Callable[[set[Link], set[Link]], set[Link]]] = {
    "intersect": lambda f, b: f & b,
    "union": lambda f, b: f | b,
    "grow-diag": grow_diag,
    "grow-diag-final-and": lambda f, b: grow_diag(f, b, final_and=True),
}


def diagonal_links(n_src: int, n_tgt: int) -> set[Link]:
    """The diagonal baseline: source word i (1-indexed) links to target word
    round(i·|f|/|e|) (halves round up), clamped to [1, |f|]; returned 0-indexed."""
    if not n_src or not n_tgt:
        return set()
    return {
        (i - 1, min(max(int(i * n_tgt / n_src + 0.5), 1), n_tgt) - 1) for i in range(1, n_src + 1)
    }
