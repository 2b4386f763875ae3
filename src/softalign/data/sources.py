"""Built-in corpus sources and the config-driven loading of all splits.

A source is named ``scheme:argument`` (``synthetic:reverse?min=5&max=40``); a plain dict maps
each scheme to a loader returning ``{"train", "valid", "test"}`` splits. Without a source, the
splits come from the ``data.*_src``/``data.*_tgt`` files, relative to ``data.dir``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from softalign.config import DataConfig
from softalign.data.bible import load_bible
from softalign.data.corpus import ParallelText, read_parallel
from softalign.data.synthetic import load_synthetic
from softalign.errors import DataError

CORPUS_SOURCES: dict[str, Callable[[str], dict[str, ParallelText]]] = {
    "synthetic": load_synthetic,
    "bible": load_bible,
}


def load_source(spec: str) -> dict[str, ParallelText]:
    """All splits of a ``scheme:argument`` source."""
    scheme, sep, argument = spec.partition(":")
    if not sep:
        raise DataError(f"corpus '{spec}': expected scheme:argument, e.g. synthetic:reverse")
    if scheme not in CORPUS_SOURCES:
        known = ", ".join(sorted(CORPUS_SOURCES))
        raise DataError(f"corpus '{spec}': unknown source '{scheme}' (known: {known})")
    return CORPUS_SOURCES[scheme](argument)


def resolve(data: DataConfig, path: str) -> Path:
    """A data path, relative to ``data.dir`` unless absolute."""
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else Path(data.dir).expanduser() / candidate


def load_splits(
    data: DataConfig, splits: tuple[str, ...] = ("train", "valid")
) -> dict[str, ParallelText]:
    """Read the requested splits named by the config (a source, or file pairs)."""
    if data.corpus:
        available = load_source(data.corpus)
        return {name: available[name] for name in splits if name in available}
    result = {}
    for name in splits:
        src, tgt = getattr(data, f"{name}_src"), getattr(data, f"{name}_tgt")
        if src and tgt:
            result[name] = read_parallel(resolve(data, src), resolve(data, tgt))
    return result
