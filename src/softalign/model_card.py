"""The README.md model card of an exported model (``softalign export``).

A Hugging Face Hub model card: YAML front matter (library, task, languages, tags) and a
Markdown body naming the data, the architecture, the size in parameters, the scores with
their sacreBLEU signatures, and the commands that made and that use the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from softalign.config import RunConfig


@dataclass
class CardFacts:
    """What the card states; everything else comes from the config."""

    config: RunConfig
    parameters: int
    step: int
    scores: list[dict[str, Any]] = field(default_factory=list)  # name, bleu, signature, ...
    export_command: str = ""
    onnx: bool = False  # onnx/ holds the encoder and decoder-step graphs


def _languages(config: RunConfig) -> list[str]:
    codes = [config.data.src_lang, config.data.tgt_lang]
    return [c for c in codes if c not in ("src", "tgt")]


def _data_line(config: RunConfig) -> str:
    d = config.data
    pair = f"{d.src_lang} → {d.tgt_lang}"
    if d.corpus:
        return f"{pair}, corpus `{d.corpus}`"
    if d.binarized:
        return f"{pair}, binarized data `{d.binarized}`"
    return f"{pair}, training files `{d.train_src}` / `{d.train_tgt}`"


def _model_line(config: RunConfig) -> str:
    m = config.model
    direction = "bidirectional " if m.bidirectional else ""
    return (
        f"{m.encoder_layers}-layer {direction}{m.rnn_type.upper()} encoder "
        f"({m.encoder_hidden} per direction), {m.decoder_layers}-layer decoder "
        f"({m.decoder_hidden}), {m.attention} attention, embeddings {m.embedding_size}"
    )


def _score_lines(scores: list[dict[str, Any]]) -> list[str]:
    if not scores:
        return ["No score was recorded for this checkpoint."]
    lines = ["| data | BLEU | chrF | sacreBLEU signature |", "|---|---|---|---|"]
    for s in scores:
        chrf = "" if s.get("chrf") is None else f"{s['chrf']:.2f}"
        signature = str(s["signature"]).replace("|", "\\|")  # a table cell's pipes escaped
        lines.append(f"| {s['name']} | {s['bleu']:.2f} | {chrf} | `{signature}` |")
    return lines


def render_card(facts: CardFacts) -> str:
    """The README.md text."""
    config = facts.config
    front = {
        "library_name": "softalign",
        "pipeline_tag": "translation",
        "tags": ["translation", "softalign", "rnn", "attention"],
    }
    if _languages(config):
        front["language"] = _languages(config)
    vocab = config.data.vocab
    sides = "joint" if vocab.joint else "one per side"
    if vocab.type == "none":
        vocab_text = f"pre-segmented text, word lists, {sides} (`vocab.*.txt`)"
    elif vocab.model or vocab.src_model:
        vocab_text = f"the user's SentencePiece models, {sides} (`spm.*.model`)"
    else:
        vocab_text = f"SentencePiece {vocab.type}, {sides} (`spm.*.model`)"
    body = [
        f"# softalign {config.data.src_lang}-{config.data.tgt_lang} translation model",
        "",
        "A recurrent encoder-decoder with soft attention, trained with "
        "softalign and exported with its weights only.",
        "",
        f"- **Data**: {_data_line(config)}",
        f"- **Model**: {_model_line(config)}",
        f"- **Size**: {facts.parameters:,} parameters",
        f"- **Vocabulary**: {vocab_text}",
        f"- **Training**: {facts.step:,} steps (`config.yaml` holds the whole configuration)",
        "",
        "## Scores",
        "",
        *_score_lines(facts.scores),
        "",
        "## Use",
        "",
        "```sh",
        "softalign translate . -i input.txt -o output.txt",
        "```",
        "",
        "```python",
        "from softalign.translator import Translator",
        "translator = Translator.load('.')",
        "print(translator.translate(['...'])[0].text)",
        "```",
        "",
        "## How it was made",
        "",
        "```sh",
        "softalign train config.yaml -o RUN",
        *([facts.export_command] if facts.export_command else []),
        "```",
        "",
        "Files: `model.safetensors` (weights), `state.json` (step and checksum), "
        "`config.yaml`, the vocabularies"
        + (
            "; `onnx/`: `encoder.onnx` and `decoder_step.onnx` (one decoding step) with "
            "`onnx.json` naming their tensors."
            if facts.onnx
            else "."
        ),
    ]
    return "---\n" + yaml.safe_dump(front, sort_keys=False) + "---\n\n" + "\n".join(body) + "\n"
