"""Untrusted files: nothing from a run directory is unpickled or executed.

Weights load only from safetensors (after a SHA-256 check), everything else from JSON, YAML
(``safe_load``) and SentencePiece's protobuf. The tests plant live payloads -- a pickle whose
``__reduce__`` creates a marker file -- where a checkpoint is expected and show that they are
refused and the marker never appears.
"""

from __future__ import annotations

import json
import pickle
import re
import shutil
import struct
from pathlib import Path

import pytest
import torch
from tests.reliability.clicheck import fails_cleanly

from softalign import checkpoint as ckpt
from softalign.errors import CheckpointError

SRC = Path(__file__).resolve().parents[2] / "src" / "softalign"


class Payload:
    """Unpickling this creates ``marker`` (standing in for arbitrary code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture
def source(tmp_path) -> Path:
    path = tmp_path / "in.txt"
    path.write_text("ba de fi\n")
    return path


def loaded_checkpoint(run: Path) -> Path:
    return ckpt.best_checkpoint(run) or ckpt.latest_checkpoint(run)


def set_checksum(checkpoint: Path, name: str) -> None:
    """What an attacker who rewrites the whole checkpoint does: make the checksum match."""
    state = json.loads((checkpoint / "state.json").read_text())
    state["checksums"][name] = ckpt.sha256(checkpoint / name)
    (checkpoint / "state.json").write_text(json.dumps(state))


def test_the_payload_is_live(tmp_path):
    """Sanity check of the tests below: unpickling the payload does create the marker."""
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


@pytest.mark.parametrize("checksum_matches", [False, True], ids=["stale_sum", "forged_sum"])
@pytest.mark.parametrize("command", ["translate", "resume"])
def test_pickle_planted_as_weights_is_refused_without_running(
    command, checksum_matches, run, source, tmp_path
):
    marker = tmp_path / "pwned"
    for checkpoint in ckpt.list_checkpoints(run):
        for name in ("model.safetensors", "optimizer.safetensors"):
            torch.save({"weights": Payload(marker)}, checkpoint / name)  # a zip of pickles
            if checksum_matches:
                set_checksum(checkpoint, name)
    args = (
        ["translate", run, "-i", source] if command == "translate" else ["train", "--resume", run]
    )
    line = fails_cleanly(*args)
    expected = "not a valid safetensors file" if checksum_matches else "checksum mismatch"
    assert expected in line
    assert not marker.exists()


def test_pickle_files_beside_a_checkpoint_are_never_read(run, source, tmp_path):
    marker = tmp_path / "pwned"
    checkpoint = loaded_checkpoint(run)
    (checkpoint / "model.safetensors").unlink()
    for path in (
        checkpoint / "model.pt",
        checkpoint / "checkpoint.pt",
        run / "model.pt",
        run / "optimizer.pkl",
        checkpoint / "model.bin",
    ):
        with open(path, "wb") as handle:
            pickle.dump(Payload(marker), handle)
    line = fails_cleanly("translate", run, "-i", source)
    assert "model.safetensors: missing" in line
    assert not marker.exists()


def test_safetensors_header_claiming_petabytes_is_refused(run, source):
    checkpoint = loaded_checkpoint(run)
    header = json.dumps({"w": {"dtype": "F32", "shape": [2**40], "data_offsets": [0, 2**42]}})
    (checkpoint / "model.safetensors").write_bytes(
        struct.pack("<Q", len(header)) + header.encode() + b"\0" * 16
    )
    set_checksum(checkpoint, "model.safetensors")
    assert "not a valid safetensors file" in fails_cleanly("translate", run, "-i", source)


def test_python_tags_in_a_config_are_refused_not_run(run, source, tmp_path):
    marker = tmp_path / "pwned"
    tag = (
        f"!!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path [{marker}]]"
    )
    config = tmp_path / "evil.yaml"
    config.write_text(f"training:\n  lr: {tag}\n")
    assert "YAML syntax error" in fails_cleanly("train", config, "-o", tmp_path / "out")
    (run / "config.yaml").write_text(f"model:\n  dropout: {tag}\n")
    assert "YAML syntax error" in fails_cleanly("translate", run, "-i", source)
    assert not marker.exists()


UNSAFE = re.compile(
    r"torch\.load|\bpickle\b|\bdill\b|joblib|allow_pickle\s*=\s*True|yaml\.load\(|unsafe_load"
    r"|(?<![.\w])eval\(|(?<![.\w])exec\(|weights_only\s*=\s*False"
)


def test_no_module_can_unpickle_or_execute_loaded_text():
    """A static guard: the package never calls an API that would unpickle or eval a file."""
    found = [
        f"{path.relative_to(SRC)}:{number}: {line.strip()}"
        for path in sorted(SRC.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if UNSAFE.search(line.split("#")[0])
    ]
    assert not found, found


# ------------------------------------------------------- nothing outside the run directory


@pytest.mark.parametrize("name", ["../../x", "{absolute}", "step-00000200/../../../x", ""])
def test_best_json_pointing_outside_the_run_is_refused_in_one_line(name, run, source, tmp_path):
    outside = tmp_path / "x"  # a real checkpoint outside the run, which must not be loaded
    shutil.copytree(ckpt.latest_checkpoint(run), outside)
    name = name.format(absolute=outside)
    (run / "best.json").write_text(json.dumps({"checkpoint": name}))
    line = fails_cleanly("translate", run, "-i", source)
    assert "best.json" in line and "step-NNNNNNNN" in line


def test_pruning_never_deletes_through_a_symlinked_checkpoints_folder(run, tmp_path):
    foreign = tmp_path / "foreign"
    (run / "checkpoints").rename(foreign)
    (run / "checkpoints").symlink_to(foreign)
    before = sorted(p.name for p in foreign.iterdir())
    with pytest.raises(CheckpointError, match="symbolic link"):
        ckpt.prune(run, keep=1)
    with pytest.raises(CheckpointError, match="symbolic link"):
        ckpt.save_checkpoint(run, 999, {"w": torch.zeros(1)}, {}, {})
    assert sorted(p.name for p in foreign.iterdir()) == before


def test_resume_into_a_symlinked_checkpoints_folder_is_a_one_line_error(run, tmp_path):
    foreign = tmp_path / "foreign"
    (run / "checkpoints").rename(foreign)
    (run / "checkpoints").symlink_to(foreign)
    before = sorted(p.name for p in foreign.iterdir())
    line = fails_cleanly("train", "--resume", run, "--no-progress", "--max-steps", "201")
    assert "symbolic link" in line
    assert sorted(p.name for p in foreign.iterdir()) == before
