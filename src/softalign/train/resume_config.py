"""What a resumed run may change in its configuration, and what it may not.

A checkpoint stores the whole configuration it was trained with (``state.json``'s
``config``). On resume three configurations meet: the checkpoint's, ``RUN/config.yaml``'s,
and the one asked for (``config.yaml`` plus ``--set`` / ``--data-dir`` / ``--device``).

- **Frozen keys** (``data.*``, ``model.*``, and the training keys that fix the data order:
  ``training.seed``, ``training.batch_tokens``, ``training.accumulate``) may never change: the
  weights, vocabularies and data position were made with them. A change, by ``--set`` or by
  editing ``config.yaml``, is refused naming the keys.
- **Changeable keys** (every other ``training.*`` key, e.g. ``training.lr``,
  ``training.max_steps``, ``training.clip_norm``, and all of ``decoding.*``) may change, but
  only by ``--set`` on resume: the change is logged, saved into a checkpoint and written back
  (atomically) to ``config.yaml``, so the run directory always describes what was trained. A
  hand edit of one in ``config.yaml`` is refused, naming the ``--set`` that makes it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from softalign.config import RunConfig
from softalign.errors import ConfigError

DATA_ORDER_KEYS = ("training.seed", "training.batch_tokens", "training.accumulate")


def changeable(key: str) -> bool:
    """True for a key that ``--set`` may change on resume (see the module doc)."""
    if key in DATA_ORDER_KEYS:
        return False
    return key.startswith(("training.", "decoding."))


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def differing(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted keys present in both flat configs with different values, in order."""
    return [key for key in new if key in old and old[key] != new[key]]


@dataclass(frozen=True)
class ResumeRequest:
    """``RUN/config.yaml`` as saved, and the keys given with ``--set`` (and friends)."""

    config_path: Path
    saved: RunConfig
    set_keys: frozenset[str]


def check(request: ResumeRequest, wanted: RunConfig, trained: dict[str, Any] | None) -> list[str]:
    """Refuse a forbidden change (:class:`ConfigError`); return the keys whose value changes
    from the checkpoint's (``trained``, the config stored in it; None in older checkpoints).
    """
    saved, new = flatten(request.saved.to_dict()), flatten(wanted.to_dict())
    by_set = differing(saved, new)
    frozen = [key for key in by_set if not changeable(key)]
    if frozen:
        raise ConfigError(
            f"resume cannot change data, vocabulary or model keys: {', '.join(frozen)} "
            "(start a new run instead)"
        )
    if trained is None:
        return by_set
    trained = flatten(trained)
    edited = differing(trained, saved)
    frozen = [key for key in edited if not changeable(key)]
    if frozen:
        raise ConfigError(
            f"{request.config_path}: {', '.join(frozen)} "
            f"{'differs' if len(frozen) == 1 else 'differ'} from what the checkpoint was "
            "trained with (data, vocabulary and model keys cannot change on resume)"
        )
    by_hand = [key for key in edited if key not in request.set_keys]
    if by_hand:
        sets = " ".join(f"--set {key}={_show(saved[key])}" for key in by_hand)
        raise ConfigError(
            f"{request.config_path}: {', '.join(by_hand)} edited by hand; restore "
            f"{', '.join(_show(trained[key]) for key in by_hand)} and resume with {sets}"
        )
    return differing(trained, new)


def describe(keys: list[str], before: dict[str, Any], after: RunConfig) -> str:
    """``training.lr 0.001 -> 0.0005, ...`` for the log."""
    old, new = flatten(before), flatten(after.to_dict())
    return ", ".join(f"{key} {_show(old.get(key))} -> {_show(new[key])}" for key in keys)


def _show(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def write_config_atomic(config: RunConfig, path: Path) -> None:
    """Replace ``path`` with the config's YAML via a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(yaml.safe_dump(config.to_dict(), sort_keys=False))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write ({exc.strerror or exc})") from None


def set_keys(overrides: list[str]) -> frozenset[str]:
    """The dotted keys of ``key=value`` overrides."""
    return frozenset(item.partition("=")[0].strip() for item in overrides)
