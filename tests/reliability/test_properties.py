"""Property-based tests (hypothesis) of the text pipeline and of beam search.

Example counts are small so that the file runs in seconds; each property is still checked on
inputs nobody would write by hand (empty strings, surrogates, length-one beams, ties).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from softalign.data.batching import collate, token_batches
from softalign.data.synthetic import WORDS
from softalign.data.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID, SubwordVocab
from softalign.decoding.beam import BeamSearch
from softalign.decoding.penalties import gnmt_length_penalty
from softalign.decoding.search import decode_ids
from softalign.translator import Translator

FEW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEWER = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ANY_TEXT = st.text(  # every code point, surrogates and controls included
    alphabet=st.characters(codec=None, exclude_categories=()), max_size=40
)

# ------------------------------------------------------------------ SentencePiece


def vocab(tiny_run) -> SubwordVocab:
    return SubwordVocab.load(tiny_run / "spm.joint.model")


ALPHABET = sorted(set("".join(WORDS)))  # the letters the tiny vocabulary was trained on


@FEW
@given(st.lists(st.text(alphabet=[*ALPHABET, " "], max_size=30), min_size=1, max_size=5))
def test_encode_then_decode_gives_back_text_over_the_training_alphabet(tiny_run, texts):
    spm = vocab(tiny_run)
    # SentencePiece normalises whitespace: runs collapse, the ends are stripped
    assert spm.decode(spm.encode(texts)) == [" ".join(t.split()) for t in texts]


@FEW
@given(st.lists(ANY_TEXT, min_size=1, max_size=5))
def test_any_text_encodes_to_valid_ids_and_decodes_to_one_line(tiny_run, texts):
    spm = vocab(tiny_run)
    ids = spm.encode(texts)
    assert len(ids) == len(texts)
    for seq in ids:
        assert all(i == UNK_ID or (EOS_ID < i < len(spm)) for i in seq)
    for text in spm.decode(ids):
        assert isinstance(text, str) and "\n" not in text


# ------------------------------------------------------------------------ batching

LENGTHS = st.lists(st.integers(1, 60), min_size=1, max_size=80)


@FEW
@given(LENGTHS, st.integers(1, 400), st.one_of(st.none(), st.integers(0, 5)), st.integers(0, 3))
def test_token_batches_hold_every_example_exactly_once_within_budget(
    src_lengths, max_tokens, seed, epoch
):
    tgt_lengths = [(n * 7) % 50 + 1 for n in src_lengths]
    batches = token_batches(src_lengths, tgt_lengths, max_tokens, seed=seed, epoch=epoch)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(src_lengths)))
    for batch in batches:
        width = max(max(src_lengths[i], tgt_lengths[i] + 1) for i in batch)
        assert len(batch) == 1 or len(batch) * width <= max_tokens
    again = token_batches(src_lengths, tgt_lengths, max_tokens, seed=seed, epoch=epoch)
    assert again == batches  # deterministic: a resumed run sees the same batches


@FEW
@given(st.lists(st.lists(st.integers(4, 30), min_size=1, max_size=12), min_size=1, max_size=10))
def test_collate_pads_without_losing_or_moving_a_word(sequences):
    indices = list(range(len(sequences)))[::-1]
    batch = collate(indices, sequences, sequences)
    for row, index in enumerate(indices):
        n = len(sequences[index])
        assert batch.src[row, :n].tolist() == sequences[index]
        assert batch.pad_mask[row].tolist() == [False] * n + [True] * (batch.src.size(1) - n)
        assert batch.tgt_in[row, : n + 1].tolist() == [BOS_ID, *sequences[index]]
        assert batch.tgt_out[row, : n + 1].tolist() == [*sequences[index], EOS_ID]


# --------------------------------------------------- decoding keeps every line, in order

COPY_VOCAB = 32


@dataclass
class CopyState:
    src: torch.Tensor  # (rows, src_len)
    lengths: torch.Tensor  # (rows,)
    position: torch.Tensor  # (rows,) the next source word to emit

    def select(self, rows: torch.Tensor, sources: torch.Tensor | None = None) -> CopyState:
        # every hypothesis row keeps its own copy of the source, so ``sources`` is not needed
        return CopyState(self.src[rows], self.lengths[rows], self.position[rows])

    def repeat(self, times: int) -> CopyState:
        return self.select(torch.arange(self.src.size(0)).repeat_interleave(times))


class CopyModel:
    """A stand-in model that confidently emits its source, then EOS (ids 4.. are words)."""

    training = False
    output_ids = None  # its scores cover every id

    def eval(self) -> CopyModel:
        return self

    def train(self, mode: bool = True) -> CopyModel:
        return self

    def start(self, src: torch.Tensor, src_lengths: torch.Tensor) -> CopyState:
        return CopyState(src, src_lengths.to(src.device), torch.zeros_like(src_lengths))

    def step(self, tokens: torch.Tensor, state: CopyState):
        rows = torch.arange(tokens.size(0))
        at = state.position.clamp(max=state.src.size(1) - 1)
        word = torch.where(state.position < state.lengths, state.src[rows, at], EOS_ID)
        logits = torch.zeros(tokens.size(0), COPY_VOCAB)
        logits[rows, word] = 8.0
        logits[:, PAD_ID] = -1e4
        return logits.log_softmax(-1), None, CopyState(state.src, state.lengths, state.position + 1)

    def step_best(self, tokens: torch.Tensor, state: CopyState, k: int):
        log_probs, weights, state = self.step(tokens, state)
        values, rows = log_probs.topk(min(k, log_probs.size(-1)), dim=-1)
        return values, rows, weights, state

    def decoding(self, cache=None):
        return contextlib.nullcontext()

    def worth_compacting(self, rows: int, left: int) -> bool:
        return left < rows

    def output_words(self, rows: torch.Tensor) -> torch.Tensor:
        return rows


@FEWER
@given(
    st.lists(st.lists(st.integers(4, COPY_VOCAB - 1), min_size=1, max_size=15), max_size=25),
    st.integers(1, 4),
    st.integers(1, 200),
)
def test_decoding_returns_every_line_once_and_in_input_order(sources, beam, batch_tokens):
    found = decode_ids(CopyModel(), sources, beam=beam, batch_tokens=batch_tokens)
    assert [hyps[0].tokens for hyps in found] == sources


# ---------------------------------------------------------------------- beam search


def run_search(batch, beam, nbest, limits, alpha, vocab_size, seed, eos_bias, shared):
    """Drive BeamSearch with random log-probabilities; return it and each step's log-probs.

    ``shared``: every row gets the same log-probs at a step (so scores can be recomputed).
    """
    generator = torch.Generator().manual_seed(seed)
    search = BeamSearch(
        batch=batch,
        beam=beam,
        max_lengths=torch.tensor(limits),
        length_penalty=alpha,
        nbest=nbest,
    )
    history = []
    while not search.done:
        rows = search.sentences.numel() * beam
        logits = torch.randn(1 if shared else rows, vocab_size, generator=generator)
        logits[:, EOS_ID] += eos_bias
        log_probs = logits.log_softmax(-1).expand(rows, vocab_size)
        history.append(log_probs[0])
        search.advance(log_probs, None)
        assert len(history) <= max(limits), "the search ran past its length limit"
    return search, history


SEARCH = dict(
    batch=st.integers(1, 4),
    beam=st.integers(1, 4),
    nbest_fraction=st.sampled_from([0.0, 0.5, 1.0]),
    limits_seed=st.lists(st.integers(1, 8), min_size=4, max_size=4),
    alpha=st.sampled_from([0.0, 0.6, 1.0]),
    vocab_size=st.integers(6, 12),
    seed=st.integers(0, 2**16),
    eos_bias=st.sampled_from([-3.0, -1.0, 0.0, 1.0, 3.0]),  # no st.floats: see below
)


# (training sets torch.set_flush_denormal(True), process-wide, which st.floats refuses)


def nbest_of(beam: int, fraction: float) -> int:
    return 1 + int(fraction * (beam - 1))


@FEW
@given(**SEARCH)
def test_beam_results_are_sorted_bounded_and_nbest_long(
    batch, beam, nbest_fraction, limits_seed, alpha, vocab_size, seed, eos_bias
):
    nbest, limits = nbest_of(beam, nbest_fraction), limits_seed[:batch]
    search, _ = run_search(batch, beam, nbest, limits, alpha, vocab_size, seed, eos_bias, False)
    results = search.results()
    assert len(results) == batch
    for hypotheses, limit in zip(results, limits, strict=True):
        scores = [h.score for h in hypotheses]
        assert len(hypotheses) == nbest
        assert scores == sorted(scores, reverse=True)
        assert all(math.isfinite(s) and s <= 0 for s in scores)
        for h in hypotheses:
            assert 0 <= len(h.tokens) <= limit and EOS_ID not in h.tokens


@FEW
@given(**SEARCH)
def test_beam_scores_are_the_path_log_probability_over_the_length_penalty(
    batch, beam, nbest_fraction, limits_seed, alpha, vocab_size, seed, eos_bias
):
    nbest, limits = nbest_of(beam, nbest_fraction), limits_seed[:batch]
    search, history = run_search(
        batch, beam, nbest, limits, alpha, vocab_size, seed, eos_bias, True
    )
    for hypotheses, limit in zip(search.results(), limits, strict=True):
        for h in hypotheses:
            raw = sum(float(history[t][word]) for t, word in enumerate(h.tokens))
            length = len(h.tokens)
            if length < limit:  # ended by EOS at step length + 1
                raw += float(history[length][EOS_ID])
                length += 1
            expected = raw / gnmt_length_penalty(length, alpha)
            assert abs(h.score - expected) < 1e-4 * max(1.0, abs(expected))


# ----------------------------------------------------------- translation of any text


@FEWER
@given(st.lists(ANY_TEXT, min_size=1, max_size=6))
def test_any_text_translates_to_exactly_one_line_each(tiny_run, texts):
    results = translator(tiny_run).translate(texts, beam=2)
    assert [r.source for r in results] == texts
    for result in results:
        assert isinstance(result.text, str) and "\n" not in result.text
        if not result.source.strip():
            assert result.text == ""


_TRANSLATORS: dict = {}


def translator(run) -> Translator:
    if run not in _TRANSLATORS:
        _TRANSLATORS[run] = Translator.load(run)
    return _TRANSLATORS[run]
