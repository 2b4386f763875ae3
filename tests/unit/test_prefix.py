"""Forced target prefixes: outputs start with the prefix, and the search goes on after it."""

import math

import pytest
import torch
from tests.helpers import tiny_model

from softalign.data.batching import collate
from softalign.data.vocab import PAD_ID
from softalign.decoding.beam import beam_search
from softalign.decoding.greedy import greedy_search
from softalign.decoding.penalties import max_output_lengths
from softalign.decoding.prefix import force_rows, prefix_tensor
from softalign.decoding.search import decode_ids
from softalign.fast import accelerate

SOURCES = [[5, 6, 7, 8], [9, 10, 11], [12, 13, 14, 15, 16, 17]]


def test_force_rows_leaves_one_word_to_active_rows_only():
    log_probs = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]]))
    forced = force_rows(log_probs, torch.tensor([2, 0]), torch.tensor([True, False]))
    assert forced[0].tolist() == [-math.inf, -math.inf, log_probs[0, 2].item()]
    assert forced[1].equal(log_probs[1])


def test_prefix_tensor_pads_with_the_free_marker():
    assert prefix_tensor([[4, 5], [], [6]], "cpu").tolist() == [[4, 5], [PAD_ID, PAD_ID], [6, 0]]


def test_outputs_start_with_their_prefix_greedy_and_beam():
    model = tiny_model()
    prefixes = [[11, 12, 13], [], [19]]
    for beam in (1, 3):
        found = decode_ids(model, SOURCES, beam=beam, nbest=beam, prefixes=prefixes)
        for hypotheses, prefix in zip(found, prefixes, strict=True):
            assert all(h.tokens[: len(prefix)] == prefix for h in hypotheses)


def test_forcing_what_the_search_would_choose_changes_nothing():
    model = tiny_model()
    for beam in (1, 3):
        free = decode_ids(model, SOURCES, beam=beam, length_penalty=0.0)
        prefixes = [h[0].tokens[:2] for h in free]
        forced = decode_ids(model, SOURCES, beam=beam, length_penalty=0.0, prefixes=prefixes)
        for a, b in zip(free, forced, strict=True):
            assert a[0].tokens == b[0].tokens
            assert math.isclose(a[0].score, b[0].score, rel_tol=1e-5)


def test_an_empty_prefix_is_no_prefix():
    model = tiny_model()
    free = decode_ids(model, SOURCES, beam=3)
    assert [h[0].tokens for h in decode_ids(model, SOURCES, beam=3, prefixes=[[]] * 3)] == [
        h[0].tokens for h in free
    ]


def test_with_a_prefix_a_beam_of_one_equals_greedy():
    model = tiny_model()
    batch = collate(list(range(len(SOURCES))), SOURCES)
    limits = max_output_lengths(batch.src_lengths, 2.0, 200)
    prefix = prefix_tensor([[14, 15], [16], [17, 18, 19]], "cpu")
    with torch.no_grad():
        greedy = greedy_search(model, batch.src, batch.src_lengths, limits, prefix=prefix)
        beam = beam_search(model, batch.src, batch.src_lengths, limits, beam=1, prefix=prefix)
    assert [h.tokens for h in greedy] == [found[0].tokens for found in beam]
    for g, found in zip(greedy, beam, strict=True):
        assert math.isclose(g.score, found[0].score, rel_tol=1e-5)


def test_a_prefix_longer_than_the_length_limit_is_still_forced_whole():
    model = tiny_model()
    prefix = [10, 11, 12, 13, 14, 15, 16, 17]
    [found] = decode_ids(model, [[5]], beam=2, max_length=3, prefixes=[prefix])
    assert found[0].tokens[: len(prefix)] == prefix


@pytest.mark.parametrize("beam", [1, 3])
def test_the_fast_backend_forces_prefixes_like_the_reference(beam):
    prefixes = [[11, 12, 13], [], [19]]
    reference, fast = tiny_model(), accelerate(tiny_model())
    expected = decode_ids(reference, SOURCES, beam=beam, nbest=beam, prefixes=prefixes)
    found = decode_ids(fast, SOURCES, beam=beam, nbest=beam, prefixes=prefixes)
    for a, b in zip(expected, found, strict=True):
        assert [h.tokens for h in a] == [h.tokens for h in b]
        assert [h.score for h in a] == pytest.approx([h.score for h in b], rel=1e-4)
