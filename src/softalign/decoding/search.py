"""Decode many id sequences: length-sorted token batches, greedy or beam, input order kept."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from softalign.data.batching import collate, token_batches
from softalign.decoding.beam import beam_search
from softalign.decoding.greedy import greedy_search
from softalign.decoding.hypothesis import Hypothesis
from softalign.decoding.penalties import max_output_lengths
from softalign.decoding.prefix import prefix_tensor, restore_prefix
from softalign.model.seq2seq import Seq2Seq
from softalign.precision import autocast, resolve_precision


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
    cache: dict | None = None,
    progress: Callable[[int], None] | None = None,
    prefixes: Sequence[Sequence[int]] | None = None,
) -> list[list[Hypothesis]]:
    """Hypotheses (best first, up to ``nbest``) for every non-empty id sequence, in order.

    Beam batches hold ``batch_tokens / beam`` source tokens so that memory stays bounded.
    ``precision`` bf16 runs the model's products under bf16 autocast (see ``autocast``);
    ``auto`` is resolved for ``device`` (see ``resolve_precision``).
    ``attention=False``: the hypotheses carry no attention weights (faster beam search).
    The search runs inside ``model.decoding(cache)``: a backend's per-search state (the fast
    backend's packed weights), kept across calls in ``cache`` when given.
    ``progress(n)``, if given, is called after each batch with its number of sentences.
    ``prefixes``: forced first target ids of every sequence (see ``decoding/prefix.py``); a
    sentence's length limit then leaves room for one word after its prefix.
    """
    device = torch.device(device)
    precision = resolve_precision(precision, device, "decoding.precision")
    was_training = model.training
    model.eval()
    results: list[list[Hypothesis]] = [[] for _ in src_ids]
    budget = max(1, batch_tokens // beam)
    # no_grad rather than inference_mode under autocast: only there does autocast cache the
    # low-precision copies of the weights instead of casting them at every step
    no_grad = torch.inference_mode() if precision == "fp32" else torch.no_grad()
    with no_grad, autocast(precision, device), model.decoding(cache):
        for indices in token_batches([len(s) for s in src_ids], None, budget):
            batch = collate(indices, src_ids).to(device)
            limits = max_output_lengths(batch.src_lengths, max_length_ratio, max_length)
            prefix = None
            if prefixes is not None and any(prefixes[i] for i in indices):
                prefix = prefix_tensor([prefixes[i] for i in indices], device)
                needed = [len(prefixes[i]) + 1 for i in indices]
                limits = torch.maximum(limits, torch.tensor(needed, device=limits.device))
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
            if progress is not None:
                progress(len(indices))
    model.train(was_training)
    return results
