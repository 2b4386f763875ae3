"""Config loading: overrides, types, unknown keys, impossible values, YAML errors."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from softalign.config import load_config
from softalign.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


SRC = Path(__file__).resolve().parents[2] / "src"
BASE = "data:\n  corpus: 'synthetic:copy'\n"


def test_overrides_are_typed_and_applied(tmp_path):
    cfg = load_config(
        write(tmp_path, BASE),
        [
            "training.lr=0.0005",
            "model.attention=dot",
            "model.bidirectional=false",
            "model.decoder_hidden=256",
        ],
    )
    assert cfg.training.lr == 0.0005
    assert cfg.model.attention == "dot"
    assert cfg.model.bidirectional is False


def test_exponent_numbers_are_numbers_in_files_and_overrides(tmp_path):
    """PyYAML (YAML 1.1) reads ``1e-5`` as a string; a float key takes it as the number."""
    cfg = load_config(write(tmp_path, BASE + "training:\n  min_lr: 1e-5\n"), ["training.lr=2E-3"])
    assert cfg.training.min_lr == 1e-5
    assert cfg.training.lr == 0.002


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        (BASE + "model:\n  colour: red\n", [], "'model.colour': unknown key"),
        (BASE, ["training.lr=fast"], "'training.lr': expected a number"),
        (BASE, ["training.batch_tokens=1.5"], "'training.batch_tokens': expected an integer"),
        (BASE, ["model.attention=banana"], "'model.attention': must be one of"),
        (BASE, ["model.dropout=1.5"], "'model.dropout'"),
        (BASE, ["training.word_dropout=1"], "'training.word_dropout': must be in [0, 1)"),
        (BASE, ["training.lr=-1"], "'training.lr': must be positive"),
        (BASE, ["model.bidirectional=maybe"], "'model.bidirectional': expected true or false"),
        (BASE, ["model.attention=dot", "model.decoder_hidden=100"], "'model.attention'"),
        (BASE, ["nosection.key=1"], "'nosection': unknown key"),
        ("data: {}\n", [], "'data.train_src'"),
        (BASE, ["model.tie_embeddings=true"], "'model.tie_embeddings'"),
        (BASE, ["data.vocab.sample_sentences=10"], "'data.vocab.sample_sentences'"),
    ],
)
def test_bad_values_name_the_key(tmp_path, text, overrides, message):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), overrides)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = write(tmp_path, "data:\n  corpus: 'x\nmodel: [\n")
    with pytest.raises(ConfigError, match=r"line \d+"):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_bad_override_syntax(tmp_path):
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(write(tmp_path, BASE), ["training.lr"])


def nested_aliases(levels: int, width: int) -> str:
    """A 'billion laughs' config: each level a mapping of ``width`` aliases of the one below
    (``width ** levels`` leaves once expanded), inside a real section."""
    lines = ["a0: &a0 {" + ", ".join(f"k{i}: lol" for i in range(width)) + "}"]
    for level in range(1, levels):
        keys = ", ".join(f"k{i}: *a{level - 1}" for i in range(width))
        lines.append(f"a{level}: &a{level} {{{keys}}}")
    return BASE + "\n".join(lines) + "\n"


def load_in_a_process(path, timeout: float) -> subprocess.CompletedProcess:
    """load_config(path) in a child process with 1 GB of address space, killed after
    ``timeout`` seconds: an expansion can neither hang the suite nor take the machine's memory."""
    code = (
        "import resource, sys; "
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
        "from softalign.config import load_config; load_config(sys.argv[1])"
    )
    paths = [os.environ.get("PYTHONPATH"), str(SRC)]
    try:
        return subprocess.run(
            [sys.executable, "-c", code, str(path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, paths))),
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"loading {path} took over {timeout} s")


def test_nested_yaml_aliases_are_refused_before_they_expand(tmp_path):
    """9 ** 8 leaves from 600 bytes: 32 s and 1.9 GB before an error when they expanded."""
    path = write(tmp_path, nested_aliases(levels=8, width=9))
    assert path.stat().st_size < 1000
    done = load_in_a_process(path, timeout=10)  # the child loads yaml and the config only
    assert "YAML aliases (*name) are not allowed" in done.stderr, done.stderr[-500:]
    assert f"{path}: line 4:" in done.stderr  # the first alias is on line 4
    assert done.returncode != 0


def test_self_referencing_yaml_alias_is_a_one_line_error(tmp_path):
    path = write(tmp_path, BASE + "model: &m\n  attention: *m\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: line 4: YAML aliases")
    assert "\n" not in str(info.value)


def test_an_alias_in_an_override_is_a_plain_string(tmp_path):
    cfg = load_config(write(tmp_path, BASE), ["data.src_lang=*en"])
    assert cfg.data.src_lang == "*en"


SHIPPED = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_config_loads(path):
    """Types, known keys and the cross-key checks (e.g. average_last <= keep_checkpoints)."""
    assert load_config(path).data.tgt_lang
