"""Batched beam search. :class:`BeamSearch` holds the search state and never calls the model;
:func:`beam_search` is the loop that alternates model steps and :meth:`BeamSearch.advance`.

Each step expands every alive hypothesis of every sentence, keeps the 2K best candidates per
sentence (K = beam size), records candidates ending in EOS among the top K as finished (scored
by log-probability / GNMT length penalty), and continues with the K best that do not end in
EOS. A sentence is done once it has K finished hypotheses (as in fairseq), or ``nbest`` of
them and no alive hypothesis could still beat them (log-probabilities only fall, so an alive
one can at best reach ``score / lp(length limit)``), or at its length limit; done sentences
leave the batch, so the model computes only for the rest.
"""

from __future__ import annotations

import torch

from softalign.data.vocab import BOS_ID, EOS_ID, PAD_ID
from softalign.decoding.hypothesis import Hypothesis
from softalign.decoding.penalties import gnmt_length_penalty
from softalign.decoding.prefix import force_rows
from softalign.model.seq2seq import Seq2Seq


class BeamSearch:
    """Search state for ``batch`` sentences with ``beam`` hypotheses each.

    Rows of the model's state are ordered sentence-major: row ``i * beam + k`` is hypothesis
    k of the i-th *alive* sentence.
    """

    def __init__(
        self,
        *,
        batch: int,
        beam: int,
        max_lengths: torch.Tensor,
        length_penalty: float = 0.0,
        nbest: int = 1,
        src_lengths: torch.Tensor | None = None,
        output_ids: torch.Tensor | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        """``output_ids``: the vocabulary id of each log-probability column (default: the
        column index itself)."""
        if not 1 <= nbest <= beam:
            raise ValueError(f"nbest must be in [1, beam={beam}], got {nbest}")
        self.beam, self.nbest, self.alpha = beam, nbest, length_penalty
        self.max_lengths = max_lengths.tolist()
        self.src_lengths = None if src_lengths is None else src_lengths.tolist()
        self.output_ids = output_ids
        self.sentences = torch.arange(batch, device=device)  # original index of alive rows
        self.scores = torch.full((batch, beam), float("-inf"), device=device)
        self.scores[:, 0] = 0.0  # all beams start identical: expand only the first
        self.sequences = torch.full((batch * beam, 0), BOS_ID, dtype=torch.long, device=device)
        self.attention: torch.Tensor | None = None  # (alive rows, steps, src_len)
        self.finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
        self.step = 0
        # the previously alive sentences still alive after the last step (None: all of them)
        self.kept: torch.Tensor | None = None

    @property
    def done(self) -> bool:
        return self.sentences.numel() == 0

    @property
    def last_tokens(self) -> torch.Tensor:
        """(alive rows,) the newest word of every alive hypothesis: the next model input."""
        return self.sequences[:, -1]

    def advance(self, log_probs: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        """Extend the search by one word.

        log_probs: (alive rows, output words); weights: (alive rows, src_len) or None.
        Returns the indices (new alive rows,) of the previous rows each new row continues:
        reorder the model state with them; :attr:`kept` says which sentences stayed.
        """
        word_scores, word_ids = log_probs.topk(self.width(log_probs.size(-1)), dim=-1)
        return self.advance_best(word_scores, word_ids, weights)

    def width(self, words: int) -> int:
        """How many of each hypothesis's best words :meth:`advance_best` needs: K + 1.

        A sentence's K best extensions that do not end in EOS, and the EOS ones among its K
        best, are among the K+1 best words of their hypothesis (a word with K+1 better words in
        its row, at most one of them EOS, has K better extensions not ending in EOS), so the
        scores are added to (rows, K+1) instead of (rows, vocab)."""
        return min(self.beam + 1, words)

    def advance_best(
        self, word_scores: torch.Tensor, word_ids: torch.Tensor, weights: torch.Tensor | None
    ) -> torch.Tensor:
        """:meth:`advance` given each alive row's :meth:`width` best log-probabilities
        (rows, width), best first, and their columns."""
        alive, beam = self.sentences.numel(), self.beam
        width = word_scores.size(-1)
        self.step += 1
        if self.output_ids is not None:
            word_ids = self.output_ids[word_ids]
        candidates = (self.scores.unsqueeze(-1) + word_scores.view(alive, beam, width)).view(
            alive, -1
        )
        top_scores, top_ids = candidates.topk(min(2 * beam, candidates.size(1)), dim=-1)  # sorted
        origins = torch.div(top_ids, width, rounding_mode="floor")  # beam each extends
        words = word_ids.view(alive, -1).gather(1, top_ids)
        is_eos = words == EOS_ID
        rows = origins + torch.arange(alive, device=origins.device).unsqueeze(1) * beam
        step = (rows, words, top_scores, weights)

        for i, rank in (is_eos[:, :beam] & torch.isfinite(top_scores[:, :beam])).nonzero().tolist():
            self._add(i, rank, step, ended=True)
        # the K best candidates that do not end in EOS continue
        keep_scores, keep = top_scores.masked_fill(is_eos, float("-inf")).topk(beam, dim=-1)
        done = self._sentences_done(keep_scores, keep, step)
        still = (~done).nonzero().squeeze(1)
        self.kept = None if still.numel() == alive else still
        keep = keep.index_select(0, still)
        self.scores = keep_scores.index_select(0, still)
        self.sentences = self.sentences.index_select(0, still)
        select = rows.index_select(0, still).gather(1, keep).view(-1)  # previous rows
        new_words = words.index_select(0, still).gather(1, keep).view(-1, 1)
        self.sequences = torch.cat([self.sequences.index_select(0, select), new_words], dim=1)
        if weights is not None:
            new = weights.index_select(0, select).unsqueeze(1)  # (rows, 1, src_len)
            old = None if self.attention is None else self.attention.index_select(0, select)
            self.attention = new if old is None else torch.cat([old, new], dim=1)
        return select

    # ------------------------------------------------------------------ helpers
    def _add(self, i: int, rank: int, step, ended: bool) -> None:
        """Record candidate ``rank`` of alive sentence ``i`` as a finished hypothesis."""
        rows, words, top_scores, weights = step
        row = int(rows[i, rank])
        sentence = int(self.sentences[i])
        tokens = self.sequences[row].tolist() + ([] if ended else [int(words[i, rank])])
        attn = None
        if weights is not None:
            steps = [weights[row : row + 1]]
            if self.attention is not None:
                steps.insert(0, self.attention[row])
            src_len = self.src_lengths[sentence] if self.src_lengths else weights.size(-1)
            attn = torch.cat(steps, dim=0)[: len(tokens), :src_len].cpu()
        score = float(top_scores[i, rank]) / gnmt_length_penalty(self.step, self.alpha)
        self.finished[sentence].append(Hypothesis(tokens, score, attn))

    def _sentences_done(self, keep_scores, keep, step) -> torch.Tensor:
        """(alive,) True for sentences that need no further step (finishing them)."""
        done = torch.zeros(keep_scores.size(0), dtype=torch.bool)
        best_raw = keep_scores[:, 0].tolist()
        finite = torch.isfinite(keep_scores).tolist()
        for i, sentence in enumerate(self.sentences.tolist()):
            if self.step >= self.max_lengths[sentence]:
                for k in range(self.beam):
                    if finite[i][k]:
                        self._add(i, int(keep[i, k]), step, ended=False)
                done[i] = True
                continue
            found = sorted((h.score for h in self.finished[sentence]), reverse=True)
            if len(found) >= self.beam:
                done[i] = True
            elif len(found) >= self.nbest:
                # log-probs only fall, so an alive hypothesis can at best reach raw / lp(limit)
                limit = self.max_lengths[sentence]
                penalty = gnmt_length_penalty(limit if best_raw[i] < 0 else self.step, self.alpha)
                done[i] = found[self.nbest - 1] >= best_raw[i] / penalty
        return done.to(keep_scores.device)

    def results(self) -> list[list[Hypothesis]]:
        """The ``nbest`` best finished hypotheses of every sentence, best first."""
        return [
            sorted(found, key=lambda h: h.score, reverse=True)[: self.nbest]
            for found in self.finished
        ]


@torch.no_grad()
def beam_search(
    model: Seq2Seq,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    max_lengths: torch.Tensor,
    *,
    beam: int,
    length_penalty: float = 0.0,
    nbest: int = 1,
    keep_attention: bool = True,
    prefix: torch.Tensor | None = None,
) -> list[list[Hypothesis]]:
    """Up to ``nbest`` hypotheses per source row, best first; ``keep_attention=False``: without
    their attention (the search then keeps no (rows, steps, src_len) history).
    ``prefix`` (batch, P): forced first words, PAD_ID where free (see ``decoding/prefix.py``):
    while it lasts, the search reads every word's log-probability (``model.step``)."""
    batch = src.size(0)
    state = model.start(src, src_lengths).repeat(beam)  # the beams share their source
    search = BeamSearch(
        batch=batch,
        beam=beam,
        max_lengths=max_lengths,
        length_penalty=length_penalty,
        nbest=nbest,
        src_lengths=src_lengths,
        output_ids=model.output_ids,
        device=src.device,
    )
    tokens = torch.full((batch * beam,), BOS_ID, dtype=torch.long, device=src.device)
    while True:  # each hypothesis's K+1 best words (fewer if the vocabulary is smaller)
        if prefix is not None and search.step < prefix.size(1):
            # (alive rows,) the prefix word of each hypothesis row's sentence at this step
            forced = prefix[search.sentences, search.step].repeat_interleave(beam)
            log_probs, weights, state = model.step(tokens, state)
            log_probs = force_rows(log_probs, model.output_rows(forced), forced != PAD_ID)
            select = search.advance(log_probs, weights if keep_attention else None)
        else:
            word_scores, word_rows, weights, state = model.step_best(tokens, state, beam + 1)
            select = search.advance_best(
                word_scores, word_rows, weights if keep_attention else None
            )
        if search.done:
            return search.results()
        state = state.select(select, search.kept)
        tokens = search.last_tokens
