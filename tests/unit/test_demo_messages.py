"""The demo's messages: its plan, the step rate it measures and predicts from, what to do next."""

from __future__ import annotations

import shlex
from pathlib import Path

from softalign import cli
from softalign.config import from_dict
from softalign.demo import DEMO_CONFIG
from softalign.demo_messages import STUDY_COMMAND, RateProbe, describe_plan, next_steps
from softalign.train.session import TrainState


def feed(probe: RateProbe, seconds_per_step: list[float], first_step: int = 0) -> None:
    """Call ``probe`` as the loop would, one completed step at a time."""
    state = TrainState(step=first_step, elapsed_seconds=60.0 * first_step)
    for seconds in seconds_per_step:
        state.step += 1
        state.elapsed_seconds += seconds
        probe(state)


def test_probe_predicts_steps_of_the_budget_from_the_measured_rate() -> None:
    said: list[str] = []
    probe = RateProbe(600.0, warmup=2, min_steps=5, min_seconds=4.0, emit=said.append)
    feed(probe, [5.0, 3.0] + [0.5] * 20)  # slow warm-up steps, then 2 steps a second
    assert len(said) == 1  # printed once, not at every step
    # measured over steps 3-10 (8 steps, 4.0 s): 2 steps/s; 10 steps and 12 s done so far
    assert "measured 2.00 steps/s (0.50 s a step) over steps 3-10" in said[0]
    assert f"expect about {10 + 2 * (600 - 12):,} steps in the 10-minute budget" in said[0]


def test_probe_predicts_the_step_cap_when_it_comes_before_the_clock() -> None:
    said: list[str] = []
    probe = RateProbe(
        600.0, max_steps=150, warmup=2, min_steps=5, min_seconds=4.0, emit=said.append
    )
    feed(probe, [5.0, 3.0] + [0.5] * 20)  # 2 steps a second: 150 steps long before 10 minutes
    # step 10 at 12 s, 140 steps more at 2 a second: 82 s in all
    assert "expect 150 steps (the step cap) in about 1.4 of the 10 budget minutes" in said[0]
    said.clear()
    roomy = RateProbe(
        600.0, max_steps=10**6, warmup=2, min_steps=5, min_seconds=4.0, emit=said.append
    )
    feed(roomy, [5.0, 3.0] + [0.5] * 20)
    assert f"expect about {10 + 2 * (600 - 12):,} steps in the 10-minute budget" in said[0]


def test_probe_leaves_the_slow_first_steps_out_of_the_rate() -> None:
    said: list[str] = []
    probe = RateProbe(600.0, warmup=1, min_steps=4, min_seconds=1.0, emit=said.append)
    feed(probe, [30.0] + [1.0] * 10)
    assert "measured 1.00 steps/s" in said[0]


def test_probe_waits_for_enough_steps_and_seconds() -> None:
    said: list[str] = []
    probe = RateProbe(600.0, warmup=1, min_steps=5, min_seconds=15.0, emit=said.append)
    feed(probe, [1.0] * 10)  # 9 measured steps but only 9 s
    assert said == []
    feed(probe, [1.0] * 10, first_step=10)
    assert len(said) == 1


def test_probe_of_a_continued_run_counts_its_earlier_minutes() -> None:
    said: list[str] = []
    # 20 minutes: 10 spent before (step 100 at 600 s), 10 more now at 1 step/s
    probe = RateProbe(1200.0, warmup=1, min_steps=5, min_seconds=5.0, emit=said.append)
    state = TrainState(step=100, elapsed_seconds=600.0)
    for _ in range(10):
        state.step += 1
        state.elapsed_seconds += 1.0
        probe(state)
    assert "over steps 102-106" in said[0]
    assert f"expect about {106 + (1200 - 606):,} steps in the 20-minute budget" in said[0]


def test_a_short_budget_shortens_the_measurement_to_a_tenth_of_it() -> None:
    said: list[str] = []
    probe = RateProbe(3.0, warmup=1, min_steps=5, min_seconds=15.0, emit=said.append)
    state = TrainState()
    for _ in range(8):
        state.step += 1
        state.elapsed_seconds += 0.05
        probe(state)
        if state.step == 6:  # 5 measured steps, 0.25 s: under a tenth of the budget
            assert said == []
    assert len(said) == 1 and "measured 20.00 steps/s (0.05 s a step) over steps 2-" in said[0]


def test_plan_names_the_corpus_the_model_and_the_budget() -> None:
    config = from_dict(DEMO_CONFIG)
    plan = describe_plan(config, 10.0, 300, 5, None)
    assert "bible:en-fr (en -> fr)" in plan
    assert "GRU encoder 1x256 bidirectional, decoder 1x512, additive attention" in plan
    assert "4,000 unigram subwords per side" in plan
    assert "train a new model for 10 minutes of training time" in plan
    assert "translate 300 held-out sentences (beam 5)" in plan
    later = describe_plan(config, 5.0, 0, 5, 12.34)
    assert "continue the run (12.3 training minutes so far) for 5 minutes" in later
    assert "every held-out sentence" in later


def test_next_steps_are_commands_that_parse(tmp_path: Path) -> None:
    run_dir = tmp_path / "demo"
    text = next_steps(run_dir, run_dir / "attention.png")
    assert f"{run_dir / 'attention.png'}" in text
    assert f"softalign serve {run_dir}" in text
    assert STUDY_COMMAND in text
    parser = cli.build_parser()
    commands = [
        line.split("softalign ", 1)[1] for line in text.splitlines() if "softalign " in line
    ]
    commands = [c for c in commands if not c.startswith("command")]
    assert len(commands) == 4  # serve, translate, demo, study
    for command in commands:
        parser.parse_args(shlex.split(command))  # exits (SystemExit) on an unknown flag


def test_next_steps_without_a_heatmap_leave_it_out(tmp_path: Path) -> None:
    assert "attention of a held-out sentence" not in next_steps(tmp_path, None)
