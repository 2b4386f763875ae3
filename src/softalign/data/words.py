"""A word vocabulary for pre-segmented text (``data.vocab.type: none``).

The text is already split into tokens (words, or subwords from an outside segmenter such as
``subword-nmt``): a token is what lies between spaces, and the vocabulary is the ``size``
most frequent training tokens (ties by first sight) after the four specials of
:mod:`softalign.data.vocab`. Output is the tokens joined by single spaces, still segmented.
The file ``vocab.*.txt`` holds one token per line, line k (from 0) being id k.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from softalign.data.vocab import EOS_ID, SPECIAL_PIECES, UNK_ID
from softalign.errors import CheckpointError


class WordVocab:
    """Whitespace tokens <-> ids, with the interface of ``SubwordVocab``."""

    def __init__(self, tokens: list[str], path: Path) -> None:
        self.tokens = tokens
        self.ids = {token: i for i, token in enumerate(tokens)}
        self.path = path

    @classmethod
    def build(cls, sentences: Iterable[str], path: Path, size: int) -> WordVocab:
        """Count the tokens of ``sentences``, keep the ``size - 4`` most frequent, write
        ``path``."""
        counts = Counter(token for sentence in sentences for token in sentence.split())
        for special in SPECIAL_PIECES:
            counts.pop(special, None)
        kept = [token for token, _ in counts.most_common(max(0, size - len(SPECIAL_PIECES)))]
        tokens = list(SPECIAL_PIECES) + kept
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")  # written whole, then renamed into place
        tmp.write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
        os.replace(tmp, path)
        return cls(tokens, path)

    @classmethod
    def load(cls, path: Path) -> WordVocab:
        if not path.is_file():
            raise CheckpointError(f"{path}: word vocabulary not found")
        try:
            tokens = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise CheckpointError(f"{path}: not UTF-8 text") from None
        if tuple(tokens[: len(SPECIAL_PIECES)]) != SPECIAL_PIECES:
            raise CheckpointError(f"{path}: must start with {', '.join(SPECIAL_PIECES)}")
        if len(set(tokens)) != len(tokens) or any(not t or t.split() != [t] for t in tokens):
            raise CheckpointError(f"{path}: one distinct token (no spaces) per line expected")
        return cls(tokens, path)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Ids of each text's whitespace tokens (unknown ones are UNK; no BOS/EOS)."""
        ids = self.ids
        return [[ids.get(token, UNK_ID) for token in text.split()] for text in texts]

    def decode(self, ids: list[list[int]]) -> list[str]:
        """The tokens of each id sequence joined by spaces (special ids are dropped)."""
        return [" ".join(self.tokens[i] for i in seq if i > EOS_ID) for seq in ids]

    def pieces(self, ids: list[int]) -> list[str]:
        """The tokens of ``ids`` (for attention labels)."""
        return [self.tokens[i] for i in ids]
