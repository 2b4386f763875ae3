"""softalign average and export end to end: what they write is what translate loads."""

import subprocess
import sys

from softalign.translator import Translator


def test_cli_average_writes_a_run_that_translate_loads(tiny_run, tmp_path):
    run = [sys.executable, "-m", "softalign"]
    done = subprocess.run(
        [*run, "average", tiny_run, "--last", "2", "-o", tmp_path / "avg"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "averaged 2 checkpoints" in done.stderr
    done = subprocess.run(
        [*run, "translate", tmp_path / "avg", "--beam", "1"],
        input="ba be bi\n",
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    expected = Translator.load(tmp_path / "avg").translate(["ba be bi"], beam=1)[0].text
    assert done.stdout == expected + "\n"
    done = subprocess.run(
        [*run, "average", tiny_run, "--last", "2", "-o", tmp_path / "avg"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "exists and is not empty" in done.stderr


def test_cli_export_writes_a_folder_translate_loads(tiny_run, tmp_path):
    run = [sys.executable, "-m", "softalign"]
    done = subprocess.run(
        [*run, "export", tiny_run, "-o", tmp_path / "model", "--checkpoint", "latest"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "--checkpoint latest" in (tmp_path / "model" / "README.md").read_text()
    done = subprocess.run(
        [*run, "translate", tmp_path / "model", "--beam", "2"],
        input="ba be bi\nko ku\n",
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    expected = Translator.load(tiny_run, checkpoint="latest").translate(["ba be bi", "ko ku"], 2)
    assert done.stdout.splitlines() == [t.text for t in expected]
