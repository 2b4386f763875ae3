"""ONNX export of a model: the encoder and one decoder step, as two graphs.

    encoder.onnx       (src (batch, src_len) int64, src_lengths (batch,) int64)
                       -> the decoder's initial state, one tensor per name of ``state``
    decoder_step.onnx  (tokens (rows,) int64 vocabulary ids, the state tensors it reads)
                       -> log_probs (rows, output words) fp32, [weights (rows, src_len)],
                          the next values of the per-hypothesis state tensors
    onnx.json          the tensor names, which state tensors each step updates, the
                       vocabulary id of every log-probability column, the special ids

Both graphs are traced through the model's public API (``start`` and ``step``), so any search
can run on them: :func:`greedy` is a reference one in NumPy with ONNX Runtime. What is traced
is the reference model (``softalign/model``, plain PyTorch): the fast backend's C kernels
(ctypes calls) cannot be traced, so a model the fast backend computes is refused (load it with
``backend="reference"``; its weights are the same). Batch and source length are dynamic axes.
Needs the ``onnx`` extra (``pip install 'softalign[onnx]'``).
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from softalign.data.vocab import BOS_ID, EOS_ID, PAD_ID
from softalign.errors import SoftalignError
from softalign.model.state import DecoderState

SOURCE_SIDE = ("memory", "keys", "pad_mask", "summary")  # one row per sentence, never updated


def state_names(state: DecoderState) -> list[str]:
    """Names of a state's tensors: h0 (c0 for LSTM) per layer, feed, memory, keys, pad_mask,
    summary (those that are not None)."""
    names = []
    for layer, tensors in enumerate(state.hidden):
        names += [f"{kind}{layer}" for kind in ("h", "c")[: len(tensors)]]
    fields = [("feed", state.feed), *[(n, getattr(state, n)) for n in SOURCE_SIDE]]
    return names + [name for name, value in fields if value is not None]


def flatten(state: DecoderState) -> list[torch.Tensor]:
    """The tensors of :func:`state_names`, in that order."""
    tensors = [t for layer in state.hidden for t in layer]
    fields = [state.feed, *[getattr(state, n) for n in SOURCE_SIDE]]
    return tensors + [t for t in fields if t is not None]


def unflatten(names: Sequence[str], tensors: Sequence[torch.Tensor]) -> DecoderState:
    """The state :func:`flatten` flattened (one row per hypothesis: ``group`` 1)."""
    values = dict(zip(names, tensors, strict=True))
    layers = sorted({int(n[1:]) for n in names if n[0] in "hc" and n[1:].isdigit()})
    hidden = [tuple(values[f"{k}{i}"] for k in ("h", "c") if f"{k}{i}" in values) for i in layers]
    return DecoderState(
        hidden=hidden,
        feed=values.get("feed"),
        memory=values["memory"],
        keys=values.get("keys"),
        pad_mask=values["pad_mask"],
        summary=values["summary"],
    )


class EncoderGraph(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(flatten(self.model.start(src, src_lengths)))


class StepGraph(nn.Module):
    def __init__(self, model: nn.Module, names: Sequence[str]) -> None:
        super().__init__()
        self.model, self.names = model, list(names)

    def forward(self, tokens: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        log_probs, weights, new = self.model.step(tokens, unflatten(self.names, state))
        updated = [t for n, t in zip(self.names, flatten(new), strict=True) if n not in SOURCE_SIDE]
        return (log_probs, *([] if weights is None else [weights]), *updated)


def check_reference(model: nn.Module) -> None:
    """Refuse a model with modules of the fast backend (``softalign/fast``): its kernels
    cannot be traced."""
    fast = sorted({type(m).__name__ for m in model.modules() if _is_fast(m)})
    if fast:
        raise ValueError(
            f"ONNX export traces the reference model, not the fast backend's ({', '.join(fast)})"
            ": load the model with backend='reference'"
        )


def _is_fast(module: nn.Module) -> bool:
    return type(module).__module__.startswith("softalign.fast")


@contextmanager
def _exporter_notes_dropped() -> Iterator[None]:
    """The exporter's C++ notes (that it infers no shapes for the encoder's packed sequences,
    which it exports correctly: the tests run other batch sizes and lengths) are written to
    file descriptor 2 itself, past Python's warnings; they are dropped within the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _dynamic_axes(names: Sequence[str]) -> dict[str, dict[int, str]]:
    return {
        n: ({0: "batch", 1: "src_len"} if n in SOURCE_SIDE[:3] else {0: "batch"}) for n in names
    }


def export_onnx(model: nn.Module, out_dir: str | Path) -> Path:
    """Write ``encoder.onnx``, ``decoder_step.onnx`` and ``onnx.json`` into ``out_dir``.

    ``model`` must be the reference model (see :func:`check_reference`)."""
    check_reference(model)
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
    except ImportError:
        raise SoftalignError("ONNX export needs onnx: pip install 'softalign[onnx]'") from None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.float().eval().cpu()
    src, lengths = torch.tensor([[4, 5, 6], [7, 8, PAD_ID]]), torch.tensor([3, 2])
    with warnings.catch_warnings(), _exporter_notes_dropped():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes
        with torch.no_grad():
            state = model.start(src, lengths)
            has_attention = model.step(torch.tensor([BOS_ID, BOS_ID]), state)[1] is not None
        names = state_names(state)
        updated = [n for n in names if n not in SOURCE_SIDE]
        outputs = [
            "log_probs",
            *(["weights"] if has_attention else []),
            *[f"next_{n}" for n in updated],
        ]
        torch.onnx.export(
            EncoderGraph(model),
            (src, lengths),
            str(out_dir / "encoder.onnx"),
            input_names=["src", "src_lengths"],
            output_names=names,
            dynamic_axes={"src": {0: "batch", 1: "src_len"}, "src_lengths": {0: "batch"}}
            | _dynamic_axes(names),
            dynamo=False,
        )
        step_axes = _dynamic_axes(names) | {"tokens": {0: "batch"}, "log_probs": {0: "batch"}}
        step_axes |= {"weights": {0: "batch", 1: "src_len"}} if has_attention else {}
        step_axes |= {f"next_{n}": {0: "batch"} for n in updated}
        torch.onnx.export(
            StepGraph(model, names),
            (torch.tensor([BOS_ID, BOS_ID]), *flatten(state)),
            str(out_dir / "decoder_step.onnx"),
            input_names=["tokens", *names],
            output_names=outputs,
            dynamic_axes=step_axes,
            dynamo=False,
        )
    output_ids = model.output_ids
    meta = {
        "state": names,
        "updated": updated,
        "outputs": outputs,
        "output_ids": None if output_ids is None else output_ids.tolist(),
        "special_ids": {"pad": PAD_ID, "bos": BOS_ID, "eos": EOS_ID},
    }
    (out_dir / "onnx.json").write_text(json.dumps(meta) + "\n", encoding="utf-8")
    return out_dir


def greedy(onnx_dir: str | Path, src_ids: Sequence[int], max_length: int) -> list[int]:
    """Greedy decoding of one sentence with ONNX Runtime: the output ids (no EOS)."""
    import onnxruntime

    onnx_dir = Path(onnx_dir)
    meta: dict[str, Any] = json.loads((onnx_dir / "onnx.json").read_text(encoding="utf-8"))
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    encoder = onnxruntime.InferenceSession(str(onnx_dir / "encoder.onnx"), options)
    step = onnxruntime.InferenceSession(str(onnx_dir / "decoder_step.onnx"), options)
    reads = {i.name for i in step.get_inputs()}  # the exporter drops inputs a step never reads
    src = np.array([list(src_ids)], dtype=np.int64)
    state = dict(
        zip(
            meta["state"],
            encoder.run(None, {"src": src, "src_lengths": np.array([src.shape[1]])}),
            strict=True,
        )
    )
    columns = meta["output_ids"]
    token, output = BOS_ID, []
    for _ in range(max_length):
        feeds = {n: v for n, v in state.items() if n in reads}
        results = dict(
            zip(
                meta["outputs"], step.run(None, {"tokens": np.array([token]), **feeds}), strict=True
            )
        )
        best = int(results["log_probs"][0].argmax())
        token = best if columns is None else columns[best]
        if token == EOS_ID:
            break
        output.append(token)
        state.update({n: results[f"next_{n}"] for n in meta["updated"]})
    return output
