"""Decode many id sequences: length-sorted token batches, greedy or beam, input order kept."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from softalign.data.batching import collate, token_batches
from softalign.decoding.beam import beam_search
from softalign.decoding.greedy import greedy_search
from softalign.decoding.hypothesis import Hypothesis
from softalign.decoding.penalties import max_output_lengths
from softalign.model.seq2seq import Seq2Seq


def decode_ids(
    model: Seq2Seq,
    src_ids: Sequence[Sequence[int]],
    *,
    beam: int = 1,
    nbest: int = 1,
    length_penalty: float = 0.0,
    max_length_ratio: float = 2.0,
    max_length: int = 200,
    batch_tokens: int = 4000,
    device: torch.device | str = "cpu",
) -> list[list[Hypothesis]]:
    """Hypotheses (best first, up to ``nbest``) for every non-empty id sequence, in order.

    Beam batches hold ``batch_tokens / beam`` source tokens so that memory stays bounded.
    """
    was_training = model.training
    model.eval()
    results: list[list[Hypothesis]] = [[] for _ in src_ids]
    budget = max(1, batch_tokens // beam)
    with torch.inference_mode():
        for indices in token_batches([len(s) for s in src_ids], None, budget):
            batch = collate(indices, src_ids).to(torch.device(device))
            limits = max_output_lengths(batch.src_lengths, max_length_ratio, max_length)
            if beam == 1 and nbest == 1:
                found = [[h] for h in greedy_search(model, batch.src, batch.src_lengths, limits)]
            else:
                found = beam_search(
                    model,
                    batch.src,
                    batch.src_lengths,
                    limits,
                    beam=beam,
                    length_penalty=length_penalty,
                    nbest=nbest,
                )
            for index, hypotheses in zip(indices, found, strict=True):
                results[index] = hypotheses
    model.train(was_training)
    return results
