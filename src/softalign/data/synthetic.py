"""Generated corpora whose correct output is known exactly.

``synthetic:TASK?min=5&max=40&n=20000&seed=1`` yields train/valid/test splits of random
sequences over a small word vocabulary:

- ``copy``: the target is the source.
- ``reverse``: the target is the source reversed, so output position i depends on input
  position n-1-i -- for long inputs the first output word needs the last input word.
- ``swap``: the target is the source with its two halves exchanged, so every output word sits
  about n/2 positions away from the input word it copies (a long-range association).

Lengths are drawn uniformly from [min, max]; the same arguments always give the same corpus.
"""

from __future__ import annotations

import random
from urllib.parse import parse_qsl

from softalign.data.corpus import ParallelText
from softalign.errors import DataError

WORDS = [f"{c}{v}" for c in "bdfgklmnprst" for v in "aeiou"][:40]

TASKS = {
    "copy": lambda tokens: list(tokens),
    "reverse": lambda tokens: tokens[::-1],
    "swap": lambda tokens: tokens[len(tokens) // 2 :] + tokens[: len(tokens) // 2],
}

DEFAULTS = {"min": 5, "max": 40, "n": 20000, "seed": 1, "vocab": len(WORDS)}


def parse_spec(argument: str) -> tuple[str, dict[str, int]]:
    """``"reverse?min=5&max=40"`` -> ``("reverse", {"min": 5, "max": 40, ...})``."""
    task, _, query = argument.partition("?")
    if task not in TASKS:
        raise DataError(f"synthetic:{argument}: unknown task '{task}' (known: {', '.join(TASKS)})")
    params = dict(DEFAULTS)
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in DEFAULTS:
            raise DataError(f"synthetic:{argument}: unknown parameter '{key}'")
        try:
            params[key] = int(value)
        except ValueError:
            raise DataError(f"synthetic:{argument}: '{key}' must be an integer") from None
    if not 1 <= params["min"] <= params["max"]:
        raise DataError(f"synthetic:{argument}: need 1 <= min <= max")
    if not 2 <= params["vocab"] <= len(WORDS):
        raise DataError(f"synthetic:{argument}: vocab must be in [2, {len(WORDS)}]")
    if params["n"] < 1:
        raise DataError(f"synthetic:{argument}: n must be positive")
    return task, params


def generate(task: str, n: int, min_len: int, max_len: int, vocab: int, seed: int) -> ParallelText:
    rng = random.Random(seed)
    words = WORDS[:vocab]
    src, tgt = [], []
    for _ in range(n):
        tokens = [rng.choice(words) for _ in range(rng.randint(min_len, max_len))]
        src.append(" ".join(tokens))
        tgt.append(" ".join(TASKS[task](tokens)))
    return ParallelText(src, tgt)


def load_synthetic(argument: str) -> dict[str, ParallelText]:
    task, p = parse_spec(argument)
    held_out = max(100, p["n"] // 20)
    make = lambda n, offset: generate(  # noqa: E731
        task, n, p["min"], p["max"], p["vocab"], seed=p["seed"] * 1000 + offset
    )
    return {"train": make(p["n"], 0), "valid": make(held_out, 1), "test": make(held_out, 2)}
