"""The FLOP count behind the benchmark's MFU column (benchmarks/peers_flops.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from peers_flops import (  # noqa: E402
    ModelShape,
    forward_macs,
    search_macs,
    train_flops_per_target_token,
)

ONES = ModelShape(
    embedding=1,
    encoder_hidden=1,
    encoder_layers=1,
    directions=1,
    decoder_hidden=1,
    attention=1,
    output=1,
)


def test_unit_sizes_count_every_matrix_once_by_hand():
    # encoder 3·(1+1) + keys 1 = 7 per source token; bridge 1 per sentence;
    # decoder 3·2 + 3 + 1 + 2 + 1 + generator 1 = 14 per target token; scores 2 per (t, j)
    assert forward_macs(ONES, 1, [1], [1]) == 7 + 1 + 14 + 2


def test_generator_costs_output_size_times_vocab_per_target_token():
    shape = ModelShape()
    small = forward_macs(shape, 5000, [10, 20], [12, 25])
    large = forward_macs(shape, 8000, [10, 20], [12, 25])
    assert large - small == (12 + 25) * shape.output * 3000


def test_training_is_three_forward_passes_of_two_flops_per_multiply_add():
    macs = forward_macs(ModelShape(), 8000, [14, 15], [16, 17])
    assert train_flops_per_target_token(ModelShape(), 8000, [14, 15], [16, 17]) == 6 * macs / 33


def test_greedy_search_costs_a_forward_pass_over_its_output_and_its_eos():
    shape = ModelShape()
    assert search_macs(shape, 4000, [10, 20], [11, 24]) == forward_macs(
        shape, 4000, [10, 20], [12, 25]
    )


def test_a_beam_multiplies_the_decoder_steps_but_reads_the_source_once():
    # unit sizes: 7 per source token and 1 bridge once; 14 + 2 per decoder step and hypothesis
    assert search_macs(ONES, 1, [1], [0], beam=5) == 7 + 1 + 5 * (14 + 2)
    shape = ModelShape()
    greedy = search_macs(shape, 4000, [10, 20], [11, 24])
    beam = search_macs(shape, 4000, [10, 20], [11, 24], beam=5)
    encoder = forward_macs(shape, 4000, [10, 20], [0, 0])
    assert beam - encoder == 5 * (greedy - encoder)
