"""``softalign export``: a run's checkpoint as a shareable model folder (Hugging Face Hub layout).

    DIR/README.md          model card (data, size, scores with sacreBLEU signatures, commands)
    DIR/config.yaml        the run's configuration
    DIR/spm.*.model        the SentencePiece vocabularies
    DIR/model.safetensors  the weights only (no optimizer state: about a third of a checkpoint)
    DIR/state.json         format version, step, the weights' SHA-256
    DIR/onnx/              with ``onnx=True``: the encoder and one decoder step as ONNX graphs
                           (see ``onnx_export.py``)

``Translator.load(DIR)`` and ``softalign translate DIR`` read it like a run directory (the
folder is its own checkpoint). It is written into a temporary sibling and renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from softalign import checkpoint as ckpt
from softalign.config import load_config
from softalign.data.dataset import vocab_files
from softalign.errors import CheckpointError, SoftalignError
from softalign.metrics import score_corpus
from softalign.model_card import CardFacts, render_card


def validation_score(run_dir: Path, step: int) -> dict[str, Any] | None:
    """The validation BLEU recorded at ``step`` in ``metrics.jsonl``, with the signature of
    the sacreBLEU settings validation scores with (``metrics.score_corpus``)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    found = None
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("step") == step and "valid_bleu" in record:
            found = record
    if found is None:
        return None
    # the signature of score_corpus's settings (one reference), which validation scores with:
    # sacreBLEU gives a signature only after scoring something
    signature = score_corpus(["a"], ["a"]).signature
    return {"name": "validation", "bleu": found["valid_bleu"], "signature": signature}


def read_evaluation(path: str | Path) -> dict[str, Any]:
    """A ``softalign evaluate --json`` result (BLEU, chrF, signature) to put on the card."""
    path = Path(path)
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SoftalignError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(result, dict) or not {"bleu", "signature"} <= result.keys():
        raise SoftalignError(f"{path}: not a 'softalign evaluate --json' result (no bleu)")
    return {"name": path.stem, **result}


def export_run(
    run_dir: str | Path,
    out_dir: str | Path,
    *,
    checkpoint: str | None = None,
    evaluations: list[dict[str, Any]] | None = None,
    command: str = "",
    onnx: bool = False,
) -> Path:
    """Write the model folder ``out_dir`` from a checkpoint of ``run_dir`` (default: best)."""
    from softalign.translator import Translator

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if not (run_dir / "config.yaml").is_file():
        raise CheckpointError(f"{run_dir}: not a run directory (no config.yaml)")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise SoftalignError(f"{out_dir}: exists and is not an empty directory")
    source = ckpt.resolve_checkpoint(run_dir, checkpoint)
    state = ckpt.read_state(source)
    ckpt.load_tensors(source, "model.safetensors", state)  # verifies the checksum
    config = load_config(run_dir / "config.yaml")
    tmp = out_dir.with_name(f".tmp-{out_dir.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        shutil.copyfile(run_dir / "config.yaml", tmp / "config.yaml")
        for vocab in vocab_files(run_dir, config.data.vocab.joint):
            shutil.copyfile(vocab, tmp / vocab.name)
        shutil.copyfile(source / "model.safetensors", tmp / "model.safetensors")
        meta = {
            "format_version": ckpt.FORMAT_VERSION,
            "step": state["step"],
            "checksums": {"model.safetensors": ckpt.sha256(tmp / "model.safetensors")},
            "exported_from": str(source.resolve()),
        }
        ckpt.write_json_atomic(meta, tmp / "state.json")
        # the folder loads as it will be used; the reference model: plain PyTorch, traceable
        model = Translator.load(tmp, device="cpu", backend="reference").model
        if onnx:
            from softalign.onnx_export import export_onnx

            export_onnx(model, tmp / "onnx")
        scores = [s for s in [validation_score(run_dir, state["step"])] if s]
        facts = CardFacts(
            config=config,
            parameters=sum(p.numel() for p in model.parameters()),
            step=state["step"],
            scores=scores + list(evaluations or []),
            export_command=command,
            onnx=onnx,
        )
        (tmp / "README.md").write_text(render_card(facts), encoding="utf-8")
        if out_dir.exists():
            out_dir.rmdir()  # empty (checked above)
        os.rename(tmp, out_dir)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SoftalignError(f"{out_dir}: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
