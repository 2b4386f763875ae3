"""Decode many id sequences: length-sorted token batches, greedy or beam, input order kept."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from softalign.data.batching import collate, token_batches
from softalign.decoding.beam import beam_search
from softalign.decoding.greedy import greedy_search
from softalign.decoding.hypothesis import Hypothesis
from softalign.decoding.penalties import max_output_lengths
from softalign.decoding.prefix import prefix_tensor, restore_prefix
from softalign.fast.packed_weights import WeightPacks, packed_weights
from softalign.model.seq2seq import Seq2Seq
from softalign.precision import autocast


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
    precision: str = "fp32",
    attention: bool = True,
    weight_packs: WeightPacks | None = None,
    prefixes: Sequence[Sequence[int]] | None = None,
) -> list[list[Hypothesis]]:
    """Hypotheses (best first, up to ``nbest``) for every non-empty id sequence, in order.

    Beam batches hold ``batch_tokens / beam`` source tokens so that memory stays bounded.
    ``precision`` bf16 runs the model's products under bf16 autocast (see ``autocast``).
    ``attention=False``: the hypotheses carry no attention weights (faster beam search).
    On the CPU the products read weights packed once for the call (see
    ``model/packed_weights.py``), or kept in ``weight_packs`` across calls.
    ``prefixes``: forced first target ids of every sequence (see ``decoding/prefix.py``); a
    sentence's length limit then leaves room for one word after its prefix.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    results: list[list[Hypothesis]] = [[] for _ in src_ids]
    budget = max(1, batch_tokens // beam)
    # no_grad rather than inference_mode under autocast: only there does autocast cache the
    # low-precision copies of the weights instead of casting them at every step
    no_grad = torch.inference_mode() if precision == "fp32" else torch.no_grad()
    with no_grad, autocast(precision, device), packed_weights(weight_packs):
        for indices in token_batches([len(s) for s in src_ids], None, budget):
            batch = collate(indices, src_ids).to(device)
            limits = max_output_lengths(batch.src_lengths, max_length_ratio, max_length)
            prefix = None
            if prefixes is not None and any(prefixes[i] for i in indices):
                prefix = prefix_tensor([prefixes[i] for i in indices], device)
                needed = torch.tensor([len(prefixes[i]) + 1 for i in indices])
                limits = torch.maximum(limits, needed)
            if beam == 1 and nbest == 1:
                found = [
                    [h]
                    for h in greedy_search(
                        model, batch.src, batch.src_lengths, limits, attention, prefix
                    )
                ]
            else:
                found = beam_search(
                    model,
                    batch.src,
                    batch.src_lengths,
                    limits,
                    beam=beam,
                    length_penalty=length_penalty,
                    nbest=nbest,
                    keep_attention=attention,
                    prefix=prefix,
                )
            for index, hypotheses in zip(indices, found, strict=True):
                results[index] = hypotheses
                if prefix is not None:
                    restore_prefix(hypotheses, prefixes[index])
    model.train(was_training)
    return results
