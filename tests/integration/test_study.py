"""``softalign study`` end to end on a tiny synthetic task: train two variants for a few
steps, measure, report; rerun (skips), rebuild the report from the directory alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.helpers import tiny_config

from softalign import cli
from softalign.config import save_config

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("study-config") / "tiny.yaml"
    save_config(tiny_config(**{"data.corpus": "synthetic:reverse?min=3&max=30&n=2000"}), path)
    return path


def study(config: Path, out: Path, *extra: str) -> int:
    return cli.main(
        ["study", str(config), "-o", str(out), "--variants", "none,additive",
         "--budget-steps", "150", "--test-size", "40", "--beam", "2", "--no-progress", *extra]
    )  # fmt: skip


@pytest.fixture(scope="module")
def study_dir(config, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("study") / "out"
    assert study(config, out) == 0
    return out


def test_study_writes_report_results_and_figures(study_dir):
    results = json.loads((study_dir / "results.json").read_text())
    assert list(results["variants"]) == ["none", "additive"]
    assert results["test_sentences"] == 40
    for variant, r in results["variants"].items():
        assert r["steps"] == 150, variant
        assert 0 <= r["bleu"] <= 100 and 0 <= r["sequence_accuracy"] <= 1
        assert sum(b["count"] for b in r["buckets"]) == 40
        assert sum(b["count"] for b in r["accuracy_buckets"]) == 40
        assert r["parameters"] > 0 and r["tokens_per_s"] > 0
    for name in ("bleu_by_length", "curves", "accuracy_by_length", "heatmap_additive"):
        assert (study_dir / f"{name}.png").read_bytes()[:8] == PNG_MAGIC
    assert not (study_dir / "heatmap_none.png").exists()
    page = (study_dir / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4  # self-contained
    assert "<td>none</td>" in page and "<td>additive</td>" in page


def test_rerun_skips_trained_and_measured_variants(config, study_dir, capsys):
    before = (study_dir / "runs" / "none" / "study-eval.json").stat().st_mtime_ns
    assert study(config, study_dir) == 0
    out = capsys.readouterr().out
    assert out.count("already trained, skipped") == 2
    assert out.count("already evaluated, skipped") == 2
    assert (study_dir / "runs" / "none" / "study-eval.json").stat().st_mtime_ns == before


def test_interrupted_variant_resumes_and_a_new_variant_is_added(
    config, study_dir, tmp_path, capsys
):
    out = tmp_path / "copy"
    shutil.copytree(study_dir, out)
    (out / "runs" / "additive" / "study-trained.json").unlink()  # as if killed mid-training
    assert study(config, out, "--variants", "none,additive,dot") == 0
    printed = capsys.readouterr().out
    assert "additive: resuming the interrupted training" in printed
    assert "dot: training for 150 steps" in printed
    results = json.loads((out / "results.json").read_text())
    assert list(results["variants"]) == ["none", "additive", "dot"]


def test_report_is_rebuilt_from_the_directory_alone(study_dir, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(study_dir, out)
    for name in ("report.html", "results.json", "bleu_by_length.png", "curves.png"):
        (out / name).unlink()
    assert cli.main(["study", "--report", str(out)]) == 0
    assert (out / "report.html").is_file() and (out / "curves.png").is_file()
    rebuilt = json.loads((out / "results.json").read_text())
    original = json.loads((study_dir / "results.json").read_text())
    assert rebuilt["variants"] == original["variants"]


def test_a_different_budget_in_the_same_directory_is_refused(config, study_dir, capsys):
    code = cli.main(
        ["study", str(config), "-o", str(study_dir), "--variants", "none",
         "--budget-steps", "151", "--test-size", "40", "--beam", "2"]
    )  # fmt: skip
    assert code == 2
    assert "different budget_steps" in capsys.readouterr().err


def test_a_config_without_test_set_is_refused(tmp_path, capsys):
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text("x y\n")
    path = tmp_path / "files.yaml"
    path.write_text(
        f"data: {{dir: {tmp_path}, train_src: a.txt, train_tgt: b.txt,"
        " valid_src: a.txt, valid_tgt: b.txt}\n"
    )
    code = cli.main(["study", str(path), "-o", str(tmp_path / "s"), "--budget-steps", "5"])
    assert code == 2
    assert "names no test set" in capsys.readouterr().err
