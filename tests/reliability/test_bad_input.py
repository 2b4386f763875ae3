"""Bad input through the command line: one line naming what and where, exit status 2.

Corpora, configs, run directories and checkpoints are each broken in the ways users (and
disks) break them; every case must end in a single ``softalign: error: ...`` line, never a
traceback. Translation input is not an error: empty lines, control characters and any Unicode
translate, one output line per input line; very long lines are truncated with a warning.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import resource
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file, save_file
from tests.helpers import TINY, needs_bf16_products, tiny_config
from tests.reliability.clicheck import REPO, error_line, fails_cleanly, run_cli, softalign

from softalign import checkpoint as ckpt
from softalign.data.synthetic import generate

# ----------------------------------------------------------------------------- corpora


def file_corpus(folder: Path, n: int = 300) -> dict[str, Path]:
    """A small clean parallel corpus as files (train and valid)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, seed in (("train", 1), ("valid", 2)):
        text = generate("reverse", n if split == "train" else 30, 3, 8, 40, seed)
        for side, lines in (("src", text.src), ("tgt", text.tgt)):
            paths[f"{split}_{side}"] = folder / f"{split}.{side}"
            paths[f"{split}_{side}"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


def corpus_config(tmp_path: Path, paths: dict[str, Path], **training) -> Path:
    raw = json.loads(json.dumps(TINY))
    raw["data"] = {"vocab": {"size": 60}, **{k: str(v) for k, v in paths.items()}}
    raw["training"].update({"max_steps": 5, "valid_every": 5, "checkpoint_every": 5, **training})
    path = tmp_path / "corpus.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def truncated_gzip(path: Path) -> None:
    data = gzip.compress(b"ba de\n" * 5000)
    path.write_bytes(data[: len(data) // 2])


CORPUS_DAMAGE = {
    "line_counts_differ": (lambda p: p.write_text("ba\nde\n"), r"has 2 lines but .* has 300"),
    "invalid_utf8": (lambda p: p.write_bytes(b"ba\nde \xc3\x28 fi\n"), r":2: invalid UTF-8"),
    "nul_byte": (lambda p: p.write_bytes(b"ba\x00de\n"), r":1: contains a NUL byte"),
    "empty_file": (lambda p: p.write_bytes(b""), r"file is empty"),
    "directory": (lambda p: (p.unlink(), p.mkdir()), r"is a directory"),
    "missing": (lambda p: p.unlink(), r"file not found"),
    "truncated_gzip": (truncated_gzip, r"corrupt or truncated gzip after line"),
    "gz_name_not_gzip": (lambda p: p.write_text("ba de\n"), r"corrupt or truncated gzip"),
}


@pytest.mark.parametrize("damage", CORPUS_DAMAGE)
def test_damaged_corpus_is_a_one_line_error_naming_the_file(damage, tmp_path):
    paths = file_corpus(tmp_path / "data")
    make, message = CORPUS_DAMAGE[damage]
    if "gz" in damage:
        paths["train_src"] = paths["train_src"].with_suffix(".gz")
        paths["train_src"].touch()
    make(paths["train_src"])
    line = fails_cleanly("train", corpus_config(tmp_path, paths), "-o", tmp_path / "run")
    assert str(paths["train_src"]) in line or "has 2 lines" in line
    assert re.search(message, line), line


def test_corpus_lines_of_megabytes_are_dropped_with_a_count(tmp_path):
    """A 3 MB line in training and validation data: filtered and counted, in bounded memory.

    The run is a subprocess limited to 4 GB of address space (and ten minutes); before the
    validation split was filtered, the 3 MB validation pair took over 11 GB.
    """
    paths = file_corpus(tmp_path / "data")
    huge = " ".join(["ba de fi"] * 375_000)  # 3 MB, ~1M subwords
    for name in paths:
        with open(paths[name], "a", encoding="utf-8") as handle:
            handle.write(huge + "\n")
    config = corpus_config(tmp_path, paths)
    process = softalign(
        "train", config, "-o", tmp_path / "run", "--no-progress", preexec_fn=limited_memory
    )
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    assert "train: dropped 0 pairs with an empty side and 1 over 100 subwords; kept 300" in err
    assert "valid: dropped 0 pairs with an empty side and 1 over 200 subwords; kept 30" in err


def limited_memory() -> None:
    os.nice(max(0, 15 - os.nice(0)))
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    signal.alarm(600)


# ----------------------------------------------------------------------------- configs


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def good_yaml(**changes) -> str:
    raw = json.loads(json.dumps(TINY))
    for dotted, value in changes.items():
        section, key = dotted.split(".")
        raw[section][key] = value
    return yaml.safe_dump(raw)


CONFIG_DAMAGE = {
    "unknown_key": (good_yaml(**{"training.lrr": 0.1}), "config key 'training.lrr': unknown key"),
    "wrong_type": (
        good_yaml(**{"training.lr": "fast"}),
        "config key 'training.lr': expected a number, got 'fast'",
    ),
    "bool_for_int": (
        good_yaml(**{"training.max_steps": True}),
        "config key 'training.max_steps': expected an integer, got True",
    ),
    "out_of_range": (
        good_yaml(**{"model.dropout": 1.5}),
        "config key 'model.dropout': must be in [0, 1)",
    ),
    "negative": (
        good_yaml(**{"training.batch_tokens": -5}),
        "config key 'training.batch_tokens': must be positive",
    ),
    "unknown_choice": (
        good_yaml(**{"model.attention": "magic"}),
        "config key 'model.attention': must be one of",
    ),
    "section_not_mapping": ("model: 5\n", "config key 'model': expected a section"),
    "not_a_mapping": ("- just\n- a list\n", "expected a mapping of sections, got list"),
    "yaml_syntax": ("model:\n  rnn_type: gru\n  dropout: [0.1\n", "YAML syntax error"),
    "yaml_tab": ("training:\n\tlr: 0.1\n", "line 2"),
}


@pytest.mark.parametrize("damage", CONFIG_DAMAGE)
def test_bad_config_is_a_one_line_error_naming_the_key_or_line(damage, tmp_path):
    text, message = CONFIG_DAMAGE[damage]
    line = fails_cleanly("train", write_config(tmp_path, text), "-o", tmp_path / "run")
    assert message in line
    assert not (tmp_path / "run").exists()  # nothing was started


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = write_config(tmp_path, "data:\n  corpus: x\nmodel:\n  dropout: [0.1\n  x: 1\n")
    line = fails_cleanly("train", path, "-o", tmp_path / "run")
    assert f"{path}: line 5: YAML syntax error" in line


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.rnn_type=rnn", "config key 'model.rnn_type': must be one of gru, lstm"),
        ("training", "override 'training': expected key=value"),
        ("training.max_steps.x=1", "'max_steps' is not a section"),
        ("nosuch.key=1", "config key 'nosuch': unknown key"),
    ],
)
def test_bad_override_is_a_one_line_error(override, message, tmp_path):
    path = write_config(tmp_path, good_yaml())
    line = fails_cleanly("train", path, "-o", tmp_path / "run", "--set", override)
    assert message in line


def test_config_that_is_not_utf8_or_missing_is_a_one_line_error(tmp_path):
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00model")
    assert "not UTF-8 text" in fails_cleanly("train", binary, "-o", tmp_path / "run")
    missing = tmp_path / "missing.yaml"
    assert "config file not found" in fails_cleanly("train", missing, "-o", tmp_path / "run")


# ------------------------------------------------------- run directories and checkpoints


@pytest.fixture
def source(tmp_path) -> Path:
    path = tmp_path / "source.txt"
    path.write_text("ba de fi\nko lu\n", encoding="utf-8")
    return path


def loaded_checkpoint(run: Path) -> Path:
    """The checkpoint ``translate`` loads: the best, else the latest."""
    return ckpt.best_checkpoint(run) or ckpt.latest_checkpoint(run)


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def edit_state(run: Path, edit) -> None:
    path = loaded_checkpoint(run) / "state.json"
    state = json.loads(path.read_text())
    edit(state)
    path.write_text(json.dumps(state))


def edit_config(run: Path, **changes) -> None:
    raw = yaml.safe_load((run / "config.yaml").read_text())
    for dotted, value in changes.items():
        section, key = dotted.split(".")
        raw[section][key] = value
    (run / "config.yaml").write_text(yaml.safe_dump(raw))


RUN_DAMAGE = {
    "missing_run_dir": (lambda r: shutil.rmtree(r), "run directory not found"),
    "no_config": (lambda r: (r / "config.yaml").unlink(), "not a run directory (no config.yaml)"),
    "no_checkpoints": (lambda r: shutil.rmtree(r / "checkpoints"), "no checkpoint found"),
    "truncated_weights": (
        lambda r: truncate(loaded_checkpoint(r) / "model.safetensors"),
        "model.safetensors: checksum mismatch (file truncated or corrupted)",
    ),
    "flipped_bit_in_weights": (
        lambda r: flip_byte(loaded_checkpoint(r) / "model.safetensors", -5),
        "model.safetensors: checksum mismatch (file truncated or corrupted)",
    ),
    "weights_missing": (
        lambda r: (loaded_checkpoint(r) / "model.safetensors").unlink(),
        "model.safetensors: missing",
    ),
    "truncated_state": (
        lambda r: truncate(loaded_checkpoint(r) / "state.json"),
        "state.json: corrupt checkpoint state",
    ),
    "state_without_checksums": (
        lambda r: edit_state(r, lambda s: s.pop("checksums")),
        "state.json: corrupt checkpoint state (no checksums)",
    ),
    "state_checksum_removed": (
        lambda r: edit_state(r, lambda s: s["checksums"].pop("model.safetensors")),
        "state.json: no checksum for model.safetensors",
    ),
    "newer_format": (
        lambda r: edit_state(r, lambda s: s.update(format_version=2)),
        "checkpoint format 2 is not supported (this softalign reads format 1)",
    ),
    "different_layer_size": (
        lambda r: edit_config(r, **{"model.embedding_size": 48}),
        r"different architecture: '[\w.]+' has shape \(\d+, \d+\), the config builds \(\d+, \d+\)",
    ),
    "different_rnn": (
        lambda r: edit_config(r, **{"model.rnn_type": "lstm"}),
        r"different architecture: (missing|'[\w.]+' has shape)",
    ),
    "different_depth": (
        lambda r: edit_config(r, **{"model.encoder_layers": 2}),
        r"different architecture: missing \['encoder\.[\w.]+_l1",
    ),
    "vocabulary_missing": (
        lambda r: (r / "spm.joint.model").unlink(),
        "spm.joint.model: SentencePiece model not found",
    ),
    "vocabulary_corrupt": (
        lambda r: truncate(r / "spm.joint.model"),
        "spm.joint.model: not a valid SentencePiece model",
    ),
    "best_pointer_corrupt": (lambda r: truncate(r / "best.json"), "best.json: corrupt"),
    "config_corrupt": (
        lambda r: (r / "config.yaml").write_text("model: [\n"),
        "config.yaml: line 2: YAML syntax error",
    ),
}


@pytest.mark.parametrize("damage", RUN_DAMAGE)
def test_broken_run_directory_is_a_one_line_error_naming_what_differs(damage, run, source):
    make, message = RUN_DAMAGE[damage]
    make(run)
    line = fails_cleanly("translate", run, "-i", source)
    assert re.search(message, line) if message.startswith("different") else message in line, line


@pytest.mark.parametrize(
    "damage", ["truncated_weights", "truncated_state", "different_rnn", "no_checkpoints"]
)
def test_resuming_a_broken_run_is_a_one_line_error(damage, run):
    make, message = RUN_DAMAGE[damage]
    make(run)
    for path in ckpt.list_checkpoints(run):  # resume reads the latest: break it too
        if damage == "truncated_weights":
            truncate(path / "model.safetensors")
        if damage == "truncated_state":
            truncate(path / "state.json")
    line = fails_cleanly("train", "--resume", run, "--no-progress")
    if damage == "no_checkpoints":
        message = "no checkpoint to resume from"
    if damage == "different_rnn":  # config.yaml no longer matches the checkpoint's config
        message = "config.yaml: model.rnn_type differs from what the checkpoint was trained with"
    assert re.search(message, line) if message.startswith("different") else message in line, line


@pytest.mark.parametrize(
    "edit",
    [
        lambda s: s.pop("train"),
        lambda s: s["train"].update(future_field=1),
        lambda s: s.update(param_groups="nonsense"),
    ],
    ids=["missing_section", "unknown_field", "wrong_shape"],
)
def test_resuming_from_an_incompatible_state_is_a_one_line_error(edit, run):
    for path in ckpt.list_checkpoints(run):
        state = json.loads((path / "state.json").read_text())
        edit(state)
        (path / "state.json").write_text(json.dumps(state))
    line = fails_cleanly("train", "--resume", run, "--no-progress")
    assert "incompatible checkpoint state" in line


def test_weights_file_with_a_matching_checksum_but_wrong_tensors_names_them(run, source):
    path = loaded_checkpoint(run)
    tensors = load_file(path / "model.safetensors")
    name = sorted(tensors)[0]
    tensors["extra.weight"] = tensors.pop(name)
    save_file(tensors, path / "model.safetensors")
    edit_state(
        run,
        lambda s: s["checksums"].update(
            {"model.safetensors": ckpt.sha256(path / "model.safetensors")}
        ),
    )
    line = fails_cleanly("translate", run, "-i", source)
    assert f"different architecture: missing ['{name}'], unexpected ['extra.weight']" in line


# ---------------------------------------------------------------------- translation input


def translate_lines(run: Path, tmp_path: Path, lines: list[str]) -> tuple[list[str], str]:
    source = tmp_path / "in.txt"
    source.write_bytes("".join(line + "\n" for line in lines).encode("utf-8", "surrogatepass"))
    code, out, err = run_cli("translate", run, "-i", source, "--beam", "2")
    assert code == 0, err
    assert out.endswith("\n")
    return out[:-1].split("\n"), err


def test_empty_and_blank_lines_translate_to_empty_lines(tiny_run, tmp_path):
    out, _ = translate_lines(tiny_run, tmp_path, ["ba de", "", "   ", "\t", "ko lu"])
    assert len(out) == 5 and out[1:4] == ["", "", ""]


def test_control_characters_and_any_unicode_give_one_line_per_line(tiny_run, tmp_path):
    lines = [
        "ba\x01de\x02\x1b[31m fi\x7f",  # C0 controls, an escape sequence, DEL
        "ba\rde\x0bfi\x0cko",  # carriage return, vertical tab, form feed inside a line
        "\u2028ba\u2029de\x85fi\x1c\x1d\x1e",  # separators str.splitlines() breaks on
        "😀 漢字 مرحبا עברית \u200f\u202e ba",  # emoji, CJK, right-to-left, bidi overrides
        "\ufeffba \ufffe\uffff \U0010ffff \u0301\u0301",  # BOM, non-characters, combining
        "ｂａ　ｄｅ",  # full-width letters and space (NFKC-normalised by SentencePiece)
    ]
    out, err = translate_lines(tiny_run, tmp_path, lines)
    assert len(out) == len(lines), out
    assert "Traceback" not in err


@pytest.mark.parametrize("errors", ["strict", "surrogateescape"])
def test_invalid_utf8_on_stdin_is_a_one_line_error_naming_the_line(errors, tiny_run):
    """Whatever error handler the locale gives sys.stdin, the bytes are checked as in a file."""
    process = softalign(
        "translate", tiny_run, stdin=subprocess.PIPE, text=False,
        env=dict(os.environ, PYTHONPATH=str(REPO), PYTHONIOENCODING=f"utf-8:{errors}"),
    )  # fmt: skip
    out, err = process.communicate(b"ba de\nko \xff\xfe lu\n", timeout=600)
    assert process.returncode == 2 and out == b""
    assert err.decode() == "softalign: error: <stdin>:2: invalid UTF-8 at byte 3 of the line\n"


def test_invalid_utf8_input_file_is_a_one_line_error_naming_the_line(tiny_run, tmp_path):
    source = tmp_path / "in.txt"
    source.write_bytes(b"ba de\nko \xff lu\n")
    line = fails_cleanly("translate", tiny_run, "-i", source)
    assert f"{source}:2: invalid UTF-8" in line


def test_very_long_line_is_truncated_with_a_warning(tiny_run, tmp_path):
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("softalign").addHandler(handler)
    try:
        long_line = " ".join(["ba de fi ko"] * 50_000)  # ~200k subwords, 600 kB
        out, _ = translate_lines(tiny_run, tmp_path, ["ba de", long_line, "ko"])
    finally:
        logging.getLogger("softalign").removeHandler(handler)
    assert len(out) == 3
    limit = tiny_config().decoding.max_length
    assert len(out[1].split()) <= 2 * limit + 5  # the output is bounded as well
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert f"1 input sentence(s) over {limit} subwords were truncated" in warnings


def test_evaluate_with_a_megabyte_reference_stays_bounded(tiny_run, tmp_path):
    huge = " ".join(["ba de fi"] * 125_000)  # 1 MB: perplexity is computed on a cut copy
    (tmp_path / "src").write_text(f"ba de\n{huge}\n", encoding="utf-8")
    (tmp_path / "ref").write_text(f"de ba\n{huge}\n", encoding="utf-8")
    code, out, err = run_cli(
        "evaluate", tiny_run, "--src", tmp_path / "src", "--ref", tmp_path / "ref", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["sentences"] == 2


def test_evaluate_with_mismatched_files_is_a_one_line_error(tiny_run, tmp_path):
    (tmp_path / "src").write_text("ba\nde\n")
    (tmp_path / "ref").write_text("ba\n")
    line = fails_cleanly("evaluate", tiny_run, "--src", tmp_path / "src", "--ref", tmp_path / "ref")
    assert "has 2 lines but" in line


# --------------------------------------------------------------- the same, as a real process


def test_errors_are_one_line_and_exit_2_in_a_real_process(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(good_yaml(**{"training.lr": "fast"}))
    process = softalign("train", config, "-o", tmp_path / "run")
    out, err = process.communicate(timeout=600)
    assert process.returncode == 2
    assert err == "softalign: error: config key 'training.lr': expected a number, got 'fast'\n"
    assert error_line(err) and out == ""


def test_fp16_decoding_on_the_cpu_is_a_one_line_error(tiny_run, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("ba de\n", encoding="utf-8")
    line = fails_cleanly(
        "translate", tiny_run, "-i", source, "--device", "cpu", "--precision", "fp16"
    )
    assert "decoding.precision fp16 needs a CUDA device" in line


@needs_bf16_products()
def test_bf16_translate_from_the_command_line(tiny_run, tmp_path):
    source, output = tmp_path / "in.txt", tmp_path / "out.txt"
    source.write_text("ba de\nko lu\n", encoding="utf-8")
    code, _, stderr = run_cli(
        "translate", tiny_run, "-i", source, "-o", output, "--device", "cpu", "--precision", "bf16"
    )
    assert code == 0, stderr
    assert len(output.read_text(encoding="utf-8").splitlines()) == 2
