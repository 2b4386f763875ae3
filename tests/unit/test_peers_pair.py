"""benchmarks/peers.py --pair: En-De by default, En-Fr on its own files, configs and recipe."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import peers  # noqa: E402
from peers_setup import data_dir, pair_suffix  # noqa: E402
from peers_systems import Joey, OpenNMT, Softalign, SoftalignRecipe  # noqa: E402

PYTHON = Path(sys.executable)


def test_en_de_is_the_default_and_keeps_the_earlier_work_dir_layout(tmp_path):
    args = peers.parse_args([])
    assert (args.pair, args.tgt) == ("en-de", "de")
    assert data_dir(tmp_path, "de") == tmp_path / "data"
    assert OpenNMT(tmp_path / "data", PYTHON).vocab_dir() == tmp_path / "onmt_vocab"


def test_en_fr_has_a_data_dir_vocabulary_tables_and_runs_of_its_own(tmp_path):
    args = peers.parse_args(["--pair", "en-fr"])
    assert args.tgt == "fr"
    data = data_dir(tmp_path, "fr")
    assert data == tmp_path / "data-en-fr"
    assert pair_suffix("fr") == "-en-fr"
    assert OpenNMT(data, PYTHON, "fr").vocab_dir() == tmp_path / "onmt_vocab-en-fr"


def test_an_unknown_pair_is_refused(capsys):
    with pytest.raises(SystemExit):
        peers.parse_args(["--pair", "en-xx"])
    assert "invalid choice: 'en-xx'" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="unknown target language 'xx'"):
        pair_suffix("xx")


def test_softalign_trains_on_the_pairs_files_with_its_target_language(tmp_path):
    config = Softalign(tmp_path, PYTHON, "fr").config(10, 1)
    files = {k: v for k, v in config["data"].items() if k.endswith(("_src", "_tgt"))}
    assert files == {
        "train_src": "train.en",
        "train_tgt": "train.fr",
        "valid_src": "val.en",
        "valid_tgt": "val.fr",
        "test_src": "test_2016_flickr.en",
        "test_tgt": "test_2016_flickr.fr",
    }
    assert (config["data"]["src_lang"], config["data"]["tgt_lang"]) == ("en", "fr")
    # the peers' model either way: only the language and the files differ
    german = Softalign(tmp_path, PYTHON).config(10, 1)
    assert config["model"] == german["model"]
    assert german["data"]["tgt_lang"] == "de"


def test_the_recipe_follows_the_pair_and_its_budget(tmp_path):
    german, french = SoftalignRecipe(tmp_path, PYTHON), SoftalignRecipe(tmp_path, PYTHON, "fr")
    assert german.config_file(15 * 60) == "multi30k-en-de-15min.yaml"
    assert german.config_file(45 * 60) == "multi30k-en-de-45min.yaml"
    # En-Fr has only the 45-minute recipe: a shorter budget trains it to its own deadline
    assert french.config_file(45 * 60) == "multi30k-en-fr-45min.yaml"
    assert french.config_file(15 * 60) == "multi30k-en-fr-45min.yaml"
    config = french.config(10**9, 20, 15 * 60)
    assert config["data"]["tgt_lang"] == "fr"
    assert config["training"]["max_minutes"] == 14.0  # a minute before the deadline


def test_the_peers_configs_read_the_pairs_target_side(tmp_path):
    data, run = tmp_path / "data-en-fr", tmp_path / "run"
    onmt = OpenNMT(data, PYTHON, "fr").config(run, 10, 1)
    assert onmt["data"]["corpus_1"] == {
        "path_src": f"{data}/train.sp.en",
        "path_tgt": f"{data}/train.sp.fr",
    }
    assert onmt["data"]["valid"]["path_tgt"] == f"{data}/val.sp.fr"
    assert onmt["tgt_vocab"] == f"{tmp_path}/onmt_vocab-en-fr/vocab.tgt"
    joey = Joey(data, PYTHON, "fr").config(run, 10, 1)
    assert (joey["data"]["src"]["lang"], joey["data"]["trg"]["lang"]) == ("en", "fr")
    assert joey["data"]["train"] == f"{data}/train"


def test_prepare_data_writes_the_pairs_text_model_and_split_copies(tmp_path, monkeypatch):
    import gzip

    import peers_setup
    import sentencepiece as spm

    multi30k = tmp_path / "multi30k"
    multi30k.mkdir()
    words = {"en": "a dog runs on the grass", "fr": "un chien court sur l' herbe"}
    for split in peers_setup.SPLITS:
        for lang, sentence in {**words, "de": "ein Hund"}.items():
            lines = [f"{sentence} {i}" for i in range(40)]
            with gzip.open(multi30k / f"{split}.{lang}.gz", "wt", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in lines))
    monkeypatch.setattr(peers_setup, "VOCAB_SIZE", 40)  # what this little text can fill
    data = peers_setup.prepare_data(tmp_path / "work", multi30k, "fr")
    assert data == tmp_path / "work" / "data-en-fr"
    sp = spm.SentencePieceProcessor(model_file=str(data / "spm.joint.model"))
    for split in peers_setup.SPLITS:
        assert not (data / f"{split}.de").exists()
        french = (data / f"{split}.fr").read_text(encoding="utf-8").splitlines()
        assert french[7] == "un chien court sur l' herbe 7"
        pieces = (data / f"{split}.sp.fr").read_text(encoding="utf-8").splitlines()
        assert sp.decode(pieces[7].split()) == french[7]
    assert (data / ".prepared").is_file()
