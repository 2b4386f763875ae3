"""softalign export: weights, vocabularies, config and a model card that Translator.load reads."""

import json

import pytest
import yaml

from softalign.errors import SoftalignError
from softalign.export import export_run, read_evaluation
from softalign.translator import Translator

SOURCES = ["ba be bi bo", "ko ku ka ga ge", "da"]


def test_exported_folder_translates_like_the_run(tiny_run, tmp_path):
    out = export_run(tiny_run, tmp_path / "model")
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "config.yaml",
        "model.safetensors",
        "spm.joint.model",
        "state.json",
    ]  # no optimizer state
    run, exported = Translator.load(tiny_run), Translator.load(out)
    assert exported.checkpoint == out
    for beam in (1, 3):
        assert [t.text for t in exported.translate(SOURCES, beam=beam)] == [
            t.text for t in run.translate(SOURCES, beam=beam)
        ]


def test_model_card_states_size_data_and_validation_bleu_with_signature(tiny_run, tmp_path):
    evaluation = tmp_path / "test2016.json"
    evaluation.write_text(json.dumps({"bleu": 12.5, "chrf": 40.1, "signature": "nrefs:1|x"}))
    out = export_run(
        tiny_run, tmp_path / "model", checkpoint="100", evaluations=[read_evaluation(evaluation)]
    )
    card = (out / "README.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["library_name"] == "softalign" and front["pipeline_tag"] == "translation"
    parameters = sum(p.numel() for p in Translator.load(out).model.parameters())
    assert f"{parameters:,} parameters" in card
    assert "synthetic:reverse" in card and "100 steps" in card
    valid = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    bleu = next(r["valid_bleu"] for r in valid if r["step"] == 100 and "valid_bleu" in r)
    assert f"| validation | {bleu:.2f} |" in card and "tok:13a" in card
    assert "| test2016 | 12.50 | 40.10 | `nrefs:1\\|x` |" in card  # pipes escaped in tables


def test_export_refuses_a_non_empty_target_and_a_bad_evaluation(tiny_run, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(SoftalignError, match="exists and is not an empty directory"):
        export_run(tiny_run, tmp_path / "full")
    (tmp_path / "e.json").write_text("{}")
    with pytest.raises(SoftalignError, match="not a 'softalign evaluate --json' result"):
        read_evaluation(tmp_path / "e.json")
    assert not list(tmp_path.glob(".tmp-*"))
