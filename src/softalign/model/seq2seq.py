"""The encoder-decoder translation model and ``build_model(config, vocab sizes)``."""

from __future__ import annotations

import torch
from torch import nn

from softalign.config import ModelConfig
from softalign.data.vocab import PAD_ID
from softalign.model.decoder import AttentionDecoder, DecoderState
from softalign.model.encoder import RNNEncoder
from softalign.model.generator_loss import generator_cross_entropy


class Seq2Seq(nn.Module):
    """p(y | x) = Π_t softmax(W_y h̃_t): encoder, attentional decoder, generator."""

    def __init__(
        self,
        *,
        encoder: RNNEncoder,
        decoder: AttentionDecoder,
        tgt_vocab_size: int,
        tie_embeddings: bool,
        dropout: float,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.dropout = nn.Dropout(dropout)
        self.generator = nn.Linear(decoder.output_size, tgt_vocab_size)
        if tie_embeddings:
            self.generator.weight = decoder.embedding.weight

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
        """(..., output_size) -> (..., tgt_vocab)."""
        return self.generator(self.dropout(attentional))

    def loss(
        self, attentional: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0
    ) -> torch.Tensor:
        """Summed label-smoothed cross-entropy of ``logits(attentional)`` (N, output_size)
        against ``target`` (N,), without materialising the (N, V) logits (fp32, 0-dim)."""
        return generator_cross_entropy(
            self.dropout(attentional), self.generator, target, label_smoothing
        )

    def step(
        self, tokens: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, torch.Tensor | None, DecoderState]:
        """Log-probabilities (batch, tgt_vocab) of the next word after ``tokens`` (batch,)."""
        attentional, weights, state = self.decoder.step(tokens, state)
        # fp32 scores for the search even when the products ran in bf16 (autocast keeps the
        # log-softmax of a bf16 input in bf16 on the CPU)
        return torch.log_softmax(self.logits(attentional).float(), dim=-1), weights, state


def init_parameters(model: nn.Module, scale: float = 0.1) -> None:
    """Uniform(-scale, scale) for every parameter (OpenNMT's default), padding rows zero."""
    for param in model.parameters():
        nn.init.uniform_(param, -scale, scale)
    for module in model.modules():
        if isinstance(module, nn.Embedding):
            with torch.no_grad():
                module.weight[PAD_ID].zero_()


def build_model(config: ModelConfig, src_vocab_size: int, tgt_vocab_size: int) -> Seq2Seq:
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
    )
    init_parameters(model)
    return model
