"""AER on the Hansards En-Fr gold set: softalign's attention vs eflomal vs the diagonal baseline.

    nice -n 15 .venv/bin/python benchmarks/alignment_aer.py --minutes 12 [--reverse-minutes 8]

1. Training text: Multi30k En-Fr train (29,000 pairs) plus the 100 unlabeled sentence pairs of
   ``alignment-enfr/dev.src-tgt``, lower-cased and tokenized the way the gold set is (French
   contractions split: du -> de le, des -> de les, au -> à le, l' -> le, ...).
2. softalign: an En->Fr attention model trained for ``--minutes`` (and, with
   ``--reverse-minutes``, a Fr->En one for the symmetrized rows); links from the forced-decoded
   attention of the 100 dev pairs.
3. eflomal (pip install eflomal) aligns exactly the same training pairs; its links for the
   dev pairs are scored.
4. Diagonal baseline: English word i -> French word round(i·|f|/|e|).

Prints a Markdown table of precision, recall and AER (Och & Ney 2003) against ``dev.gold``.
Run directories are reused when they already hold a checkpoint (delete them to retrain).
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from softalign.analysis.aer import alignment_error_rate
from softalign.analysis.align import align_pairs
from softalign.analysis.extract import SYMMETRIZERS, diagonal_links
from softalign.analysis.pharaoh import Link, read_alignments
from softalign.config import from_dict
from softalign.translator import Translator

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = Path(os.environ.get("SOFTALIGN_SHARED_DATA", REPO.parent / "shared" / "data"))

# Small enough to see the corpus about once in a 15-minute CPU budget.
MODEL = {
    "embedding_size": 128,
    "encoder_hidden": 128,
    "encoder_layers": 1,
    "bidirectional": True,
    "decoder_hidden": 256,
    "attention": "additive",
    "attention_size": 128,
    "output_size": 128,
    "dropout": 0.1,
}

# ------------------------------------------------------------------ tokenization (Hansards-like)

_SPLIT = re.compile(r"""([,!?;:()"«»%/]|\.(?=\s|$)|(?<=\w)-(?=\w))""")
_FR_ELISION = re.compile(r"\b(jusqu|lorsqu|puisqu|qu|l|d|j|n|s|c|m|t)'", re.IGNORECASE)
_FR_FULL = {"jusqu": "jusque", "lorsqu": "lorsque", "puisqu": "puisque", "qu": "que", "l": "le"}
_FR_FULL.update({c: c + "e" for c in "djnscmt"})
_FR_CONTRACTIONS = {"du": "de le", "des": "de les", "au": "à le", "aux": "à les"}


def tokenize_en(line: str) -> str:
    line = line.lower().replace("’", "'")
    line = re.sub(r"n't\b", " n't", re.sub(r"'(s|re|ve|ll|d|m)\b", r" '\1", line))
    return " ".join(_SPLIT.sub(r" \1 ", line).split())


def tokenize_fr(line: str) -> str:
    line = line.lower().replace("’", "'")
    line = _FR_ELISION.sub(lambda m: _FR_FULL[m.group(1).lower()] + " ", line)
    words = _SPLIT.sub(r" \1 ", line).split()
    return " ".join(_FR_CONTRACTIONS.get(w, w) for w in words)


# ---------------------------------------------------------------------------------- data


def read_gz(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle]


def prepare(data_dir: Path, workdir: Path, copies: int) -> tuple[list[str], list[str], int]:
    """Write train/valid files (En, Fr) to ``workdir``; return the training pairs and the
    number of dev pairs. The dev pairs are appended ``copies`` times, so they come last."""
    m30k, gold_dir = data_dir / "multi30k", data_dir / "alignment-enfr"
    dev = [
        line.split(" ||| ") for line in (gold_dir / "dev.src-tgt").read_text("utf-8").split("\n")
    ]
    dev = [(en.strip(), fr.strip()) for en, fr, *_ in (d for d in dev if len(d) >= 2)]
    train_en = [tokenize_en(s) for s in read_gz(m30k / "train.en.gz")]
    train_fr = [tokenize_fr(s) for s in read_gz(m30k / "train.fr.gz")]
    train_en += [en.lower() for en, _ in dev] * copies
    train_fr += [fr.lower() for _, fr in dev] * copies
    workdir.mkdir(parents=True, exist_ok=True)
    files = {
        "train.en": train_en,
        "train.fr": train_fr,
        "valid.en": [tokenize_en(s) for s in read_gz(m30k / "val.en.gz")],
        "valid.fr": [tokenize_fr(s) for s in read_gz(m30k / "val.fr.gz")],
    }
    for name, lines in files.items():
        (workdir / name).write_text("".join(line + "\n" for line in lines), "utf-8")
    return train_en, train_fr, len(dev)


# ------------------------------------------------------------------------------ softalign


def train_direction(workdir: Path, src: str, tgt: str, minutes: float, threads: int) -> Path:
    """Train (or reuse) a ``src`` -> ``tgt`` run in ``workdir/run-src-tgt``."""
    from softalign.checkpoint import latest_checkpoint
    from softalign.train.loop import train

    run_dir = workdir / f"run-{src}-{tgt}"
    if run_dir.is_dir() and latest_checkpoint(run_dir) is not None:
        print(f"reusing {run_dir}", file=sys.stderr)
        return run_dir
    config = from_dict(
        {
            "data": {
                "dir": str(workdir),
                "src_lang": src,
                "tgt_lang": tgt,
                "train_src": f"train.{src}",
                "train_tgt": f"train.{tgt}",
                "valid_src": f"valid.{src}",
                "valid_tgt": f"valid.{tgt}",
                "valid_size": 200,
                "vocab": {"type": "unigram", "size": 4000, "joint": True},
            },
            "model": MODEL,
            "training": {
                "lr": 0.002,
                "batch_tokens": 3000,
                "max_minutes": minutes,
                "valid_every": 1000,
                "checkpoint_every": 1000,
                "valid_bleu": False,
                "log_every": 50,
                "threads": threads,
            },
        }
    )
    train(config, run_dir, progress=False)
    return run_dir


def load_latest(run_dir: Path) -> Translator:
    """The run's last checkpoint (validation on Multi30k says little about Hansards)."""
    from softalign.checkpoint import latest_checkpoint

    return Translator.load(run_dir, checkpoint=latest_checkpoint(run_dir), device="cpu")


def attention_rows(
    forward: Path, reverse: Path | None, dev_en: list[str], dev_fr: list[str]
) -> list[tuple[str, list[set[Link]]]]:
    model = load_latest(forward)
    rows = [
        ("softalign attention, argmax (En→Fr)", align_pairs(model, dev_en, dev_fr)),
        (
            "softalign attention, threshold 0.3 (En→Fr)",
            align_pairs(model, dev_en, dev_fr, method="threshold", threshold=0.3),
        ),
    ]
    if reverse is not None:
        back = load_latest(reverse)
        rows.append(
            (
                "softalign attention, argmax (Fr→En)",
                [{(j, i) for i, j in links} for links in align_pairs(back, dev_fr, dev_en)],
            )
        )
        for how in ("intersect", "grow-diag", "grow-diag-final-and"):
            links = align_pairs(model, dev_en, dev_fr, reverse=back, symmetrize=how)
            rows.append((f"softalign attention, both directions, {how}", links))
    return rows


# -------------------------------------------------------------------------------- eflomal


def eflomal_rows(
    train_en: list[str], train_fr: list[str], n_dev: int
) -> list[tuple[str, list[set[Link]]]]:
    try:
        import eflomal
    except ImportError:
        print("eflomal is not installed (pip install eflomal): skipping it", file=sys.stderr)
        return []
    with tempfile.TemporaryDirectory() as tmp:
        fwd, rev = Path(tmp) / "fwd", Path(tmp) / "rev"
        eflomal.Aligner().align(
            train_en, train_fr, links_filename_fwd=str(fwd), links_filename_rev=str(rev)
        )
        forward = [a.possible for a in read_alignments(fwd)][-n_dev:]
        backward = [a.possible for a in read_alignments(rev)][-n_dev:]
    rows = [("eflomal forward", forward), ("eflomal reverse", backward)]
    for how in ("intersect", "grow-diag", "grow-diag-final-and"):
        combine = SYMMETRIZERS[how]
        rows.append(
            (f"eflomal {how}", [combine(f, b) for f, b in zip(forward, backward, strict=True)])
        )
    return rows


# ----------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--workdir", type=Path, default=REPO / "runs" / "alignment-aer")
    parser.add_argument("--minutes", type=float, default=12.0, help="En->Fr training budget")
    parser.add_argument(
        "--reverse-minutes", type=float, default=0.0, help="Fr->En budget (0 = no reverse model)"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    parser.add_argument(
        "--dev-copies",
        type=int,
        default=1,
        help="times the 100 unlabeled dev pairs are added to the training text (both aligners)",
    )
    parser.add_argument("--no-eflomal", action="store_true")
    args = parser.parse_args()
    gold_dir = args.data_dir / "alignment-enfr"
    if not (gold_dir / "dev.gold").is_file():
        print(f"alignment data not found under {args.data_dir}", file=sys.stderr)
        return 2
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    train_en, train_fr, n_dev = prepare(args.data_dir, args.workdir, args.dev_copies)
    dev_en, dev_fr = train_en[-n_dev:], train_fr[-n_dev:]
    gold = read_alignments(gold_dir / "dev.gold", one_index=True)

    started = time.time()
    forward = train_direction(args.workdir, "en", "fr", args.minutes, args.threads)
    reverse = (
        train_direction(args.workdir, "fr", "en", args.reverse_minutes, args.threads)
        if args.reverse_minutes
        else None
    )
    trained = time.time() - started
    rows = [
        (
            "diagonal baseline",
            [
                diagonal_links(len(e.split()), len(f.split()))
                for e, f in zip(dev_en, dev_fr, strict=True)
            ],
        )
    ]
    rows += attention_rows(forward, reverse, dev_en, dev_fr)
    if not args.no_eflomal:
        started = time.time()
        rows += eflomal_rows(train_en, train_fr, n_dev)
        print(f"eflomal: {time.time() - started:.0f} s", file=sys.stderr)

    print(
        f"{len(train_en)} training pairs (Multi30k train + the {n_dev} dev pairs "
        f"x{args.dev_copies}), the same for both aligners; softalign training: "
        f"{trained / 60:.1f} min wall clock\n"
    )
    print("| aligner | precision | recall | AER |")
    print("| --- | --- | --- | --- |")
    for name, links in rows:
        score = alignment_error_rate(gold, links)
        print(f"| {name} | {score.precision:.3f} | {score.recall:.3f} | {score.aer:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
