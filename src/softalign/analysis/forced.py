"""Forced decoding: the model's attention while it reads a *given* target (teacher forcing).

For a pair (x, y) the decoder is fed ``BOS y_1 … y_n`` and row t of the attention is α_t, the
soft alignment used to predict y_t; the row that predicts EOS is dropped, so the matrix is
(len(y pieces), len(x pieces)). The log-probability of ``y EOS`` is returned as well.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from softalign.analysis.words import group_pieces
from softalign.data.batching import collate, token_batches
from softalign.data.vocab import PAD_ID, SubwordVocab
from softalign.errors import SoftalignError, require_texts
from softalign.translator import Translator


@dataclass
class ForcedAlignment:
    """Attention of one forced pair, at subword level, with the piece -> word maps.

    attention: (len(target_tokens), len(source_tokens)) numpy weights, rows sum to one
    """

    source_tokens: list[str]
    target_tokens: list[str]
    attention: np.ndarray
    log_prob: float
    source_words: list[str]
    target_words: list[str]
    src_word_of_piece: list[int]
    tgt_word_of_piece: list[int]


def encode_words(vocab: SubwordVocab, text: str) -> tuple[list[int], list[str], list[int]]:
    """Ids of a whitespace-tokenized sentence, encoded word by word, so that word k of the
    input is exactly the pieces mapped to k (even where normalization would merge words)."""
    words = text.split()
    ids: list[int] = []
    word_of_piece: list[int] = []
    for k, encoded in enumerate(vocab.encode(words) if words else []):
        ids.extend(encoded)
        word_of_piece.extend([k] * len(encoded))
    return ids, words, word_of_piece


def encode_text(vocab: SubwordVocab, text: str) -> tuple[list[int], list[str], list[int]]:
    """Ids of raw text encoded as a whole; words are read off the pieces' ``▁`` marks."""
    [ids] = vocab.encode([text.strip()])
    words, word_of_piece = group_pieces(vocab.pieces(ids))
    return ids, words, word_of_piece


def force_decode(
    translator: Translator,
    sources: Sequence[str],
    targets: Sequence[str],
    *,
    pretokenized: bool = False,
    progress: Callable[[int], object] | None = None,
) -> list[ForcedAlignment]:
    """Attention of every (source, target) pair; an empty side gives an empty matrix.

    With ``pretokenized``, words are the whitespace tokens of the inputs (alignment files);
    otherwise the text is encoded as in translation and words come from the pieces.
    ``progress`` is called with the number of pairs done after each batch (a bar's update).
    """
    require_texts(sources, "force_decode", "sources")
    require_texts(targets, "force_decode", "targets")
    if translator.model.decoder.attention is None:
        raise SoftalignError(f"{translator.checkpoint}: this model has no attention to show")
    if len(sources) != len(targets):
        raise SoftalignError(f"{len(sources)} source sentences but {len(targets)} targets")
    encode = encode_words if pretokenized else encode_text
    src = [encode(translator.src_vocab, s) for s in sources]
    tgt = [encode(translator.tgt_vocab, t) for t in targets]
    src_ids, tgt_ids = [s[0] for s in src], [t[0] for t in tgt]
    matrices, log_probs = attend_ids(translator, src_ids, tgt_ids, progress)
    return [
        ForcedAlignment(
            source_tokens=translator.src_vocab.pieces(s_ids),
            target_tokens=translator.tgt_vocab.pieces(t_ids),
            attention=matrix,
            log_prob=log_prob,
            source_words=s_words,
            target_words=t_words,
            src_word_of_piece=s_map,
            tgt_word_of_piece=t_map,
        )
        for (s_ids, s_words, s_map), (t_ids, t_words, t_map), matrix, log_prob in zip(
            src, tgt, matrices, log_probs, strict=True
        )
    ]


@torch.inference_mode()
def attend_ids(
    translator: Translator,
    src_ids: list[list[int]],
    tgt_ids: list[list[int]],
    progress: Callable[[int], object] | None = None,
) -> tuple[list[np.ndarray], list[float]]:
    """Teacher-forced attention (tgt_len, src_len) and log p(y EOS | x) per pair, in order."""
    model, device = translator.model, translator.device
    pairs = list(zip(src_ids, tgt_ids, strict=True))
    matrices = [np.zeros((len(t), len(s)), dtype=np.float32) for s, t in pairs]
    log_probs = [0.0] * len(src_ids)
    present = [i for i, (s, _) in enumerate(pairs) if s]  # an empty target still has p(EOS)
    budget = translator.config.decoding.batch_tokens
    lengths = ([len(src_ids[i]) for i in present], [len(tgt_ids[i]) for i in present])
    if progress is not None and len(present) < len(src_ids):
        progress(len(src_ids) - len(present))  # the empty sources
    for chunk in token_batches(*lengths, budget):
        indices = [present[k] for k in chunk]
        batch = collate(indices, src_ids, tgt_ids).to(device)
        attentional, attention = model(batch.src, batch.src_lengths, batch.tgt_in)
        log_p = torch.log_softmax(model.logits(attentional).float(), dim=-1)  # (b, tgt, words)
        gold = log_p.gather(-1, model.output_rows(batch.tgt_out).unsqueeze(-1)).squeeze(-1)
        gold = gold.masked_fill(batch.tgt_out == PAD_ID, 0.0).sum(dim=1)  # (b,)
        for row, index in enumerate(batch.indices):
            n_src, n_tgt = len(src_ids[index]), len(tgt_ids[index])
            matrices[index] = attention[row, :n_tgt, :n_src].float().cpu().numpy()
            log_probs[index] = float(gold[row])
        if progress is not None:
            progress(len(indices))
    return matrices, log_probs
