"""Greedy and beam search, driven by hand-made log-probabilities and by a small real model."""

import contextlib
import math

import pytest
import torch
from tests.helpers import tiny_model

from softalign.data.vocab import BOS_ID, EOS_ID
from softalign.decoding.beam import BeamSearch, beam_search
from softalign.decoding.greedy import greedy_search
from softalign.decoding.penalties import gnmt_length_penalty
from softalign.decoding.search import decode_ids

V = 8  # ids 4..7 are words


class MarkovModel:
    """A stand-in for Seq2Seq whose next-word distribution depends only on the last word.

    With ``output_ids`` its scores cover only those ids, column r scoring ``output_ids[r]``,
    as a model whose generator keeps the words seen in training."""

    def __init__(self, table: dict[int, dict[int, float]], output_ids: list[int] | None = None):
        self.table = torch.full((V, V), -1e9)
        for prev, nexts in table.items():
            for word, prob in nexts.items():
                self.table[prev, word] = math.log(prob)
        self.output_ids = None if output_ids is None else torch.tensor(output_ids)
        self.training = False

    def start(self, src, src_lengths):
        return _State(src.size(0))

    def step(self, tokens, state):
        scores = self.table[tokens]
        if self.output_ids is not None:
            scores = scores[:, self.output_ids]
        return scores, torch.full((tokens.size(0), 1), 1.0), state

    def step_best(self, tokens, state, k):
        log_probs, weights, state = self.step(tokens, state)
        values, rows = log_probs.topk(min(k, log_probs.size(-1)), dim=-1)
        return values, rows, weights, state

    def output_words(self, rows):
        return rows if self.output_ids is None else self.output_ids[rows]

    def worth_compacting(self, rows, left):
        return left < rows

    def decoding(self, cache=None):
        return contextlib.nullcontext()


class _State:
    def __init__(self, n):
        self.n = n

    def select(self, rows, sources=None):
        return _State(rows.numel())

    def repeat(self, times):
        return _State(self.n * times)


# greedy takes 4 (0.6) then must end badly; the best sequence starts with 5 (0.4)
TRAP = {
    BOS_ID: {4: 0.6, 5: 0.4},
    4: {6: 0.3, 7: 0.3, EOS_ID: 0.4},
    5: {EOS_ID: 1.0},
    6: {EOS_ID: 1.0},
    7: {EOS_ID: 1.0},
}


def run_beam(model, beam, nbest=1, alpha=0.0, max_len=10):
    src = torch.ones(1, 1, dtype=torch.long)
    return beam_search(
        model,
        src,
        torch.tensor([1]),
        torch.tensor([max_len]),
        beam=beam,
        nbest=nbest,
        length_penalty=alpha,
    )[0]


def test_beam_finds_the_better_sequence_greedy_misses():
    model = MarkovModel(TRAP)
    src = torch.ones(1, 1, dtype=torch.long)
    greedy = greedy_search(model, src, torch.tensor([1]), torch.tensor([10]))[0]
    assert greedy.tokens == [4]  # 0.6 * 0.4 = 0.24
    best = run_beam(model, beam=2)[0]
    assert best.tokens == [5]  # 0.4 * 1.0 = 0.4
    assert best.score == pytest.approx(math.log(0.4), abs=1e-5)


def test_searches_map_generator_rows_back_to_vocabulary_ids():
    # a generator without rows for ids 0 (PAD) and 2 (BOS): columns shift, words must not
    kept = MarkovModel(TRAP, output_ids=[1, 3, 4, 5, 6, 7])
    src = torch.ones(1, 1, dtype=torch.long)
    assert greedy_search(kept, src, torch.tensor([1]), torch.tensor([10]))[0].tokens == [4]
    full, found = run_beam(MarkovModel(TRAP), 4, nbest=4), run_beam(kept, 4, nbest=4)
    assert [(h.tokens, round(h.score, 5)) for h in found] == [
        (h.tokens, round(h.score, 5)) for h in full
    ]


def test_nbest_is_sorted_and_distinct():
    hyps = run_beam(MarkovModel(TRAP), beam=4, nbest=4)
    scores = [h.score for h in hyps]
    assert scores == sorted(scores, reverse=True)
    assert len({tuple(h.tokens) for h in hyps}) == len(hyps) == 4
    assert [h.tokens for h in hyps][:2] == [[5], [4]]


def test_length_limit_is_respected():
    loop = {BOS_ID: {4: 1.0}, 4: {4: 0.9, EOS_ID: 0.1}}
    hyps = run_beam(MarkovModel(loop), beam=3, nbest=3, max_len=6)
    assert all(len(h.tokens) <= 6 for h in hyps)


def test_length_penalty_prefers_longer_hypotheses():
    table = {BOS_ID: {EOS_ID: 0.5, 4: 0.5}, 4: {5: 1.0}, 5: {EOS_ID: 1.0}}
    assert run_beam(MarkovModel(table), beam=2, alpha=0.0)[0].tokens == []
    # equal probability; alpha > 0 divides by a larger penalty for the longer one
    longer = run_beam(MarkovModel(table), beam=2, alpha=1.0)[0]
    assert longer.tokens == [4, 5]
    assert longer.score == pytest.approx(math.log(0.5) / gnmt_length_penalty(3, 1.0), abs=1e-5)


def test_beam_search_state_never_needs_the_model():
    search = BeamSearch(batch=2, beam=2, max_lengths=torch.tensor([5, 5]))
    log_probs = torch.full((4, V), -1e9)
    log_probs[:, EOS_ID] = math.log(0.7)
    log_probs[:, 4] = math.log(0.3)
    select = search.advance(log_probs, None)
    # both sentences finish their top candidate (EOS) but 4 is still alive and scored lower
    assert search.done
    assert select.numel() == 0
    assert [h[0].tokens for h in search.results()] == [[], []]


@pytest.mark.parametrize("attention", ["additive", "dot", "general", "none"])
def test_beam_of_one_equals_greedy(attention):
    model = tiny_model(attention)
    torch.manual_seed(3)
    src = torch.randint(4, 20, (6, 7))
    lengths = torch.tensor([7, 6, 5, 3, 2, 1])
    src[torch.arange(7) >= lengths.unsqueeze(1)] = 0
    limits = torch.full((6,), 12)
    greedy = greedy_search(model, src, lengths, limits)
    beam = beam_search(model, src, lengths, limits, beam=1)
    for g, b in zip(greedy, beam, strict=True):
        assert g.tokens == b[0].tokens
        assert g.score == pytest.approx(b[0].score, abs=1e-4)
        if g.attention is not None:
            assert torch.allclose(g.attention, b[0].attention, atol=1e-5)


def test_greedy_rows_that_ended_and_stay_in_the_batch_change_no_hypothesis():
    """Under bf16 greedy keeps ended sentences in the batch until fewer padded rows would do:
    every sentence gets the words, score and attention it gets decoded alone."""
    model = tiny_model()
    torch.manual_seed(4)
    src = torch.randint(4, 20, (6, 7))
    lengths = torch.tensor([7, 6, 5, 3, 2, 1])
    src[torch.arange(7) >= lengths.unsqueeze(1)] = 0
    limits = torch.tensor([12, 2, 9, 1, 5, 12])  # rows end at different steps
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        together = greedy_search(model, src, lengths, limits)
        alone = [
            greedy_search(model, src[i : i + 1], lengths[i : i + 1], limits[i : i + 1])[0]
            for i in range(6)
        ]
    assert {len(h.tokens) for h in together} != {len(together[0].tokens)}  # ends differ
    for both, one in zip(together, alone, strict=True):
        assert both.tokens == one.tokens
        assert both.score == pytest.approx(one.score, abs=1e-3)
        assert torch.allclose(both.attention, one.attention, atol=1e-2)


@pytest.mark.parametrize("beam", [1, 3])
def test_searches_without_attention_find_the_same_hypotheses(beam):
    model = tiny_model()
    sources = [[5, 9, 4, 7], [12, 6], [8, 8, 8, 13, 4, 5]]
    kept = decode_ids(model, sources, beam=beam, nbest=beam)
    bare = decode_ids(model, sources, beam=beam, nbest=beam, attention=False)
    for with_attention, without in zip(kept, bare, strict=True):
        assert [h.tokens for h in with_attention] == [h.tokens for h in without]
        assert [h.score for h in with_attention] == [h.score for h in without]
        assert all(h.attention is not None for h in with_attention)
        assert all(h.attention is None for h in without)


def test_batched_beam_equals_one_sentence_at_a_time():
    model = tiny_model(rnn_type="lstm")
    torch.manual_seed(4)
    src = torch.randint(4, 20, (4, 5))
    lengths = torch.tensor([5, 5, 4, 2])
    src[torch.arange(5) >= lengths.unsqueeze(1)] = 0
    limits = torch.full((4,), 9)
    together = beam_search(model, src, lengths, limits, beam=3, nbest=2)
    for i in range(4):
        n = int(lengths[i])
        alone = beam_search(
            model, src[i : i + 1, :n], lengths[i : i + 1], limits[:1], beam=3, nbest=2
        )[0]
        assert [h.tokens for h in alone] == [h.tokens for h in together[i]]
        assert alone[0].attention.shape == (len(alone[0].tokens), n)


@pytest.mark.parametrize("attention", ["additive", "dot", "general", "none"])
def test_beam_scores_are_the_models_log_probabilities_of_its_hypotheses(attention):
    """Hypotheses move between beams and sentences leave the batch while the beams share one
    copy of their source: every score must still be the teacher-forced log-probability."""
    model = tiny_model(attention, rnn_type="gru")
    torch.manual_seed(5)
    src = torch.randint(4, 20, (5, 6))
    lengths = torch.tensor([6, 5, 3, 2, 1])
    src[torch.arange(6) >= lengths.unsqueeze(1)] = 0
    limit = 8
    found = beam_search(model, src, lengths, torch.full((5,), limit), beam=3, nbest=3)
    for i, hypotheses in enumerate(found):
        assert len(hypotheses) == 3
        for hypothesis in hypotheses:
            tokens = hypothesis.tokens + ([EOS_ID] if len(hypothesis.tokens) < limit else [])
            tgt_in = torch.tensor([[BOS_ID, *tokens[:-1]]])
            with torch.no_grad():
                attentional, _ = model(src[i : i + 1], lengths[i : i + 1], tgt_in)
                log_probs = torch.log_softmax(model.logits(attentional), -1)[0]
            expected = float(log_probs[torch.arange(len(tokens)), torch.tensor(tokens)].sum())
            assert hypothesis.score == pytest.approx(expected, abs=1e-4)
