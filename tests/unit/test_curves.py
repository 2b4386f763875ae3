"""softalign plot: learning curves from metrics.jsonl, and one-line errors without them."""

import subprocess
import sys

import pytest

from softalign.analysis.curves import plot_learning_curves, read_metrics, run_names
from softalign.errors import SoftalignError

PNG = b"\x89PNG\r\n\x1a\n"


def write_metrics(run, lines):
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text("".join(line + "\n" for line in lines))


def test_records_are_read_and_a_truncated_last_line_is_ignored(tmp_path):
    write_metrics(tmp_path / "r", ['{"step": 20, "train_loss": 3.0}', '{"step": 40, "tr'])
    assert read_metrics(tmp_path / "r") == [{"step": 20, "train_loss": 3.0}]


def test_a_broken_line_inside_is_named(tmp_path):
    write_metrics(tmp_path / "r", ["{bad", '{"step": 40, "train_loss": 3.0}'])
    with pytest.raises(SoftalignError, match=r"metrics.jsonl:1: not a JSON record"):
        read_metrics(tmp_path / "r")


def test_colliding_run_names_use_the_paths():
    assert run_names(["a/run", "b/run", "c/other"]) == ["a/run", "b/run", "other"]


def test_plot_writes_a_png_of_runs_without_bleu(tmp_path):
    records = [{"step": 20, "train_loss": 3.0, "elapsed_s": 1.0}]
    out = plot_learning_curves({"r": records}, tmp_path / "c.png")
    assert out.read_bytes().startswith(PNG)


def test_cli_plot_of_a_trained_run_and_of_a_run_without_metrics(tiny_run, tmp_path):
    cmd = [sys.executable, "-m", "softalign", "plot"]
    done = subprocess.run([*cmd, tiny_run, "-o", tmp_path / "c.png"], capture_output=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "c.png").read_bytes().startswith(PNG)
    (tmp_path / "empty").mkdir()
    done = subprocess.run(
        [*cmd, tiny_run, tmp_path / "empty", "-o", tmp_path / "d.png"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "empty: no metrics.jsonl" in done.stderr and not (tmp_path / "d.png").exists()
