"""Ensembles: the members' next-word probabilities averaged, on the searches unchanged."""

import math

import pytest
import torch
from tests.helpers import tiny_config, tiny_model

from softalign.data.vocab import BOS_ID
from softalign.decoding.ensemble import Ensemble, load_ensemble
from softalign.decoding.search import decode_ids
from softalign.errors import SoftalignError
from softalign.fast import accelerate
from softalign.train.loop import train
from softalign.translator import Translator

SOURCES = [[5, 6, 7, 8], [9, 10, 11], [12, 13, 14, 15, 16, 17]]


def model_with_output_ids(ids):
    return tiny_model(seed=1, output_ids=ids)


def first_step(model, src):
    state = model.start(src, torch.tensor([src.size(1)]))
    return model.step(torch.tensor([BOS_ID]), state)


def test_step_averages_probabilities_in_vocabulary_space():
    a, b = tiny_model(), model_with_output_ids([1, 3, 5, 7, 9])
    src = torch.tensor([SOURCES[0]])
    with torch.no_grad():
        pa, wa, _ = first_step(a, src)
        pb, wb, _ = first_step(b, src)
        mean, weights, _ = first_step(Ensemble([a, b], 20), src)
    expected = torch.log(pa.exp() / 2)  # b gives 0 to words outside its rows
    expected[0, [1, 3, 5, 7, 9]] = torch.log((pa[0, [1, 3, 5, 7, 9]].exp() + pb[0].exp()) / 2)
    torch.testing.assert_close(mean, expected)
    assert math.isclose(float(mean.exp().sum()), 1.0, rel_tol=1e-5)
    torch.testing.assert_close(weights, (wa + wb) / 2)


@pytest.mark.parametrize("beam", [1, 3])
def test_an_ensemble_of_copies_decodes_like_the_model(beam):
    for model in (tiny_model(), model_with_output_ids([1, 3, 4, 6, 8, 10, 12, 14, 16, 18])):
        alone = decode_ids(model, SOURCES, beam=beam, nbest=beam)
        together = decode_ids(Ensemble([model, model], 20), SOURCES, beam=beam, nbest=beam)
        for a, b in zip(alone, together, strict=True):
            assert [h.tokens for h in a] == [h.tokens for h in b]
            assert [h.score for h in a] == pytest.approx([h.score for h in b], rel=1e-5)


@pytest.mark.parametrize("beam", [1, 3])
def test_an_ensemble_of_fast_members_decodes_like_one_of_reference_members(beam):
    """The fast backend's modules (packed weights, k best words in one pass, rows kept after
    their end) under an ensemble: the same outputs as the reference members."""
    ids = [1, 3, 4, 6, 8, 10, 12, 14, 16, 18]
    reference = Ensemble([tiny_model(), model_with_output_ids(ids)], 20)
    fast = Ensemble([accelerate(tiny_model()), accelerate(model_with_output_ids(ids))], 20)
    prefixes = [[13], [], [14, 16]]
    for options in ({}, {"prefixes": prefixes}):
        expected = decode_ids(reference, SOURCES, beam=beam, nbest=beam, **options)
        found = decode_ids(fast, SOURCES, beam=beam, nbest=beam, cache={}, **options)
        for a, b in zip(expected, found, strict=True):
            assert [h.tokens for h in a] == [h.tokens for h in b]
            assert [h.score for h in a] == pytest.approx([h.score for h in b], rel=1e-4)


def test_ensemble_searches_take_prefixes():
    model = tiny_model()
    found = decode_ids(Ensemble([model, model], 20), SOURCES, beam=2, prefixes=[[13, 14]] * 3)
    assert all(h[0].tokens[:2] == [13, 14] for h in found)


def test_load_ensemble_of_runs_and_refusal_of_other_vocabularies(tiny_run, tmp_path):
    texts = ["ba be bi bo", "ko ku ka ga"]
    single = Translator.load(tiny_run).translate(texts, beam=3)
    both = load_ensemble([tiny_run, tiny_run]).translate(texts, beam=3)
    assert [t.text for t in both] == [t.text for t in single]
    other = tmp_path / "other"
    quick = {"training.max_steps": 10, "training.valid_every": 10, "data.vocab.size": 45}
    train(tiny_config(**quick), other, progress=False)
    with pytest.raises(SoftalignError, match="vocabulary differs") as caught:
        load_ensemble([tiny_run, other])
    assert str(other) in str(caught.value) and "\n" not in str(caught.value)
