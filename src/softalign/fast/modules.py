"""The fast CPU versions of the model's modules, and :func:`accelerate`, which swaps them in.

Each class here is a subclass of the reference module it replaces (``softalign/model``), with
the same parameters and state dict: it only changes *how* the same function is computed.
:func:`accelerate` changes the classes of a built model's modules in place, so checkpoints
move freely between the two backends. Where a piece cannot run (no C kernels, a GPU tensor,
gradients where a path is inference-only), it falls back to the reference computation.

What each one does instead of the reference:

- :class:`FastEncoder`: the recurrence over the padded batch, each sentence's backward
  direction read reversed within its own length, one layer and direction at a time, a GRU's
  gates on the C kernels (``gru_layer.py``); no packed sequences (whose per-step slices cost a
  zero-filled gradient each on the CPU).
- :class:`FastGRUCell`: a decoder step's gates in one kernel pass.
- :class:`FastAdditiveAttention`: ``v · tanh(W s + U h)`` in one pass over the energies
  (``additive_scores.py``), or a few sentences at a time while they are in cache.
- :class:`FastDecoder`: teacher forcing projects every gold word at once and computes each
  recurrent weight's gradient as one product (``step_weights.py``); decoding joins a step's
  product inputs in one copy.
- :class:`FastSeq2Seq`: the generator's label-smoothed loss in row chunks without the (N, V)
  logits (``generator_loss.py``), a search's k best words in one pass (``best_words.py``),
  weights packed once per search (``packed_weights.py``), padded bf16 product shapes
  (``low_precision.py``).
- :class:`Dropout`: a cheaper mask (``dropout.py``).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from softalign.fast.additive_scores import additive_scores
from softalign.fast.best_words import best_words
from softalign.fast.dropout import Dropout, dropout
from softalign.fast.generator_loss import generator_cross_entropy
from softalign.fast.gru_layer import gru_cell_step, gru_layer
from softalign.fast.low_precision import (
    ShapeStableLinear,
    autocast_dtype,
    padding_rows,
    shape_stable_linear,
)
from softalign.fast.native import available as native_available
from softalign.fast.packed_weights import packed_weights
from softalign.fast.step_weights import (
    RecurrentLinear,
    StepWeight,
    one_weight_gradient_per_sequence,
)
from softalign.model.attention import AdditiveAttention, full_precision
from softalign.model.decoder import AttentionDecoder, GRUCell
from softalign.model.encoder import RNNEncoder
from softalign.model.seq2seq import Seq2Seq
from softalign.model.state import DecoderState


class FastEncoder(RNNEncoder):
    def forward(
        self, src: torch.Tensor, src_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if src.device.type != "cpu":  # cuDNN runs packed sequences in one fused call
            return super().forward(src, src_lengths)
        embedded = self.dropout(self.embedding(src))  # (batch, src_len, emb)
        lengths = src_lengths.to(src.device)
        positions = torch.arange(src.size(1), device=src.device)
        real = positions < lengths.unsqueeze(1)  # (batch, src_len)
        # reversal within each length (an involution; pads stay where they are)
        reverse = torch.where(real, lengths.unsqueeze(1) - 1 - positions, positions)
        last = (lengths - 1).view(-1, 1, 1)
        layer_input = embedded
        for layer in range(self.rnn.num_layers):
            if layer > 0:
                layer_input = dropout(layer_input, self.rnn.dropout, self.training)
            outputs, finals = [], []
            for direction in range(self.directions):
                x = layer_input if direction == 0 else _take(layer_input, reverse)
                out = self._run(x, layer, direction)  # (batch, src_len, hidden)
                finals.append(out.gather(1, last.expand(-1, 1, out.size(-1))).squeeze(1))
                outputs.append(out if direction == 0 else _take(out, reverse))
            layer_input = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
        memory = layer_input.masked_fill(~real.unsqueeze(-1), 0.0)
        return memory, torch.cat(finals, dim=-1)

    def _run(self, x: torch.Tensor, layer: int, direction: int) -> torch.Tensor:
        """One layer and direction of ``self.rnn`` over (batch, src_len, in), from zeros."""
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        weights = [getattr(self.rnn, f"{name}{suffix}") for name in _RNN_PARAMS]
        if isinstance(self.rnn, nn.GRU) and native_available(x):
            return gru_layer(x, *weights)
        zeros = x.new_zeros(1, x.size(0), self.rnn.hidden_size)
        state = (zeros, zeros) if isinstance(self.rnn, nn.LSTM) else zeros
        rnn = torch.lstm if isinstance(self.rnn, nn.LSTM) else torch.gru
        # ATen's recurrence: (input, state, weights, has_biases, layers, dropout, train,
        # bidirectional, batch_first)
        out = rnn(x, state, weights, True, 1, 0.0, self.training, False, True)
        return out[0]


_RNN_PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _take(sequence: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """sequence[b, index[b, t]] for (batch, len, d) and (batch, len) index."""
    return sequence.gather(1, index.unsqueeze(-1).expand(-1, -1, sequence.size(-1)))


class FastGRUCell(GRUCell):
    def step(self, x_proj: torch.Tensor, state: tuple[torch.Tensor, ...]):
        (h,) = state
        if not native_available(h):
            return super().step(x_proj, state)
        return (gru_cell_step(x_proj, self.hidden_proj(h), h),)


class FastAdditiveAttention(AdditiveAttention):
    ENERGY_CHUNK = 1 << 18  # fp32 energies per chunk (1 MiB) when decoding without kernels

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        if native_available(keys):  # one pass over the energies (C kernel)
            return additive_scores(self.query_proj(query), keys, self.energy.weight.view(-1))
        if torch.is_grad_enabled() or keys.device.type != "cpu":
            return super().score(query, keys)
        # decoding: the (sentences, group, S, hidden) energies a few sentences at a time, in
        # place, so that they stay in the cache (add, tanh and v· in one trip)
        query_proj = self.query_proj(query).unsqueeze(2)  # (sentences, group, 1, hidden)
        with full_precision(keys):
            query_proj, keys = query_proj.float(), keys.unsqueeze(1)  # keys: (n, 1, S, hidden)
            v = self.energy.weight.view(-1)
            per_sentence = query_proj.size(1) * keys.size(2) * keys.size(3)
            step = max(1, self.ENERGY_CHUNK // per_sentence)
            scores = keys.new_empty(query_proj.shape[:2] + keys.shape[2:3])
            for start in range(0, keys.size(0), step):
                end = start + step
                energies = torch.add(query_proj[start:end], keys[start:end]).tanh_()
                torch.matmul(energies, v, out=scores[start:end])
            return scores


class FastDecoder(AttentionDecoder):
    def step(
        self, tokens: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, torch.Tensor | None, DecoderState]:
        gates, output_embedded = self._embed(tokens, self._fed(state) if self.feed_size else None)
        return self._advance(gates, output_embedded, state)

    def _output_state(self, top: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.output_state.joined(top, context)  # no joined copy in bf16 decoding

    def _embed(
        self, tokens: torch.Tensor, fed: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The first layer's input projection and the deep output's ``V_o E y + b_o`` for
        ``tokens``. Without ``fed`` only the word's part of the projection (teacher forcing
        projects all words at once and adds the fed vector's part step by step); with it,
        one product over ``[E y ; fed]`` with the whole weight (a decoding step)."""
        embedded = self.dropout(self.embedding(tokens))
        first = self.cells[0].input_proj
        if fed is not None:
            gates = first.joined(embedded, fed)
        elif self.feed_size:
            gates = F.linear(embedded, first.weight[:, : self.embedding_size], first.bias)
        else:
            gates = first(embedded)
        return gates, self.output_embedding(embedded)

    def forward(
        self, tgt_in: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        gates, output_embedded = self._embed(tgt_in)  # (batch, tgt_len, ...)
        outputs, weights = [], []
        with one_weight_gradient_per_sequence(self):
            # the first layer's weight for the fed vector, opened once per sequence
            feed_weight = StepWeight(self.cells[0].input_proj.weight[:, self.embedding_size :])
            # unbind, not gates[:, t]: one slice per step would zero-fill and add a full
            # (batch, tgt_len, ...) gradient at every step; unbind's backward is one stack
            for gates_t, embedded_t in zip(gates.unbind(1), output_embedded.unbind(1), strict=True):
                if self.feed_size:
                    gates_t = gates_t + feed_weight(self._fed(state))
                attentional, alpha, state = self._advance(gates_t, embedded_t, state)
                outputs.append(attentional)
                weights.append(alpha)
        attention = None if self.attention is None else torch.stack(weights, dim=1)
        return torch.stack(outputs, dim=1), attention


class FastSeq2Seq(Seq2Seq):
    def loss(
        self, attentional: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0
    ) -> torch.Tensor:
        return generator_cross_entropy(
            self.dropout(attentional), self.generator, self.output_rows(target), label_smoothing
        )

    def step_best(
        self, tokens: torch.Tensor, state: DecoderState, k: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, DecoderState]:
        attentional, weights, state = self.decoder.step(tokens, state)
        # the bias is added as best_words reads the logits (not copied into every row first)
        logits = shape_stable_linear(self.dropout(attentional), self.generator.weight)
        log_probs, rows = best_words(logits, min(k, logits.size(-1)), self.generator.bias)
        return log_probs, rows, weights, state

    def decoding(self, cache: dict | None = None) -> contextlib.AbstractContextManager:
        """CPU products read their weights packed once per search (or kept in ``cache``)."""
        return packed_weights(cache)

    def worth_compacting(self, rows: int, left: int) -> bool:
        """Only when fewer padded product rows would do (bf16 on the CPU pads them)."""
        weight = self.generator.weight
        low = weight.device.type == "cpu" and autocast_dtype(weight) is not None
        return left + padding_rows(left, low) < rows + padding_rows(rows, low)


# reference class -> its fast version (the same parameters)
_MODULES: dict[type[nn.Module], type[nn.Module]] = {
    Seq2Seq: FastSeq2Seq,
    RNNEncoder: FastEncoder,
    AttentionDecoder: FastDecoder,
    GRUCell: FastGRUCell,
    AdditiveAttention: FastAdditiveAttention,
    nn.Dropout: Dropout,
}


def accelerate(model: Seq2Seq) -> Seq2Seq:
    """Swap the fast modules into ``model`` in place (and return it): the same parameters,
    buffers and state dict, computed faster on the CPU."""
    for module in model.modules():
        fast = _MODULES.get(type(module))
        if fast is not None:
            module.__class__ = fast
    decoder = model.decoder
    # layers applied at every step: one weight-gradient product per sequence in training
    recurrent = [decoder.output_state]
    for cell in decoder.cells:
        recurrent += [cell.input_proj, cell.hidden_proj]
    stable = [decoder.output_embedding, model.generator]  # padded bf16 shapes when decoding
    if isinstance(decoder.attention, AdditiveAttention):
        recurrent.append(decoder.attention.query_proj)
        stable.append(decoder.attention.key_proj)
    for linear in recurrent:
        linear.__class__ = RecurrentLinear
    for linear in stable:
        linear.__class__ = ShapeStableLinear
    return model


def is_accelerated(model: nn.Module) -> bool:
    return isinstance(model, FastSeq2Seq)
