"""The generator over the target words seen in training (``model.output_vocab: seen``)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from tests.helpers import TINY_MODEL, tiny_config

from softalign import checkpoint as ckpt
from softalign.data.binarized import TokenSequences
from softalign.data.dataset import seen_ids
from softalign.data.sources import load_splits
from softalign.data.vocab import BOS_ID, EOS_ID, UNK_ID
from softalign.decoding.search import decode_ids
from softalign.errors import ConfigError
from softalign.model.seq2seq import build_model
from softalign.train.loop import resume, train
from softalign.translator import Translator

KEPT = [UNK_ID, EOS_ID, 4, 7, 9, 12, 20]


def test_seen_ids_counts_lists_and_memory_mapped_ids():
    seqs = [[9, 4, 4], [20], [7, 12, 9]]
    assert seen_ids(seqs, 25) == KEPT
    flat = np.array([i for s in seqs for i in s], dtype=np.uint16)
    offsets = np.cumsum([0] + [len(s) for s in seqs])
    assert seen_ids(TokenSequences(flat, offsets), 25) == KEPT


def test_loss_and_step_use_the_rows_of_the_seen_words():
    torch.manual_seed(0)
    model = build_model(TINY_MODEL, 30, 25, torch.tensor(KEPT))
    assert model.generator.out_features == len(KEPT)
    src = torch.randint(4, 30, (2, 5))
    tgt_in = torch.tensor([[BOS_ID, 4, 9], [BOS_ID, 20, 7]])
    attentional, _ = model(src, torch.tensor([5, 5]), tgt_in)
    flat = attentional.flatten(0, 1)
    target = torch.tensor([4, 9, EOS_ID, 20, 15, EOS_ID])  # 15 was never seen: scored as UNK
    rows = torch.tensor([2, 4, 1, 6, 0, 1])
    expected = F.cross_entropy(model.logits(flat), rows, label_smoothing=0.1, reduction="sum")
    assert model.loss(flat, target, 0.1).item() == pytest.approx(expected.item(), rel=1e-5)
    log_probs, _, _ = model.step(tgt_in[:, 0], model.start(src, torch.tensor([5, 5])))
    assert log_probs.shape == (2, len(KEPT))
    assert model.output_words(log_probs.argmax(-1)).tolist() == [
        KEPT[i] for i in log_probs.argmax(-1).tolist()
    ]


def test_loading_other_output_ids_reindexes_the_rows():
    model = build_model(TINY_MODEL, 30, 25, torch.tensor(KEPT))
    other = [UNK_ID, EOS_ID, 5, 6, 10, 11, 24]
    model.load_state_dict(build_model(TINY_MODEL, 30, 25, torch.tensor(other)).state_dict())
    assert model.output_rows(torch.tensor([5, 24, 4])).tolist() == [2, 6, 0]


@pytest.mark.parametrize("bad", [[EOS_ID, UNK_ID, 4], [EOS_ID, 4], [UNK_ID, 25]])
def test_output_ids_must_be_increasing_ids_with_unk(bad):
    with pytest.raises(ValueError):
        build_model(TINY_MODEL, 30, 25, torch.tensor(bad))


def test_a_run_saves_its_seen_words_and_translates_with_them(tmp_path):
    config = tiny_config()
    train(config, tmp_path / "r", max_steps=60, progress=False)
    saved = load_file(str(ckpt.latest_checkpoint(tmp_path / "r") / "model.safetensors"))
    translator = Translator.load(tmp_path / "r")
    train_tgt = translator.tgt_vocab.encode(load_splits(config.data, ("train",))["train"].tgt)
    expected = seen_ids(train_tgt, len(translator.tgt_vocab))
    assert saved["output_ids"].tolist() == expected
    assert len(expected) < len(translator.tgt_vocab)
    assert translator.model.generator.out_features == len(expected)
    src_ids = translator.src_vocab.encode(["a b c d e f", "g h i"])
    for beam in (1, 4):
        found = decode_ids(
            translator.model,
            src_ids,
            beam=beam,
            max_length=20,
            nbest=beam,
            device=translator.device,
        )
        words = {i for hypotheses in found for h in hypotheses for i in h.tokens}
        assert words and words <= set(expected)


def test_output_vocab_all_scores_every_id(tmp_path):
    train(tiny_config(**{"model.output_vocab": "all"}), tmp_path / "r", max_steps=5, progress=False)
    saved = load_file(str(ckpt.latest_checkpoint(tmp_path / "r") / "model.safetensors"))
    translator = Translator.load(tmp_path / "r")
    assert "output_ids" not in saved
    assert translator.model.generator.out_features == len(translator.tgt_vocab)


def test_a_resumed_run_keeps_the_output_words_of_its_checkpoint(tmp_path):
    train(tiny_config(), tmp_path / "r", max_steps=20, progress=False)
    before = load_file(str(ckpt.latest_checkpoint(tmp_path / "r") / "model.safetensors"))
    config_file = tmp_path / "r" / "config.yaml"  # the config now asks for every id
    saved = config_file.read_text()
    config_file.write_text(saved.replace("output_vocab: seen", "output_vocab: all"))
    with pytest.raises(ConfigError, match="model.output_vocab differs"):  # a model key
        resume(tmp_path / "r", max_steps=40, progress=False)
    config_file.write_text(saved)
    resume(tmp_path / "r", max_steps=40, progress=False)
    after = load_file(str(ckpt.latest_checkpoint(tmp_path / "r") / "model.safetensors"))
    assert ckpt.latest_checkpoint(tmp_path / "r").name == "step-00000040"
    assert torch.equal(after["output_ids"], before["output_ids"])
