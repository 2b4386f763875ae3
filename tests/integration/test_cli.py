"""The command line end to end: train, resume, translate, evaluate; errors are one line."""

import json
import subprocess
import sys

import yaml
from tests.helpers import TINY


def softalign(*args, stdin=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "softalign", *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def test_train_resume_translate_evaluate(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    run = tmp_path / "run"
    done = softalign(
        "train",
        config,
        "-o",
        run,
        "--max-steps",
        30,
        "--checkpoint-every",
        10,
        "--set",
        "training.valid_every=10",
        "--no-progress",
    )
    assert done.returncode == 0, done.stderr
    assert (run / "checkpoints" / "step-00000030").is_dir()
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["training"]["valid_every"] == 10  # the override is in the resolved config
    done = softalign("train", "--resume", run, "--max-steps", 40, "--no-progress")
    assert done.returncode == 0, done.stderr
    assert (run / "checkpoints" / "step-00000040").is_dir()

    src = tmp_path / "src.txt"
    src.write_text("ba be bi\n\nko ku\n")
    out = tmp_path / "out.txt"
    done = softalign("translate", run, "-i", src, "-o", out, "--beam", 2)
    assert done.returncode == 0, done.stderr
    lines = out.read_text().split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""  # one line per input line

    done = softalign("translate", run, "--beam", 3, "--nbest", 2, stdin="ba be\n")
    assert done.returncode == 0, done.stderr
    assert [line.split(" ||| ")[0] for line in done.stdout.splitlines()] == ["0", "0"]

    ref = tmp_path / "ref.txt"
    ref.write_text("bi be ba\nx\nku ko\n")
    done = softalign("evaluate", run, "--src", src, "--ref", ref, "--beam", 2, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {"bleu", "chrf", "signature", "ppl"} <= result.keys()
    assert "tok:13a" in result["signature"]


def test_errors_are_one_line_with_exit_status_2(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("data:\n  corpus: synthetic:copy\nmodel:\n  attention: banana\n")
    done = softalign("train", config, "-o", tmp_path / "r")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "model.attention" in done.stderr
    assert "Traceback" not in done.stderr

    done = softalign("translate", tmp_path / "missing-run", "-i", config)
    assert done.returncode == 2 and "not found" in done.stderr

    (tmp_path / "a").write_text("1\n2\n")
    (tmp_path / "b").write_text("1\n")
    cfg = {
        "data": {
            "train_src": str(tmp_path / "a"),
            "train_tgt": str(tmp_path / "b"),
            "valid_src": str(tmp_path / "a"),
            "valid_tgt": str(tmp_path / "a"),
        }
    }
    config.write_text(yaml.safe_dump(cfg))
    done = softalign("train", config, "-o", tmp_path / "r2")
    assert done.returncode == 2 and "has 2 lines but" in done.stderr
    assert "Traceback" not in done.stderr
