"""What ``softalign demo`` tells its user: the plan, the expected steps, and what to do next.

- :func:`describe_plan`, printed at start: the corpus, the model, the budget and the evaluation;
- :class:`RateProbe`, called after every training step: once the first steps are measured it
  prints the step rate and, from it, the steps and the end time to expect from the budget on
  *this* machine (the budget is training time, so the steps it buys depend on the CPU);
- :func:`next_steps`, printed at the end: the heatmap, one ``softalign serve`` line to explore
  the model in the browser, and the attention study's command.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from softalign.config import RunConfig
from softalign.train.session import TrainState

STUDY_COMMAND = (
    "softalign study configs/study-bible-en-fr.yaml --variants none,additive "
    "--budget-minutes 10 -o runs/study-bible"
)


def describe_model(config: RunConfig) -> str:
    """One line for the model of ``config``, e.g. ``GRU encoder 1x256 bidirectional, ...``."""
    m, v = config.model, config.data.vocab
    direction = "bidirectional" if m.bidirectional else "unidirectional"
    vocab = f"{v.size:,} {v.type} subwords" + (" (joint)" if v.joint else " per side")
    return (
        f"{m.rnn_type.upper()} encoder {m.encoder_layers}x{m.encoder_hidden} {direction}, "
        f"decoder {m.decoder_layers}x{m.decoder_hidden}, {m.attention} attention, "
        f"embeddings {m.embedding_size}, {vocab}"
    )


def describe_plan(
    config: RunConfig, minutes: float, test_size: int, beam: int, spent_minutes: float | None
) -> str:
    """The lines printed before training: what the demo will do, and for how long."""
    d = config.data
    sample = f"{test_size} held-out sentences" if test_size else "every held-out sentence"
    start = (
        f"continue the run ({spent_minutes:.1f} training minutes so far)"
        if spent_minutes is not None
        else "train a new model"
    )
    return "\n".join(
        [
            "softalign demo: translation with soft attention, trained on this machine",
            f"  corpus:   {d.corpus} ({d.src_lang} -> {d.tgt_lang}), test on books never seen "
            "in training",
            f"  model:    {describe_model(config)}",
            f"  budget:   {start} for {minutes:g} minutes of training time "
            f"(batches of {config.training.batch_tokens:,} target tokens)",
            f"  then:     translate {sample} (beam {beam}), BLEU and chrF, attention heatmap",
            "  the steps this budget buys depend on the machine: measured after the first steps",
        ]
    )


class RateProbe:
    """Measures the training step rate over the first steps and prints what it predicts.

    The first ``warmup`` steps (at least one) are left out: they compile kernels and grow
    the allocator. Once ``min_steps`` more steps and ``min_seconds`` of training time (at most a
    tenth of the budget) are measured, it prints once::

        measured 1.84 steps/s (0.54 s a step) over steps 3-30: expect about 1,100 steps
        in the 10-minute budget; training ends at about 12:41 (local time), then the
        evaluation

    ``budget_seconds`` is the run's whole training budget (``training.max_minutes`` × 60,
    which for a continued run includes the minutes already spent). ``max_steps``, when the run
    has a step cap (``training.max_steps``) that the rate says comes first, is what it predicts
    instead: ``expect 150 steps (the step cap) in about 0.9 of the 1 budget minutes``.
    """

    def __init__(
        self,
        budget_seconds: float,
        *,
        max_steps: int | None = None,
        warmup: int = 2,
        min_steps: int = 5,
        min_seconds: float = 15.0,
        emit: Callable[[str], None] = tqdm.write,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.budget_seconds = budget_seconds
        self.max_steps = max_steps
        self.warmup = warmup
        self.min_steps = min_steps
        self.min_seconds = min(min_seconds, 0.1 * budget_seconds)
        self.emit = emit
        self.clock = clock
        self.seen = 0
        self.origin: tuple[int, float] | None = None  # (step, training seconds) after warm-up
        self.message = ""

    def __call__(self, state: TrainState) -> None:
        if self.message:
            return
        self.seen += 1
        if self.seen <= self.warmup or self.origin is None:
            self.origin = (state.step, state.elapsed_seconds)
            return
        steps = state.step - self.origin[0]
        seconds = state.elapsed_seconds - self.origin[1]
        if steps < self.min_steps or seconds < self.min_seconds or seconds <= 0:
            return
        self.message = self.predict(state, steps / seconds)
        self.emit(self.message)

    def predict(self, state: TrainState, rate: float) -> str:
        """The message for a measured ``rate`` (steps per second of training time)."""
        left = max(0.0, self.budget_seconds - state.elapsed_seconds)
        expected = state.step + round(rate * left)
        measured = (
            f"measured {rate:.2f} steps/s ({1 / rate:.2f} s a step) over steps "
            f"{self.origin[0] + 1}-{state.step}: "
        )
        if self.max_steps is not None and self.max_steps < expected:
            left = max(0, self.max_steps - state.step) / rate
            outlook = (
                f"expect {self.max_steps:,} steps (the step cap) in about "
                f"{(state.elapsed_seconds + left) / 60:.2g} of the "
                f"{self.budget_seconds / 60:.3g} budget minutes"
            )
        else:
            minutes = self.budget_seconds / 60
            outlook = f"expect about {expected:,} steps in the {minutes:.3g}-minute budget"
        ends = time.strftime("%H:%M", time.localtime(self.clock() + left))
        return (
            f"{measured}{outlook}; training ends at about {ends} (local time), then the evaluation"
        )


def next_steps(run_dir: Path, heatmap: Path | None) -> str:
    """The closing lines: where the heatmap is and which commands to try next."""
    lines = ["", "what next:"]
    if heatmap is not None:
        lines.append(f"  the attention of a held-out sentence:  {heatmap}")
    lines += [
        f"  explore the model in the browser:      softalign serve {run_dir}",
        "      then open http://127.0.0.1:8000/ (type a sentence, hover a word)",
        f"  translate your own text:               softalign translate {run_dir} -i FILE",
        f"  train the same model longer:           softalign demo -o {run_dir}",
        "  attention against a fixed context vector, same budget (about 25 minutes):",
        f"      {STUDY_COMMAND}",
    ]
    if shutil.which("softalign") is None:
        lines.append("  (the softalign command is in .venv/bin: source .venv/bin/activate)")
    return "\n".join(lines)
