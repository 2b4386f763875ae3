"""Set-up for ``peers.py``: the peer toolkits in their own venvs, and the shared data.

Everything lives in a work dir outside the repository (default ``~/.cache/softalign-bench``)
and is cached between runs: a venv is reinstalled only when its package list changes, the data
only when its marker is missing.

Peers (what they need on torch 2.13, see ``../shared/peers/README.md``):

- Joey NMT 2.3.0: ``sentencepiece<0.2`` (``SetVocabulary`` was removed in 0.2) and the
  undeclared ``importlib_metadata``; its ``plateau`` scheduler passes ``verbose=``, which
  torch removed, so the config uses a constant rate (``exponential`` with factor 1.0).
- OpenNMT-py 3.5.1 pins ``torch<2.3``: it is installed with ``--no-deps`` next to its real
  dependencies; translating needs ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (its checkpoints
  pickle an ``argparse.Namespace``).

Both venvs get ``torch==2.13.0`` through a constraints file, so pip never pulls another torch.

Data: Multi30k En-De or En-Fr (train, val, test_2016_flickr) as plain text in a data dir of its
own per pair (:func:`data_dir`), one joint 8k unigram SentencePiece model trained exactly as
softalign trains its own (same call, same text, same special ids), and the SentencePiece-split
copies that OpenNMT-py reads.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
import venv
from pathlib import Path

TORCH_PIN = "torch==2.13.0"
PACKAGES = {
    "joey": [["joeynmt==2.3.0", "sentencepiece<0.2", "importlib_metadata", "sacrebleu"]],
    "onmt": [
        [
            "configargparse",
            "ctranslate2>=4,<5",
            "tensorboard",
            "flask",
            "waitress",
            "pyonmttok>=1.37,<2",
            "pyyaml",
            "sacrebleu",
            "rapidfuzz",
            "pyahocorasick",
            "six",
            "sentencepiece",
            "spacy",
            "fasttext-wheel",
        ],
        ["--no-deps", "OpenNMT-py==3.5.1"],
    ],
}
SPLITS = ("train", "val", "test_2016_flickr")
SRC = "en"
TARGETS = ("de", "fr")  # the pairs peers.py runs: En-De (the default) and En-Fr
DEFAULT_TGT = TARGETS[0]
VOCAB_SIZE = 8000


def log(message: str) -> None:
    print(f"[peers] {message}", file=sys.stderr, flush=True)


def venv_python(workdir: Path, name: str) -> Path:
    return workdir / name / "bin" / "python"


def install_peer(workdir: Path, name: str) -> Path:
    """Create ``workdir/name`` with the peer's packages; skipped when already installed."""
    root = workdir / name
    recipe = json.dumps([TORCH_PIN, PACKAGES[name]])
    marker = root / ".softalign-bench"
    if marker.is_file() and marker.read_text() == recipe:
        return venv_python(workdir, name)
    log(f"installing {name} into {root} (a few minutes, once)")
    venv.create(root, with_pip=True, clear=True)
    constraints = workdir / "constraints.txt"
    constraints.write_text(TORCH_PIN + "\n")
    pip = [str(venv_python(workdir, name)), "-m", "pip", "install", "-c", str(constraints)]
    with open(workdir / f"{name}-install.log", "w") as out:
        for i, group in enumerate(PACKAGES[name]):
            extra = [TORCH_PIN] if i == 0 else []
            done = subprocess.run(pip + extra + group, stdout=out, stderr=subprocess.STDOUT)
            if done.returncode:
                raise SystemExit(f"installing {name} failed: see {out.name}")
    marker.write_text(recipe)
    return venv_python(workdir, name)


def pair_suffix(tgt: str) -> str:
    """What tells a pair's files apart in the work dir: nothing for En-De (the caches of
    earlier runs stay valid), ``-en-fr`` for En-Fr."""
    if tgt not in TARGETS:
        raise SystemExit(f"--pair: unknown target language {tgt!r} ({', '.join(TARGETS)})")
    return "" if tgt == DEFAULT_TGT else f"-{SRC}-{tgt}"


def data_dir(workdir: Path, tgt: str) -> Path:
    return workdir / f"data{pair_suffix(tgt)}"


def _train_spm(data: Path, tgt: str) -> None:
    """The joint SentencePiece model, trained by softalign's own code on softalign's input.

    softalign's ``train_vocabs`` trains on ``train.src + train.tgt`` (the raw lines); calling
    it here on the same files gives the model that softalign's run will train for itself
    (``peers.py`` checks that both have the same pieces and scores).
    """
    from softalign.config import DataConfig, TrainingConfig, VocabConfig
    from softalign.data.dataset import train_vocabs
    from softalign.data.sources import load_splits

    config = DataConfig(
        dir=str(data),
        train_src="train.en",
        train_tgt=f"train.{tgt}",
        valid_src="val.en",
        valid_tgt=f"val.{tgt}",
        vocab=VocabConfig(type="unigram", size=VOCAB_SIZE, joint=True),
    )
    # softalign's own runs train theirs with training.seed (default 42): the same pieces
    seed = TrainingConfig().seed
    train_vocabs(config, load_splits(config, ("train",))["train"], data, seed)


def prepare_data(workdir: Path, multi30k: Path, tgt: str = DEFAULT_TGT) -> Path:
    """:func:`data_dir`: plain text, ``spm.joint.model``, and ``*.sp.{en,tgt}`` split text."""
    data = data_dir(workdir, tgt)
    marker = data / ".prepared"
    if marker.is_file():
        return data
    data.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        for lang in (SRC, tgt):
            with gzip.open(multi30k / f"{split}.{lang}.gz", "rt", encoding="utf-8") as f:
                (data / f"{split}.{lang}").write_text(f.read(), encoding="utf-8")
    log("training the joint 8k SentencePiece model")
    _train_spm(data, tgt)
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(data / "spm.joint.model"))
    for split in SPLITS:
        for lang in (SRC, tgt):
            lines = (data / f"{split}.{lang}").read_text(encoding="utf-8").splitlines()
            pieces = sp.encode([line.strip() for line in lines], out_type=str)
            (data / f"{split}.sp.{lang}").write_text(
                "".join(" ".join(p) + "\n" for p in pieces), encoding="utf-8"
            )
    marker.write_text(file_digest(data / "spm.joint.model"))
    return data


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
