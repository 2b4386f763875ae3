"""What a study is: one base config, the attention variants to compare, one budget.

Every variant is the base config with ``model.attention`` replaced and the same data, size,
seed and budget; a time budget sets ``training.max_minutes`` (and lifts the step limit), a
step budget sets ``training.max_steps`` (and lifts the time limit). The plan is written to
``DIR/study.json`` so that a rerun can check it is continuing the same study and the report
can be rebuilt from ``DIR`` alone.

Layout of a study directory::

    DIR/study.json              the plan (base config, variants, budget, evaluation settings)
    DIR/runs/VARIANT/           an ordinary run directory per variant (train, translate, ...)
    DIR/runs/VARIANT/study-eval.json   its evaluation on the test set
    DIR/report.html, DIR/results.json, DIR/*.png   the report
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from softalign.config import ATTENTION_TYPES, RunConfig, from_dict
from softalign.errors import SoftalignError

UNLIMITED_STEPS = 1_000_000_000


@dataclass(frozen=True)
class StudyPlan:
    config: dict[str, Any]  # the base run config, as a plain dict
    variants: tuple[str, ...]  # attention types, "none" = the fixed-vector baseline
    budget_minutes: float = 0.0  # per variant; exactly one of the two budgets is set
    budget_steps: int = 0
    beam: int = 5
    test_size: int = 0  # 0 = the whole test split, else an evenly spaced sample
    buckets: tuple[int, ...] = ()  # source-length bucket edges (words); () = by test lengths
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes (command line)

    def __post_init__(self) -> None:
        if not self.variants:
            raise SoftalignError("study: give at least one variant (--variants)")
        unknown = [v for v in self.variants if v not in ATTENTION_TYPES]
        if unknown:
            raise SoftalignError(
                f"study: unknown variant '{unknown[0]}' (known: {', '.join(ATTENTION_TYPES)})"
            )
        if len(set(self.variants)) != len(self.variants):
            raise SoftalignError("study: a variant is named twice")
        if (self.budget_minutes > 0) == (self.budget_steps > 0):
            raise SoftalignError("study: give one budget, --budget-minutes or --budget-steps")
        if self.beam < 1 or self.test_size < 0:
            raise SoftalignError("study: --beam must be >= 1 and --test-size >= 0")

    @property
    def is_synthetic(self) -> bool:
        """A generated task: outputs are exactly right or wrong, so accuracy is reported."""
        return str(self.config["data"].get("corpus", "")).startswith("synthetic:")

    @property
    def budget_label(self) -> str:
        if self.budget_minutes:
            return f"{self.budget_minutes:g} minutes"
        return f"{self.budget_steps} steps"

    def base_config(self) -> RunConfig:
        return from_dict(self.config)

    def variant_config(self, variant: str) -> RunConfig:
        """The base config with this variant's attention and the study's budget."""
        if self.budget_minutes:
            budget = {"training.max_minutes": self.budget_minutes}
            budget["training.max_steps"] = UNLIMITED_STEPS
        else:
            budget = {"training.max_steps": self.budget_steps, "training.max_minutes": 0.0}
        return self.base_config().replace(**{"model.attention": variant, **budget})

    def comparable(self) -> dict[str, Any]:
        """What must not change between two runs of the same study directory."""
        keys = ("config", "budget_minutes", "budget_steps", "beam", "test_size", "buckets")
        return {key: json.loads(json.dumps(asdict(self)[key])) for key in keys}


def run_dir(study_dir: Path, variant: str) -> Path:
    return study_dir / "runs" / variant


def save_plan(plan: StudyPlan, study_dir: Path) -> None:
    study_dir.mkdir(parents=True, exist_ok=True)
    path = study_dir / "study.json"
    tmp = path.with_name(".study.json.tmp")
    tmp.write_text(json.dumps(asdict(plan), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def load_plan(study_dir: Path) -> StudyPlan:
    path = study_dir / "study.json"
    if not path.is_file():
        raise SoftalignError(f"{study_dir}: not a study directory (no study.json)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        raw["variants"] = tuple(raw["variants"])
        raw["buckets"] = tuple(raw["buckets"])
        return StudyPlan(**raw)
    except (ValueError, KeyError, TypeError) as exc:
        raise SoftalignError(f"{path}: not a valid study plan ({exc})") from None


def check_same_study(new: StudyPlan, study_dir: Path) -> None:
    """A rerun into an existing study directory must keep everything but the variants."""
    if not (study_dir / "study.json").is_file():
        return
    old = load_plan(study_dir).comparable()
    old["config"] = with_defaults(old["config"])  # keys added to softalign since then
    for key, value in new.comparable().items():
        if old[key] != value:
            where = key if key != "config" else f"config ({first_difference(old[key], value)})"
            raise SoftalignError(
                f"{study_dir}: holds a study with a different {where}; "
                "use another output directory to start a new study"
            )


def with_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """A stored config with the defaults of keys it predates filled in (as JSON values)."""
    try:
        return json.loads(json.dumps(asdict(from_dict(config))))
    except SoftalignError:
        return config


def first_difference(old: Any, new: Any, prefix: str = "") -> str:
    """The dotted key of the first difference between two nested dicts."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                return first_difference(old.get(key), new.get(key), f"{prefix}{key}.")
    return prefix.rstrip(".") or "value"
