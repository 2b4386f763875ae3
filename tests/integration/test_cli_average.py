"""softalign average end to end: the averaged run directory is what translate loads."""

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
