"""Run a study: train every variant under the same budget, measure each, write the report.

A rerun into the same directory skips what is done: a variant with a ``study-trained.json``
is not trained again, one with checkpoints but no marker (an interrupted study) resumes from
its latest checkpoint with the same budget, and a variant whose ``study-eval.json`` matches
its latest checkpoint is not re-evaluated.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from softalign import checkpoint as ckpt
from softalign.data.sources import load_splits
from softalign.errors import SoftalignError
from softalign.study.measure import default_edges, heatmap_index, measure_variant
from softalign.study.plan import StudyPlan, check_same_study, run_dir, save_plan
from softalign.study.report import EVAL_FILE, build_report
from softalign.train.loop import resume, train

log = logging.getLogger("softalign.study")
TRAINED_FILE = "study-trained.json"


def test_set(plan: StudyPlan) -> tuple[list[str], list[str]]:
    """The config's test split (a corpus source's, or data.test_src/test_tgt), sampled
    evenly down to ``plan.test_size`` sentences when that is set."""
    splits = load_splits(plan.base_config().data, ("test",))
    if "test" not in splits:
        raise SoftalignError(
            "study: the config names no test set (data.test_src and data.test_tgt, "
            "or a corpus source such as bible:en-fr)"
        )
    test = splits["test"]
    kept = [i for i in range(len(test)) if test.src[i].strip() and test.tgt[i].strip()]
    if plan.test_size and plan.test_size < len(kept):
        step = len(kept) / plan.test_size
        kept = [kept[int(k * step)] for k in range(plan.test_size)]
    return [test.src[i] for i in kept], [test.tgt[i] for i in kept]


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def train_variant(
    plan: StudyPlan, study_dir: Path, variant: str, progress: bool, backend: str = "auto"
) -> None:
    """Train (or resume, or skip) one variant; mark it trained when its budget is spent."""
    directory = run_dir(study_dir, variant)
    if (directory / TRAINED_FILE).is_file():
        print(f"study: {variant}: already trained, skipped")
        return
    if ckpt.list_checkpoints(directory):
        print(f"study: {variant}: resuming the interrupted training")
        state = resume(directory, overrides=[f"training.backend={backend}"], progress=progress)
    else:
        print(f"study: {variant}: training for {plan.budget_label}")
        config = plan.variant_config(variant).replace(**{"training.backend": backend})
        state = train(config, directory, progress=progress)
    if state.stopped.startswith("interrupted"):
        raise SoftalignError(
            f"study: {variant} {state.stopped}; run the same command again to resume"
        )
    write_atomically(
        directory / TRAINED_FILE,
        json.dumps({"step": state.step, "stopped": state.stopped}) + "\n",
    )


def needs_measuring(study_dir: Path, variant: str) -> bool:
    directory = run_dir(study_dir, variant)
    path = directory / EVAL_FILE
    if not path.is_file():
        return True
    latest = ckpt.latest_checkpoint(directory)
    return latest is None or json.loads(path.read_text("utf-8")).get("checkpoint") != latest.name


def run_study(
    plan: StudyPlan, study_dir: Path, *, progress: bool = True, backend: str = "auto"
) -> Path:
    """Train and measure every variant of ``plan`` in ``study_dir``, the models computed by
    ``backend`` (see ``softalign/backend.py``); return the report."""
    check_same_study(plan, study_dir)
    save_plan(plan, study_dir)
    sources, references = test_set(plan)
    write_atomically(study_dir / "test.src", "".join(s + "\n" for s in sources))
    write_atomically(study_dir / "test.ref", "".join(r + "\n" for r in references))
    edges = plan.buckets or default_edges(sources)
    shown = heatmap_index(sources)
    for number, variant in enumerate(plan.variants, 1):
        print(f"study: variant {number}/{len(plan.variants)}: {variant}")
        train_variant(plan, study_dir, variant, progress, backend)
        if not needs_measuring(study_dir, variant):
            print(f"study: {variant}: already evaluated, skipped")
            continue
        print(f"study: {variant}: translating {len(sources)} test sentences (beam {plan.beam})")
        result = measure_variant(
            variant,
            run_dir(study_dir, variant),
            sources,
            references,
            beam=plan.beam,
            edges=edges,
            heatmap_at=shown,
            exact=plan.is_synthetic,
            backend=backend,
        )
        write_atomically(run_dir(study_dir, variant) / EVAL_FILE, json.dumps(result) + "\n")
        print(f"study: {variant}: BLEU {result['bleu']:.2f}, chrF {result['chrf']:.2f}")
    return build_report(study_dir)
