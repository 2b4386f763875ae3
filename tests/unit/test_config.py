"""Config loading: overrides, types, unknown keys, impossible values, YAML errors."""

import pytest

from softalign.config import load_config
from softalign.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


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


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        (BASE + "model:\n  colour: red\n", [], "'model.colour': unknown key"),
        (BASE, ["training.lr=fast"], "'training.lr': expected a number"),
        (BASE, ["training.batch_tokens=1.5"], "'training.batch_tokens': expected an integer"),
        (BASE, ["model.attention=banana"], "'model.attention': must be one of"),
        (BASE, ["model.dropout=1.5"], "'model.dropout'"),
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
