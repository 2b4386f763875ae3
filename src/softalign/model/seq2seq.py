"""The encoder-decoder translation model and ``build_model(config, vocab sizes)``."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from softalign.config import ModelConfig
from softalign.data.vocab import PAD_ID, UNK_ID
from softalign.model.decoder import AttentionDecoder
from softalign.model.encoder import RNNEncoder
from softalign.model.state import DecoderState


class Seq2Seq(nn.Module):
    """p(y | x) = Π_t softmax(W_y h̃_t): encoder, attentional decoder, generator.

    The generator's rows are the *output words*: every target id, or only ``output_ids``
    (the ids seen in the training targets, sorted). Row r scores vocabulary id
    ``output_ids[r]``; :meth:`output_rows` maps ids to rows (an id without a row to UNK's) and
    :meth:`output_words` maps rows back to ids. ``output_ids`` is saved with the weights.
    """

    def __init__(
        self,
        *,
        encoder: RNNEncoder,
        decoder: AttentionDecoder,
        tgt_vocab_size: int,
        tie_embeddings: bool,
        dropout: float,
        output_ids: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.dropout = nn.Dropout(dropout)
        self.tgt_vocab_size = tgt_vocab_size
        if output_ids is not None and tie_embeddings:
            raise ValueError("tied embeddings score the whole target vocabulary")
        rows = tgt_vocab_size if output_ids is None else len(output_ids)
        self.generator = nn.Linear(decoder.output_size, rows)  # W_y
        if tie_embeddings:
            self.generator.weight = decoder.embedding.weight
        self.register_buffer("output_ids", None)
        self.register_buffer("id_rows", None, persistent=False)
        if output_ids is not None:
            ids = torch.as_tensor(output_ids, dtype=torch.long)
            if ids.dim() != 1 or not bool((ids[1:] > ids[:-1]).all()) or UNK_ID not in ids:
                raise ValueError("output_ids must be increasing vocabulary ids including UNK")
            if int(ids[-1]) >= tgt_vocab_size or int(ids[0]) < 0:
                raise ValueError(f"output_ids must lie in [0, {tgt_vocab_size})")
            self.register_buffer("output_ids", ids)
            self.register_buffer("id_rows", self._id_rows(ids), persistent=False)
            self.register_load_state_dict_post_hook(Seq2Seq._reindex)

    def _id_rows(self, ids: torch.Tensor) -> torch.Tensor:
        """(tgt_vocab,) the generator row of every id; ids without a row get UNK's."""
        unk_row = int(torch.searchsorted(ids, UNK_ID))
        rows = torch.full((self.tgt_vocab_size,), unk_row, dtype=torch.long, device=ids.device)
        rows[ids] = torch.arange(len(ids), device=ids.device)
        return rows

    @staticmethod
    def _reindex(module: Seq2Seq, incompatible) -> None:
        """After ``load_state_dict``: the rows of the ``output_ids`` just loaded."""
        module.id_rows = module._id_rows(module.output_ids)

    def output_rows(self, ids: torch.Tensor) -> torch.Tensor:
        """Generator rows of vocabulary ``ids`` (any shape)."""
        return ids if self.id_rows is None else self.id_rows[ids]

    def output_words(self, rows: torch.Tensor) -> torch.Tensor:
        """Vocabulary ids of generator ``rows`` (any shape)."""
        return rows if self.output_ids is None else self.output_ids[rows]

    def start(self, src: torch.Tensor, src_lengths: torch.Tensor) -> DecoderState:
        """Encode src (batch, src_len) into the decoder's initial state."""
        memory, summary = self.encoder(src, src_lengths)
        return self.decoder.init_state(memory, summary, src == PAD_ID)

    def forward(
        self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher-forced attentional vectors (batch, tgt_len, output_size) and attention
        (batch, tgt_len, src_len); apply :meth:`logits` to the positions that count."""
        return self.decoder(tgt_in, self.start(src, src_lengths))

    def logits(self, attentional: torch.Tensor) -> torch.Tensor:
        """(..., output_size) -> (..., output words); see :meth:`output_rows`."""
        return self.generator(self.dropout(attentional))

    def loss(
        self, attentional: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0
    ) -> torch.Tensor:
        """Summed label-smoothed cross-entropy of ``logits(attentional)`` (N, output_size)
        against the vocabulary ids ``target`` (N,) (fp32, 0-dim)::

            loss = Σ_i [(1-ε) (-log p(y_i)) + (ε/V) Σ_v (-log p(v))]
        """
        logits = self.logits(attentional).float()  # (N, output words)
        return F.cross_entropy(
            logits, self.output_rows(target), label_smoothing=label_smoothing, reduction="sum"
        )

    def step(
        self, tokens: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, torch.Tensor | None, DecoderState]:
        """Log-probabilities (batch, output words) of the next word after ``tokens`` (batch,);
        :meth:`output_words` turns a chosen column into its vocabulary id."""
        attentional, weights, state = self.decoder.step(tokens, state)
        # fp32 scores for the search even when the products ran in bf16
        logits = self.logits(attentional)
        return torch.log_softmax(logits, dim=-1, dtype=torch.float32), weights, state

    def step_best(
        self, tokens: torch.Tensor, state: DecoderState, k: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, DecoderState]:
        """The ``k`` most probable next words after ``tokens`` (all of them if there are
        fewer): their log-probabilities (batch, k) fp32, best first, and generator rows
        (batch, k) (see :meth:`output_words`)."""
        log_probs, weights, state = self.step(tokens, state)
        best, rows = log_probs.topk(min(k, log_probs.size(-1)), dim=-1)
        return best, rows, weights, state

    def decoding(self, cache: dict | None = None) -> contextlib.AbstractContextManager:
        """The context a search runs in: nothing here; a faster backend may keep per-search
        state (in ``cache`` across searches, when given)."""
        return contextlib.nullcontext()

    def worth_compacting(self, rows: int, left: int) -> bool:
        """Whether a search should drop its ended rows when ``left`` of its ``rows`` still
        run (here: always; a backend may prefer to keep computing a few ended rows)."""
        return left < rows


def init_parameters(model: nn.Module, scale: float = 0.1) -> None:
    """Uniform(-scale, scale) for every parameter (OpenNMT's default), padding rows zero."""
    for param in model.parameters():
        nn.init.uniform_(param, -scale, scale)
    for module in model.modules():
        if isinstance(module, nn.Embedding):
            with torch.no_grad():
                module.weight[PAD_ID].zero_()


def build_model(
    config: ModelConfig,
    src_vocab_size: int,
    tgt_vocab_size: int,
    output_ids: torch.Tensor | None = None,
    initialize: bool = True,
) -> Seq2Seq:
    """The model of ``config``; ``output_ids`` (see :class:`Seq2Seq`) limits the generator to
    those target ids (ignored with tied embeddings, which score every id). ``initialize=False``
    skips :func:`init_parameters` (≈ 35 ms here) for weights a checkpoint replaces."""
    encoder = RNNEncoder(
        vocab_size=src_vocab_size,
        embedding_size=config.embedding_size,
        hidden_size=config.encoder_hidden,
        num_layers=config.encoder_layers,
        bidirectional=config.bidirectional,
        rnn_type=config.rnn_type,
        dropout=config.dropout,
    )
    decoder = AttentionDecoder(
        vocab_size=tgt_vocab_size,
        embedding_size=config.embedding_size,
        hidden_size=config.decoder_hidden,
        num_layers=config.decoder_layers,
        rnn_type=config.rnn_type,
        attention=config.attention,
        attention_size=config.attention_size,
        memory_size=encoder.output_size,
        input_feeding=config.input_feeding,
        bridge=config.bridge,
        output_size=config.output_size,
        dropout=config.dropout,
    )
    model = Seq2Seq(
        encoder=encoder,
        decoder=decoder,
        tgt_vocab_size=tgt_vocab_size,
        tie_embeddings=config.tie_embeddings,
        dropout=config.dropout,
        output_ids=None if config.tie_embeddings else output_ids,
    )
    if initialize:
        init_parameters(model)
    return model
