"""Subword attention -> word attention.

SentencePiece marks the first piece of each word with ``▁``. Word-level attention follows the
usual convention (e.g. Zenkel et al. 2019; Garg et al. 2019): for target word t and source
word s, with pieces T(t) and S(s)::

    A_word[t, s] = (1 / |T(t)|) Σ_{p ∈ T(t)} Σ_{q ∈ S(s)} A_piece[p, q]

summed over a source word's pieces (rows still sum to one) and averaged over a target word's
pieces.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

WORD_START = "▁"


def group_pieces(pieces: Sequence[str]) -> tuple[list[str], list[int]]:
    """Words spelled by SentencePiece ``pieces`` and the word index of each piece.

    ``["▁New", "▁Yor", "k"]`` -> ``(["New", "York"], [0, 1, 1])``. A lone ``▁`` starts a
    word; a first piece without ``▁`` still starts one.
    """
    words: list[str] = []
    word_of_piece: list[int] = []
    for piece in pieces:
        if piece.startswith(WORD_START) or not words:
            words.append(piece.removeprefix(WORD_START))
        else:
            words[-1] += piece
        word_of_piece.append(len(words) - 1)
    return words, word_of_piece


def merge_attention(
    attention: np.ndarray,
    src_word_of_piece: Sequence[int],
    tgt_word_of_piece: Sequence[int],
    n_src_words: int | None = None,
    n_tgt_words: int | None = None,
) -> np.ndarray:
    """(tgt_pieces, src_pieces) weights -> (tgt_words, src_words).

    Source pieces are summed into their word, target pieces averaged into theirs. A word with
    no pieces gets a zero row/column.
    """
    attention = np.asarray(attention, dtype=np.float64)
    if attention.shape != (len(tgt_word_of_piece), len(src_word_of_piece)):
        raise ValueError(
            f"attention {attention.shape} does not match "
            f"{len(tgt_word_of_piece)} target x {len(src_word_of_piece)} source pieces"
        )
    n_src = n_src_words if n_src_words is not None else max(src_word_of_piece, default=-1) + 1
    n_tgt = n_tgt_words if n_tgt_words is not None else max(tgt_word_of_piece, default=-1) + 1
    src_map = np.zeros((len(src_word_of_piece), n_src))  # (src_pieces, src_words)
    src_map[np.arange(len(src_word_of_piece)), src_word_of_piece] = 1.0
    tgt_map = np.zeros((n_tgt, len(tgt_word_of_piece)))  # (tgt_words, tgt_pieces)
    tgt_map[tgt_word_of_piece, np.arange(len(tgt_word_of_piece))] = 1.0
    counts = tgt_map.sum(axis=1, keepdims=True)
    tgt_map = np.divide(tgt_map, counts, out=np.zeros_like(tgt_map), where=counts > 0)
    return tgt_map @ attention @ src_map  # (tgt_words, src_words)


def to_words(
    attention: np.ndarray, src_pieces: Sequence[str], tgt_pieces: Sequence[str]
) -> tuple[np.ndarray, list[str], list[str]]:
    """Word-level attention and word labels from subword attention and pieces."""
    src_words, src_index = group_pieces(src_pieces)
    tgt_words, tgt_index = group_pieces(tgt_pieces)
    merged = merge_attention(attention, src_index, tgt_index, len(src_words), len(tgt_words))
    return merged, src_words, tgt_words
