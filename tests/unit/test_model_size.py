"""Parameter memory estimated from the config, refused before the model is built."""

import pytest
from tests.helpers import tiny_config
from tests.reliability.clicheck import fails_cleanly

from softalign.errors import ConfigError
from softalign.model.seq2seq import build_model
from softalign.model_size import (
    LOADING_COPIES,
    TRAINING_COPIES,
    available_memory,
    check_model_fits,
    parameter_count,
    size_keys,
)
from softalign.translator import Translator

HUGE = {"model.embedding_size": 100_000_000}


@pytest.mark.parametrize(
    "overrides", [{}, {"model.attention": "general"}, {"model.rnn_type": "lstm"}]
)
def test_count_is_the_built_models_count(overrides):
    config = tiny_config(**overrides).model
    model = build_model(config, 60, 70)
    assert parameter_count(config, 60, 70) == sum(p.numel() for p in model.parameters())


def test_bytes_needed_are_four_per_parameter_per_copy():
    config = tiny_config().model
    count = parameter_count(config, 60, 60)
    assert check_model_fits(config, 60, 60, training=True) == 4 * TRAINING_COPIES * count
    assert check_model_fits(config, 60, 60, training=False) == 4 * LOADING_COPIES * count


def test_a_model_over_the_available_memory_is_refused_with_the_figure_and_key():
    config = tiny_config(**HUGE).model
    with pytest.raises(ConfigError) as info:
        check_model_fits(config, 60, 60, training=True, available=8 * 10**9)
    message = str(info.value)
    assert "53,600,039,772 parameters: 857.6 GB for training" in message
    assert "more than the 8.0 GB of memory available" in message
    assert message.endswith("reduce model.embedding_size=100000000")


def test_the_keys_named_are_those_that_make_the_size():
    config = tiny_config(**{"model.decoder_hidden": 200_000}).model
    assert size_keys(config, 60, 60) == ["model.decoder_hidden=200000"]
    assert size_keys(tiny_config().model, 100_000, 60)[0] == "source vocabulary=100000"


def test_available_memory_is_a_positive_figure():
    assert available_memory() > 0


def test_train_refuses_a_huge_model_before_any_work(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("data:\n  corpus: synthetic:reverse\n", encoding="utf-8")
    line = fails_cleanly(
        "train", config, "-o", tmp_path / "run", "--set", "model.embedding_size=100000000"
    )
    assert "parameters" in line and "reduce model.embedding_size=100000000" in line
    assert not (tmp_path / "run").exists()  # refused before the vocabulary was trained


def test_loading_a_run_too_big_for_memory_is_refused(tiny_run, monkeypatch):
    monkeypatch.setattr("softalign.model_size.available_memory", lambda device: 1000)
    with pytest.raises(ConfigError, match="for loading the run, more than the 0.0 GB"):
        Translator.load(tiny_run)
