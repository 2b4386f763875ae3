"""Learning-rate schedules (``training.schedule``): decay on plateau, or decay to the budget.

Both start with a linear warm-up over ``warmup_steps`` (``w`` below; none when 0)::

    warm(step) = min(1, step / w)

``plateau`` (the default) then holds ``lr_0`` and halves it when validation stops improving::

    lr(step) = max(min_lr, lr_0 · scale) · warm(step)

where ``scale`` is multiplied by ``plateau_factor`` whenever the validation loss has not
improved for ``plateau_patience`` validations.

``cosine`` and ``linear`` spend the budget instead: they know where training ends, so the
learning rate reaches ``min_lr`` exactly there rather than wherever the clock happens to stop.
Progress ``p`` is the larger of the shares of the two limits used so far::

    p = max(elapsed / (60 · max_minutes), step / max_steps)        (clipped to [0, 1];
                                                                     no time term without
                                                                     max_minutes)
    cosine:  lr = warm(step) · (min_lr + (lr_0 - min_lr) · (1 + cos(π p)) / 2)
    linear:  lr = warm(step) · (min_lr + (lr_0 - min_lr) · (1 - p))

``elapsed`` is the measured wall clock of the run (training and validation), so a slower or
busier machine decays in fewer steps and a resumed run carries on along the same curve: the
plan is a function of the checkpointed step and elapsed time, nothing else.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from softalign.config import TrainingConfig


def warm_up(step: int, warmup_steps: int) -> float:
    return min(1.0, step / warmup_steps) if warmup_steps else 1.0


@dataclass
class PlateauSchedule:
    base_lr: float
    warmup_steps: int
    factor: float
    patience: int
    min_lr: float
    scale: float = 1.0
    best_loss: float = float("inf")
    bad_validations: int = 0

    @classmethod
    def from_config(cls, config: TrainingConfig) -> PlateauSchedule:
        return cls(
            config.lr,
            config.warmup_steps,
            config.plateau_factor,
            config.plateau_patience,
            config.min_lr,
        )

    def lr(self, step: int, elapsed_seconds: float = 0.0) -> float:
        return max(self.min_lr, self.base_lr * self.scale) * warm_up(step, self.warmup_steps)

    def on_validation(self, loss: float) -> None:
        if loss < self.best_loss:
            self.best_loss, self.bad_validations = loss, 0
            return
        self.bad_validations += 1
        if self.bad_validations > self.patience:
            self.scale *= self.factor
            self.bad_validations = 0

    def state_dict(self) -> dict[str, Any]:
        state = asdict(self)
        state["best_loss"] = None if state["best_loss"] == float("inf") else state["best_loss"]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scale = state.get("scale", 1.0)
        best = state.get("best_loss")
        self.best_loss = float("inf") if best is None else best
        self.bad_validations = state.get("bad_validations", 0)


@dataclass
class BudgetSchedule:
    """Warm-up, then ``shape`` (cosine or linear) from ``base_lr`` down to ``min_lr`` at the
    end of the budget: ``max_steps`` steps or ``max_minutes`` of wall clock, whichever the
    run reaches first."""

    shape: str
    base_lr: float
    warmup_steps: int
    min_lr: float
    max_steps: int
    max_minutes: float

    @classmethod
    def from_config(cls, config: TrainingConfig) -> BudgetSchedule:
        return cls(
            config.schedule,
            config.lr,
            config.warmup_steps,
            config.min_lr,
            config.max_steps,
            config.max_minutes,
        )

    def progress(self, step: int, elapsed_seconds: float) -> float:
        """The share of the budget used, in [0, 1]."""
        by_time = elapsed_seconds / (60 * self.max_minutes) if self.max_minutes else 0.0
        return min(1.0, max(by_time, step / self.max_steps))

    def lr(self, step: int, elapsed_seconds: float = 0.0) -> float:
        p = self.progress(step, elapsed_seconds)
        left = (1 + math.cos(math.pi * p)) / 2 if self.shape == "cosine" else 1 - p
        high = max(self.base_lr, self.min_lr)
        return (self.min_lr + (high - self.min_lr) * left) * warm_up(step, self.warmup_steps)

    def on_validation(self, loss: float) -> None:
        """The plan does not depend on validation."""

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)  # written for the record: the plan is rebuilt from the config

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore: lr follows from the step and elapsed time in the checkpoint."""


Schedule = PlateauSchedule | BudgetSchedule


def build_schedule(config: TrainingConfig) -> Schedule:
    if config.schedule == "plateau":
        return PlateauSchedule.from_config(config)
    return BudgetSchedule.from_config(config)
