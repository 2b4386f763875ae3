"""Bringing a vocabulary: an existing SentencePiece model (data.vocab.model), or pre-segmented
text with a word vocabulary (data.vocab.type: none)."""

import pytest
import sentencepiece as spm
from tests.helpers import tiny_config

from softalign.data.synthetic import WORDS
from softalign.data.vocab import EOS_ID, PAD_ID, UNK_ID, SubwordVocab
from softalign.data.words import WordVocab
from softalign.errors import CheckpointError, ConfigError
from softalign.train.loop import train
from softalign.translator import Translator

QUICK = {"training.max_steps": 20, "training.valid_every": 20, "training.checkpoint_every": 20}


def spm_with_default_ids(path):
    """A SentencePiece model numbered as SentencePiece does by default: unk=0 bos=1 eos=2."""
    sentences = [" ".join(WORDS[i : i + 6]) for i in range(len(WORDS) - 6)] * 20
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_prefix=str(path / "user"),
        vocab_size=50,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    return path / "user.model"


def test_word_vocab_maps_whitespace_tokens_and_unknowns(tmp_path):
    vocab = WordVocab.build(["a b b", "c b a"], tmp_path / "v.txt", size=6)
    assert vocab.tokens == ["<pad>", "<unk>", "<s>", "</s>", "b", "a"]  # 2 kept, by frequency
    assert vocab.encode(["a  b c"]) == [[5, 4, UNK_ID]]
    assert vocab.decode([[5, 4, EOS_ID, PAD_ID]]) == ["a b"]
    assert WordVocab.load(tmp_path / "v.txt").tokens == vocab.tokens
    (tmp_path / "bad.txt").write_text("a\nb\n")
    with pytest.raises(CheckpointError, match="bad.txt: must start with <pad>"):
        WordVocab.load(tmp_path / "bad.txt")


def test_a_model_with_other_special_ids_is_mapped_onto_ours(tmp_path):
    path = spm_with_default_ids(tmp_path)
    processor = spm.SentencePieceProcessor(model_file=str(path))
    assert (processor.unk_id(), processor.bos_id(), processor.eos_id()) == (0, 1, 2)
    vocab = SubwordVocab.load(path)
    assert len(vocab) == processor.get_piece_size() + 1  # a pad id added
    text = "ba be bi bo"
    [ids] = vocab.encode([text])
    assert min(ids) > EOS_ID
    assert [i - 1 for i in ids] == processor.encode(text)  # model id k > 2 is our k + 1
    assert vocab.decode([ids + [EOS_ID]]) == [text]
    assert vocab.pieces(ids) == processor.encode(text, out_type=str)
    assert vocab.pieces([PAD_ID, UNK_ID]) == ["<pad>", processor.id_to_piece(0)]
    assert vocab.encode(["ba ü"])[0][-1] == UNK_ID


def test_training_with_the_users_sentencepiece_model(tmp_path):
    path = spm_with_default_ids(tmp_path)
    run = tmp_path / "run"
    train(tiny_config(**QUICK, **{"data.vocab.model": str(path)}), run, progress=False)
    assert (run / "spm.joint.model").read_bytes() == path.read_bytes()
    translator = Translator.load(run)
    assert len(translator.src_vocab) == len(SubwordVocab.load(path))
    [t] = translator.translate(["ba be bi"], beam=1)
    assert isinstance(t.text, str)


def test_training_on_pre_segmented_text_with_a_word_vocabulary(tmp_path):
    run = tmp_path / "run"
    train(tiny_config(**QUICK, **{"data.vocab.type": "none"}), run, progress=False)
    assert (run / "vocab.joint.txt").is_file() and not (run / "spm.joint.model").exists()
    translator = Translator.load(run)
    assert isinstance(translator.tgt_vocab, WordVocab)
    assert set(translator.src_vocab.tokens[4:]) <= set(WORDS)  # the corpus's words, whole
    [t] = translator.translate(["ba be bi"], beam=2)
    assert set(t.text.split()) <= set(translator.tgt_vocab.tokens[4:])
    assert t.target_tokens == t.text.split()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"data.vocab.model": "m", "data.vocab.joint": False}, "needs joint: true"),
        ({"data.vocab.src_model": "m", "data.vocab.joint": False}, "'data.vocab.tgt_model'"),
        ({"data.vocab.src_model": "m", "data.vocab.tgt_model": "n"}, "must be false"),
        ({"data.vocab.model": "m", "data.vocab.type": "none"}, "cannot go with type none"),
    ],
)
def test_inconsistent_vocabulary_settings_are_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        tiny_config(**overrides)
