"""Model FLOP utilisation: matrix-multiply FLOPs of the model per target token, and the
machine's fp32 matrix-multiply peak measured with ``torch.matmul``.

Only matrix multiplications count (as in the usual MFU definitions); embeddings, gate
non-linearities, softmax and the optimizer do not. One multiply-add is 2 FLOPs, and a training
step costs 3× its forward pass (backward = 2× forward). With embedding E, encoder hidden H per
direction over L_e layers (``dirs`` directions), memory M = dirs·H, decoder hidden D, attention
size A, output size O and target vocabulary V, per sentence pair of S source and T target
tokens (T counts the EOS prediction)::

    encoder  S · Σ_layers dirs · 3H · (in + H)       GRU input and recurrent projections
    keys     S · M · A                                U h_j, once per sentence
    bridge   M · D                                    once per sentence
    decoder  T · [3D · (E + O) + 3D · D              GRU with input feeding
                  + D · A                            W s_t
                  + O · (D + M) + O · E              deep output W_o [s;c] + V_o E y
                  + O · V]                           generator
    scores   T · S · (A + M)                          v·tanh(...) and Σ α h, real positions only

Padding is not counted: these are the FLOPs the model needs, not the ones an implementation
spends, so padding waste lowers the MFU as it should.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ModelShape:
    embedding: int = 256
    encoder_hidden: int = 256
    encoder_layers: int = 2
    directions: int = 2
    decoder_hidden: int = 512
    attention: int = 512
    output: int = 512


def forward_macs(
    shape: ModelShape, tgt_vocab: int, src_lengths: Sequence[int], tgt_lengths: Sequence[int]
) -> int:
    """Forward multiply-adds for the corpus (``tgt_lengths`` count the EOS prediction)."""
    e, h, d, a, o = (
        shape.embedding,
        shape.encoder_hidden,
        shape.decoder_hidden,
        shape.attention,
        shape.output,
    )
    m = shape.directions * h
    per_src = 0
    for layer in range(shape.encoder_layers):
        width = e if layer == 0 else m
        per_src += shape.directions * 3 * h * (width + h)
    per_src += m * a
    per_tgt = 3 * d * (e + o) + 3 * d * d + d * a + o * (d + m) + o * e + o * tgt_vocab
    total = 0
    for s, t in zip(src_lengths, tgt_lengths, strict=True):
        total += s * per_src + m * d + t * per_tgt + t * s * (a + m)
    return total


def search_macs(
    shape: ModelShape,
    tgt_vocab: int,
    src_lengths: Sequence[int],
    out_lengths: Sequence[int],
    beam: int = 1,
) -> int:
    """Multiply-adds a search needs for the outputs it found (``out_lengths``: subwords of each
    best hypothesis, EOS not counted): the encoder, keys and bridge once per sentence, and one
    decoder step per output subword + EOS for each of the ``beam`` hypotheses::

        search = encoder, keys, bridge (S) + beam · T · [decoder + scores per step],  T = out + 1

    Greedy search (``beam`` 1) is exactly a forward pass over its own output. For a beam this
    is a lower bound: a real search also computes the steps of hypotheses that outlive the best
    one and of the rows kept after their sentence ended (implementations differ there, so the
    bound is the model's own cost, the same for every system).
    """
    tgt_lengths = [t + 1 for t in out_lengths]
    single = forward_macs(shape, tgt_vocab, src_lengths, tgt_lengths)
    encoder_only = forward_macs(shape, tgt_vocab, src_lengths, [0] * len(tgt_lengths))
    return encoder_only + beam * (single - encoder_only)


def train_flops_per_target_token(
    shape: ModelShape, tgt_vocab: int, src_lengths: Sequence[int], tgt_lengths: Sequence[int]
) -> float:
    """Training FLOPs (forward + backward) per target token, averaged over the corpus."""
    macs = forward_macs(shape, tgt_vocab, src_lengths, tgt_lengths)
    return 3 * 2 * macs / sum(tgt_lengths)


def matmul_peak_flops(size: int = 4096, seconds: float = 3.0) -> float:
    """Best fp32 FLOP/s of ``torch.matmul`` on (size × size) matrices, all threads."""
    a = torch.randn(size, size)
    b = torch.randn(size, size)
    out = torch.empty(size, size)
    torch.matmul(a, b, out=out)  # warm-up
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        torch.matmul(a, b, out=out)
        best = max(best, 2 * size**3 / (time.perf_counter() - start))
    return best
