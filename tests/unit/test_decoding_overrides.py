"""--set on the decoding commands: decoding.* keys only, values parsed as YAML and checked."""

import pytest
from tests.helpers import tiny_config

from softalign.config import decoding_overrides
from softalign.errors import ConfigError


def test_decoding_keys_are_parsed_as_yaml():
    assert decoding_overrides(["decoding.max_length=50", "decoding.length_penalty=0.6"]) == {
        "max_length": 50,
        "length_penalty": 0.6,
    }
    assert decoding_overrides([]) == {}


def test_keys_outside_decoding_are_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"--set model.attention: only decoding\.\* keys") as e:
        decoding_overrides(["model.attention=dot"])
    assert "\n" not in str(e.value) and "decoding.max_length" in str(e.value)


def test_an_unknown_decoding_key_is_named():
    with pytest.raises(ConfigError, match="'decoding.beams': unknown key"):
        decoding_overrides(["decoding.beams=4"])


def test_a_bad_value_is_named_when_applied():
    overrides = decoding_overrides(["decoding.beam=0"])
    with pytest.raises(ConfigError, match="'decoding.beam': must be at least 1"):
        tiny_config().replace(**{f"decoding.{k}": v for k, v in overrides.items()})
