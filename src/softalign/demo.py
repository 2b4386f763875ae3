"""``softalign demo``: train an attention model on the Bible (English -> French) in minutes.

The demo trains the model of :data:`DEMO_CONFIG` on ``bible:en-fr`` (World English Bible ->
Louis Segond 1910, both public domain) for a wall-clock budget, then translates an evenly
spaced sample of held-out verses (books never seen in training) with beam search and reports

- BLEU and chrF (sacreBLEU) on the sample, and a few source / reference / output triples;
- ``attention.png``: the attention weights of one held-out verse (target x source subwords);
- ``report.md``, ``test.src``/``test.ref``/``test.hyp`` in the run directory.

What it prints comes from :mod:`softalign.demo_messages`: its plan at start, the measured step
rate and the steps to expect from the budget on this machine after the first steps, and at the
end what to try next (the heatmap, ``softalign serve``, the attention study).

It trains with the schedule and the vocabularies of the budget recipe (docs/recipes.md): a
warm-up, then a cosine decay that ends at the deadline; 4,000 unigram pieces per side. It does not
average the last checkpoints as the Multi30k recipe does: measured on the demo's budget, the
average chose K = 1 and the checkpoints every 50 steps cost 4% of the steps
(benchmarks/demo_recipe.py, benchmarks/RESULTS.md). It evaluates the latest checkpoint, or
``RUN/averaged`` when ``--set training.average_last=N`` made one of it.

Running it again on the same directory reuses everything there (data, vocabularies, model)
and *continues* training for another ``minutes`` before evaluating again; pass another
``--output`` for a fresh run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from softalign import checkpoint as ckpt
from softalign.analysis.heatmap import save_attention
from softalign.average import current_average
from softalign.config import RunConfig, from_dict, load_config
from softalign.data.sources import load_source
from softalign.demo_messages import RateProbe, describe_plan, next_steps
from softalign.errors import SoftalignError
from softalign.metrics import Scores, score_corpus
from softalign.train.loop import TrainState, resume, train
from softalign.translator import Translation, Translator

DEMO_CORPUS = "bible:en-fr"

# Sized for a 13-minute budget on 2 CPU cores, AVX2 or better: the learning rate decays to its
# minimum exactly when the budget ends (benchmarks/RESULTS.md: what it reaches).
DEMO_CONFIG: dict[str, Any] = {
    "data": {
        "corpus": DEMO_CORPUS,
        "src_lang": "en",
        "tgt_lang": "fr",
        "max_length": 80,
        "valid_size": 100,
        # the recipe's vocabularies: 4k pieces per side beat one joint 8k model on Multi30k's
        # val and on the Bible's val verses (benchmarks/demo_recipe.py)
        "vocab": {"type": "unigram", "size": 4000, "joint": False},
    },
    "model": {
        "rnn_type": "gru",
        "embedding_size": 256,
        "encoder_hidden": 256,
        "encoder_layers": 1,
        "decoder_hidden": 512,
        "attention": "additive",
        "attention_size": 256,
        "output_size": 256,
        "dropout": 0.1,
    },
    "training": {
        # warm up, then a cosine decay that reaches min_lr when the budget runs out
        "schedule": "cosine",
        "lr": 0.003,
        "warmup_steps": 100,
        "min_lr": 0.00003,
        "batch_tokens": 3000,
        "valid_every": 400,
        "checkpoint_every": 400,
        "valid_bleu": False,
    },
    "decoding": {"beam": 5, "length_penalty": 1.0},
}


@dataclass
class DemoResult:
    run_dir: Path
    scores: Scores
    state: TrainState
    sources: list[str]
    references: list[str]
    hypotheses: list[str]
    heatmap: Path | None  # None when the model has produced no output yet
    seconds: float  # wall clock of the whole demo, set-up and evaluation included


def demo_config(corpus: str, minutes: float, overrides: dict[str, Any] | None) -> RunConfig:
    """:data:`DEMO_CONFIG` on ``corpus`` with a time budget and dotted-key overrides."""
    config = from_dict(DEMO_CONFIG).replace(
        **{"data.corpus": corpus, "training.max_minutes": minutes}
    )
    return config.replace(**(overrides or {}))


def refuse_changes(run_dir: Path, kept: RunConfig, overrides: dict[str, Any]) -> None:
    """A continued run keeps its config: an override that would change it is an error naming
    the key (not silently dropped); one that repeats the run's value is fine."""
    old = kept.to_dict()
    for dotted, value in overrides.items():
        node: Any = old
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node != value:
            raise SoftalignError(
                f"{run_dir}: continues an existing run, whose config is kept; cannot set "
                f"{dotted}={value} (the run has {node}; give a new --output to train with it)"
            )


def minutes_spent(run_dir: Path) -> float | None:
    """Training minutes of the run in ``run_dir`` so far; None when there is no run yet."""
    latest = ckpt.latest_checkpoint(run_dir) if run_dir.is_dir() else None
    if latest is None:
        return None
    return ckpt.read_state(latest)["train"]["elapsed_seconds"] / 60


def train_or_continue(
    run_dir: Path,
    config: RunConfig,
    minutes: float,
    progress: bool,
    spent: float | None = None,
    on_step: Callable[[TrainState], None] | None = None,
) -> TrainState:
    """Train a new run (``spent`` None), or give the existing one, ``spent`` minutes into
    its training, ``minutes`` more (its config is kept)."""
    if spent is None:
        print(f"training on {config.data.corpus} for {minutes:g} minutes into {run_dir}")
        return train(config, run_dir, progress=progress, on_step=on_step)
    print(f"continuing the run in {run_dir} ({spent:.1f} minutes so far) for {minutes:g} more")
    return resume(
        run_dir,
        overrides=[
            f"training.max_minutes={spent + minutes:.4f}",
            f"training.backend={config.training.backend}",
        ],
        progress=progress,
        on_step=on_step,
    )


def held_out_sample(corpus: str, size: int) -> tuple[list[str], list[str]]:
    """An evenly spaced sample of ``size`` test pairs (all of them when size is 0)."""
    test = load_source(corpus)["test"]
    step = max(1, len(test) // size) if size else 1
    indices = list(range(0, len(test), step))[: size or None]
    return [test.src[i] for i in indices], [test.tgt[i] for i in indices]


def weights_to_evaluate(run_dir: Path) -> tuple[Path, Path]:
    """(run directory, checkpoint) the demo scores: the end-of-run average ``RUN/averaged``
    when it averages up to the latest checkpoint, else the latest checkpoint itself (not the
    best-validated: within a short budget the latest is the best)."""
    scored = current_average(run_dir) or run_dir
    return scored, ckpt.latest_checkpoint(scored)


def pick_heatmap_verse(
    sources: list[str], translations: list[Translation], low: int = 10, high: int = 22
) -> int | None:
    """Index of the first source of ``low``..``high`` words with a non-empty output (else
    the first with any output; None when there is none), so the heatmap is readable."""
    drawable = [i for i, t in enumerate(translations) if t.target_tokens]
    if not drawable:
        return None
    for index in drawable:
        if low <= len(sources[index].split()) <= high:
            return index
    return drawable[0]


def draw_heatmap(translation: Translation, output_dir: Path) -> Path:
    return save_attention(
        output_dir / "attention.png",
        translation.attention,
        translation.source_tokens,
        translation.target_tokens,
        title="attention of a held-out sentence (rows: output, columns: source)",
    )


def run_demo(
    output_dir: Path,
    minutes: float = 13.0,
    *,
    corpus: str = DEMO_CORPUS,
    overrides: dict[str, Any] | None = None,
    test_size: int = 300,
    beam: int = 5,
    examples: int = 4,
    progress: bool = True,
    backend: str = "auto",
) -> DemoResult:
    """Train (or continue) for ``minutes``, evaluate on held-out verses, write the report
    (the model computed by ``backend``: see ``softalign/backend.py``)."""
    started = time.perf_counter()
    config = demo_config(corpus, minutes, {**(overrides or {}), "training.backend": backend})
    spent = minutes_spent(output_dir)
    planned = config if spent is None else load_config(output_dir / "config.yaml")
    if spent is not None:
        refuse_changes(output_dir, planned, overrides or {})
    print(describe_plan(planned, minutes, test_size, beam, spent), flush=True)
    probe = RateProbe(((spent or 0.0) + minutes) * 60, max_steps=planned.training.max_steps)
    state = train_or_continue(output_dir, config, minutes, progress, spent, probe)
    translator = Translator.load(*weights_to_evaluate(output_dir), backend=backend)
    sources, references = held_out_sample(translator.config.data.corpus, test_size)
    print(f"translating {len(sources)} held-out sentences (beam {beam}) ...")
    translations = translator.translate(sources, beam=beam)
    hypotheses = [t.text for t in translations]
    scores = score_corpus(hypotheses, references)
    chosen = pick_heatmap_verse(sources, translations)
    heatmap = None if chosen is None else draw_heatmap(translations[chosen], output_dir)
    for name, lines in (("src", sources), ("ref", references), ("hyp", hypotheses)):
        (output_dir / f"test.{name}").write_text("".join(x + "\n" for x in lines), "utf-8")
    result = DemoResult(
        output_dir,
        scores,
        state,
        sources,
        references,
        hypotheses,
        heatmap,
        time.perf_counter() - started,
    )
    shown = example_indices(len(sources), examples, chosen or 0)
    (output_dir / "report.md").write_text(render_report(result, translator, shown), "utf-8")
    print_summary(result, shown)
    return result


def example_indices(total: int, count: int, first: int) -> list[int]:
    """``first`` and then ``count - 1`` evenly spaced others, for the printed triples."""
    others = [i for i in np.linspace(0, total - 1, num=count + 1, dtype=int)[1:] if i != first]
    return ([first] + others)[: min(count, total)]


def print_summary(result: DemoResult, shown: list[int]) -> None:
    s = result.scores
    print(f"\nBLEU {s.bleu:.2f}  chrF {s.chrf:.2f}  on {len(result.sources)} held-out sentences")
    print(f"  ({s.signature})")
    for i in shown:
        print(f"\nsource:    {result.sources[i]}")
        print(f"reference: {result.references[i]}")
        print(f"output:    {result.hypotheses[i]}")
    print(f"\nattention heatmap: {result.heatmap or 'none (no output yet: train longer)'}")
    print(f"report: {result.run_dir / 'report.md'}  ({result.seconds / 60:.1f} minutes in all)")
    print(next_steps(result.run_dir, result.heatmap))


def describe_weights(checkpoint: Path) -> str:
    """``step-N`` or ``averaged/step-N`` with how many checkpoints its average took."""
    averaged_from = ckpt.read_state(checkpoint).get("averaged_from")
    if not averaged_from:
        return f"`{checkpoint.name}`"
    return (
        f"`{checkpoint.parents[1].name}/{checkpoint.name}`, the mean of the last "
        f"{len(averaged_from)} checkpoint(s) (how many: chosen on the validation verses)"
    )


def render_report(result: DemoResult, translator: Translator, shown: list[int]) -> str:
    cfg, state, s = translator.config, result.state, result.scores
    params = sum(p.numel() for p in translator.model.parameters()) / 1e6
    lines = [
        "# softalign demo",
        "",
        f"- corpus: `{cfg.data.corpus}` ({cfg.data.src_lang} -> {cfg.data.tgt_lang})",
        f"- model: {cfg.model.rnn_type.upper()} {cfg.model.encoder_layers}x"
        f"{cfg.model.encoder_hidden} bidirectional encoder, {cfg.model.decoder_hidden} decoder, "
        f"{cfg.model.attention} attention; {params:.1f}M parameters",
        f"- training: {state.step} steps, {state.elapsed_seconds / 60:.1f} minutes, "
        f"{state.epoch} full epochs; stopped: {state.stopped}",
        f"- weights evaluated: {describe_weights(translator.checkpoint)}",
        f"- held-out sample: {len(result.sources)} sentences from books unseen in training",
        "",
        "| BLEU | chrF |",
        "| ---: | ---: |",
        f"| {s.bleu:.2f} | {s.chrf:.2f} |",
        "",
        f"`{s.signature}`",
        "",
        "## Examples",
        "",
    ]
    for i in shown:
        lines += [
            f"- source: {result.sources[i]}",
            f"  - reference: {result.references[i]}",
            f"  - output: {result.hypotheses[i]}",
        ]
    figure = (
        f"![attention of a held-out sentence]({result.heatmap.name})\n\nRows are output "
        "subwords, columns source subwords; brighter is more weight."
        if result.heatmap
        else "No heatmap: the model produced no output yet (train longer)."
    )
    lines += [
        "",
        "## Attention",
        "",
        figure,
        "",
        "All outputs are in `test.hyp` (sources `test.src`, references `test.ref`).",
        "",
    ]
    return "\n".join(lines)
