"""Commands that make models and data: ``train``, ``preprocess``, ``demo`` and ``corpus``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from softalign.errors import Interrupted, SoftalignError

if TYPE_CHECKING:
    from softalign.train.session import TrainState


def cmd_train(args: argparse.Namespace) -> int:
    from softalign.train.interrupts import exit_status

    overrides = list(args.set)
    if args.data_dir:
        overrides.append(f"data.dir={args.data_dir}")
    if args.device:
        overrides.append(f"training.device={args.device}")
    if args.backend:
        overrides.append(f"training.backend={args.backend}")
    try:
        return exit_status(_train_or_resume(args, overrides))
    except Interrupted as exc:
        # interrupted before the first step: nothing to checkpoint, nothing left behind
        print(f"softalign: {exc} before training started", file=sys.stderr)
        return 128 + exc.signum


def _train_or_resume(args: argparse.Namespace, overrides: list[str]) -> TrainState:
    from softalign.config import load_config
    from softalign.train.loop import resume, train

    if args.resume:
        if args.config:
            raise SoftalignError("give either CONFIG.yaml or --resume RUN_DIR, not both")
        return resume(
            Path(args.resume),
            max_steps=args.max_steps,
            checkpoint_every=args.checkpoint_every,
            overrides=overrides,
            progress=not args.no_progress,
        )
    if not args.config or not args.output:
        raise SoftalignError("train needs CONFIG.yaml and -o RUN_DIR (or --resume RUN_DIR)")
    config = load_config(args.config, overrides)
    check_training_fits(config)
    return train(
        config,
        Path(args.output),
        max_steps=args.max_steps,
        checkpoint_every=args.checkpoint_every,
        progress=not args.no_progress,
    )


def check_training_fits(config) -> None:
    """Refuse a model too big for memory before reading data or training a vocabulary; the
    vocabularies are taken at their configured size (the generator may end up smaller)."""
    from softalign.device import pick_device
    from softalign.model_size import check_model_fits

    size = config.data.vocab.size
    device = pick_device(config.training.device)
    check_model_fits(config.model, size, size, training=True, device=device)


def cmd_preprocess(args: argparse.Namespace) -> int:
    from softalign.config import load_config
    from softalign.data.binarized import preprocess

    overrides = list(args.set) + ([f"data.dir={args.data_dir}"] if args.data_dir else [])
    config = load_config(args.config, overrides)
    counts = preprocess(config, Path(args.output), progress=sys.stderr.isatty())
    print(", ".join(f"{key}: {value}" for key, value in counts.items()))
    print(f"wrote {args.output}; train from it with data.binarized: {args.output}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from softalign.config import parse_overrides
    from softalign.demo import run_demo

    run_demo(
        Path(args.output),
        minutes=args.minutes,
        overrides=parse_overrides(args.set),
        test_size=args.test_size,
        progress=not args.no_progress,
        backend=args.backend,
    )
    return 0


def cmd_corpus(args: argparse.Namespace) -> int:
    from softalign.data.bible import describe_texts, export_corpus

    if args.list:
        print(describe_texts())
        return 0
    if not args.pair or not args.output:
        raise SoftalignError("corpus bible needs SRC-TGT and -o DIR (or --list)")
    counts = export_corpus(args.pair, Path(args.output))
    for name, count in counts.items():
        print(f"{name}: {count} verse pairs")
    print(f"wrote {args.output} (texts and licences in SOURCES.md)")
    return 0
