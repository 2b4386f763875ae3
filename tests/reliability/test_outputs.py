"""Output files: refused before the work when they cannot be written or are an input;
written whole or not at all; a failed write is one line, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.reliability.clicheck import fails_cleanly, run_cli, softalign

from softalign.errors import SoftalignError
from softalign.outputs import atomic_output, check_output

DEV_FULL = Path("/dev/full")
needs_dev_full = pytest.mark.skipif(not DEV_FULL.exists(), reason="no /dev/full here")


@pytest.fixture
def texts(tmp_path) -> dict[str, Path]:
    paths = {"src": tmp_path / "src.txt", "ref": tmp_path / "ref.txt"}
    paths["src"].write_text("ba de\nko lu fi\n", encoding="utf-8")
    paths["ref"].write_text("de ba\nfi lu ko\n", encoding="utf-8")
    return paths


# ------------------------------------------------------------ the same file in and out


def test_translate_onto_its_own_input_is_refused_and_the_input_kept(tiny_run, texts):
    before = texts["src"].read_bytes()
    line = fails_cleanly("translate", tiny_run, "-i", texts["src"], "-o", texts["src"])
    assert "the output file is the input" in line
    assert texts["src"].read_bytes() == before


def test_the_same_file_through_a_link_is_refused(tiny_run, texts, tmp_path):
    link = tmp_path / "link.txt"
    link.symlink_to(texts["src"])
    fails_cleanly("translate", tiny_run, "-i", link, "-o", texts["src"])
    assert texts["src"].read_text(encoding="utf-8") == "ba de\nko lu fi\n"


@pytest.mark.parametrize("side", ["src", "ref"])
def test_evaluate_output_onto_its_src_or_ref_is_refused(tiny_run, texts, side):
    before = texts[side].read_bytes()
    line = fails_cleanly(
        "evaluate", tiny_run, "--src", texts["src"], "--ref", texts["ref"],
        "--output", texts[side],
    )  # fmt: skip
    assert "the hypotheses file is the input" in line
    assert texts[side].read_bytes() == before


def test_align_output_onto_an_input_is_refused(tiny_run, texts):
    before = texts["ref"].read_bytes()
    fails_cleanly(
        "align", tiny_run, "--src", texts["src"], "--tgt", texts["ref"], "-o", texts["ref"]
    )
    assert texts["ref"].read_bytes() == before


# ------------------------------------------------------- outputs that cannot be written


def test_a_missing_output_directory_is_refused_before_decoding(tiny_run, texts, monkeypatch):
    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded before checking the output")

    monkeypatch.setattr("softalign.translator.Translator.translate", no_decoding)
    for args in (
        ["evaluate", tiny_run, "--src", texts["src"], "--ref", texts["ref"], "--output", "nodir/h"],
        ["translate", tiny_run, "-i", texts["src"], "-o", "nodir/x"],
        ["translate", tiny_run, "-i", texts["src"], "--attention", "nodir/a.jsonl"],
        ["attention", tiny_run, "ba de", "-o", "nodir/a.png"],
    ):
        assert "directory nodir not found" in fails_cleanly(*args)


@needs_dev_full
@pytest.mark.parametrize("command", ["translate", "evaluate"])
def test_a_full_device_is_a_one_line_error(tiny_run, texts, command):
    if command == "translate":
        line = fails_cleanly("translate", tiny_run, "-i", texts["src"], "-o", DEV_FULL)
    else:
        line = fails_cleanly(
            "evaluate", tiny_run, "--src", texts["src"], "--ref", texts["ref"], "--output", DEV_FULL
        )
    assert line == "softalign: error: /dev/full: cannot write: No space left on device"


@needs_dev_full
def test_stdout_on_a_full_device_is_one_line_and_a_failure(tiny_run, texts):
    with open(DEV_FULL, "w") as full:
        process = softalign("translate", tiny_run, "-i", texts["src"], stdout=full)
        _, err = process.communicate(timeout=600)
    assert process.returncode == 2
    assert err == "softalign: error: <stdout>: cannot write: No space left on device\n"


def test_translate_to_a_file_writes_every_line_and_no_temporary(tiny_run, texts, tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("old\n", encoding="utf-8")
    out.chmod(0o640)
    code, _, err = run_cli("translate", tiny_run, "-i", texts["src"], "-o", out)
    assert code == 0, err
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2
    assert oct(out.stat().st_mode & 0o777) == oct(0o640)  # the file's permissions are kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt", "ref.txt", "src.txt"]


def test_a_failed_translation_leaves_the_previous_output_whole(tiny_run, tmp_path):
    source, out = tmp_path / "in.txt", tmp_path / "out.txt"
    source.write_bytes(b"ba de\nko lu\n" * 1050 + b"ko \xff lu\n")  # bad UTF-8 after a chunk
    out.write_text("the previous translations\n", encoding="utf-8")
    line = fails_cleanly("translate", tiny_run, "-i", source, "-o", out, "--beam", "1")
    assert ":2101: invalid UTF-8" in line
    assert out.read_text(encoding="utf-8") == "the previous translations\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


# ---------------------------------------------------------------- the helper on its own


def test_atomic_output_replaces_the_file_only_when_the_block_completes(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_output(path) as out:
        out.write("half of the new")
        raise RuntimeError("interrupted")
    assert path.read_text(encoding="utf-8") == "old"
    with atomic_output(path) as out:
        out.write("new")
        assert path.read_text(encoding="utf-8") == "old"  # not visible before the end
    assert path.read_text(encoding="utf-8") == "new"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_atomic_output_through_a_link_replaces_the_target_and_keeps_the_link(tmp_path):
    target, link = tmp_path / "target.txt", tmp_path / "link.txt"
    target.write_text("old", encoding="utf-8")
    link.symlink_to(target)
    with atomic_output(link) as out:
        out.write("new")
    assert link.is_symlink() and target.read_text(encoding="utf-8") == "new"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: (tmp / "nodir" / "x", []), "directory .*nodir not found"),
        (lambda tmp: (tmp, []), "is a directory"),
        (lambda tmp: (tmp / "in.txt", [tmp / "in.txt"]), "the output file is the input"),
    ],
)
def test_check_output_refuses_what_cannot_be_written(tmp_path, make, message):
    (tmp_path / "in.txt").write_text("x\n", encoding="utf-8")
    path, inputs = make(tmp_path)
    with pytest.raises(SoftalignError, match=message):
        check_output(path, inputs=inputs)


def test_check_output_accepts_a_new_file_and_stdin_as_input(tmp_path):
    assert check_output(tmp_path / "new.txt", inputs=["-", None]) == tmp_path / "new.txt"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_directory_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    with pytest.raises(SoftalignError, match="is not writable"):
        check_output(folder / "x.txt")


def test_a_real_process_reports_a_missing_directory_in_one_line(tiny_run, texts):
    process = softalign("translate", tiny_run, "-i", texts["src"], "-o", "nodir/x")
    out, err = process.communicate(timeout=600)
    assert process.returncode == 2 and out == ""
    assert err == "softalign: error: nodir/x: cannot write the output: directory nodir not found\n"
