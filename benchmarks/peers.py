"""softalign vs Joey NMT 2.3.0 vs OpenNMT-py 3.5.1: the same model, the same data, one run.

    python benchmarks/peers.py [--quick] [--workdir DIR] [--budget-minutes 15] [--phases ...]
                               [--pair en-de|en-fr]

The model in all three: embeddings 256, 2-layer bidirectional GRU encoder (256 per
direction), 1-layer GRU decoder 512 with additive attention, input feeding and a bridge,
dropout 0.2, Adam 1e-3, token batches of 2000, gradient-norm clip 1.0.

Input: Multi30k En-De (``--pair en-fr``: En-Fr, each pair with its own data dir, vocabulary
tables and runs in the work dir). One joint 8k unigram SentencePiece model, trained by
softalign's own code on the training text, segments the text for everyone: softalign trains
it itself from the same raw text (the harness checks it gets the same pieces and scores),
Joey NMT tokenizes the raw text with it, OpenNMT-py reads the split copies. Each system keeps
its own notion of batch size in tokens (2000) and its own vocabulary table over those
subwords: the peers keep the types seen in training, about 5.5k on the German side, and so
does softalign's generator (``model.output_vocab: seen``, its default; the ``target vocab``
column reads each model's generator size, and the MFU column counts it).

``softalign-bf16`` is softalign with ``training.precision`` and ``decoding.precision`` bf16
(autocast: bf16 matrix products on AMX, fp32 weights, softmax and attention); its MFU column
is still against the fp32 peak. ``softalign-reference`` is softalign with ``--backend
reference``: the plain-PyTorch model, without the fast CPU backend (what that backend buys).
``softalign-recipe`` is the same model trained with softalign's own recipe for a 15-minute
budget (``configs/multi30k-en-de-15min.yaml``; ``multi30k-en-de-45min.yaml`` when
``--budget-minutes`` is 45 or more; En-Fr has one, ``multi30k-en-fr-45min.yaml``: a cosine
decay that ends at the deadline, the last checkpoints averaged, the config's own vocabulary;
it stops itself a minute before the deadline so that start-up and averaging fit in the
budget) and decodes its average; ``softalign-recipe-reference`` decodes that same budget
model with the reference backend (it trains nothing).

Phases (systems alternate within each, the order rotating between rounds):

1. ``train``: ``--warmup`` + ``--steps`` steps per system and round, every step logged;
   the median target tokens/s of the steps after warm-up, and its MFU: training matrix
   FLOPs per target token (``peers_flops.py``) × tokens/s ÷ the fp32 ``torch.matmul`` peak
   measured in this run.
2. ``budget``: each system trains for ``--budget-minutes`` of wall clock (from process
   start: start-up and vocabulary building count), then is stopped by a signal. With
   ``--seeds 1,2,3`` each softalign system is trained once per seed (``NAME-seedN``), the
   peers once; the decode table then adds each softalign system's mean ± sd over the seeds.
3. ``decode``: each budget model translates ``test_2016_flickr`` (1,000 sentences) greedy
   and with beam 5, 2000 source tokens per batch, in a fresh process: sentences/s over the
   whole process (start-up included) and over the tool's own search timing, the search MFU
   (the model's matrix FLOPs for the outputs it found, ``peers_flops.search_macs``, per second
   of search against the fp32 peak: equal MFU means equal speed per FLOP, and the rest of a
   speed ratio is FLOPs saved, e.g. by a smaller vocabulary), peak RSS, and cased sacreBLEU /
   chrF of the beam-5 output (the time-to-quality column).

Everything is written under ``--workdir`` (default ``~/.cache/softalign-bench``); the venvs
and data are reused by later runs, the runs of phase 1-3 are redone every time.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers_flops import (  # noqa: E402
    ModelShape,
    matmul_peak_flops,
    search_macs,
    train_flops_per_target_token,
)
from peers_setup import SRC, TARGETS, install_peer, log, pair_suffix, prepare_data  # noqa: E402
from peers_systems import (  # noqa: E402
    Decoded,
    Joey,
    OpenNMT,
    Softalign,
    SoftalignBF16,
    SoftalignRecipe,
    SoftalignRecipeReference,
    SoftalignReference,
    System,
    median,
    pieces_per_line,
)

from softalign.metrics import score_corpus  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MULTI30K = Path(os.environ.get("SOFTALIGN_SHARED_DATA", REPO.parent / "shared" / "data"))
MULTI30K = MULTI30K / "multi30k"
TEST = "test_2016_flickr"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="check the harness in a few minutes")
    p.add_argument("--workdir", type=Path, default=Path.home() / ".cache" / "softalign-bench")
    p.add_argument("--phases", default="train,budget,decode", help="comma-separated subset")
    p.add_argument("--warmup", type=int, default=20, help="training steps not measured")
    p.add_argument("--steps", type=int, default=60, help="measured training steps")
    p.add_argument("--rounds", type=int, default=1, help="throughput runs per system")
    p.add_argument("--budget-minutes", type=float, default=15.0)
    p.add_argument(
        "--pair",
        default="en-de",
        choices=[f"{SRC}-{tgt}" for tgt in TARGETS],
        help="the Multi30k language pair (test2016 scores its target side)",
    )
    p.add_argument("--decode-sentences", type=int, default=0, help="0 = the whole test set")
    p.add_argument("--systems", default="softalign,softalign-bf16,joey,onmt")
    p.add_argument(
        "--budget-systems",
        help="systems for the budget and decode phases, if not --systems (e.g. "
        "softalign-recipe,softalign-recipe-reference,onmt)",
    )
    p.add_argument(
        "--seeds",
        default="",
        help="comma-separated seeds: each softalign system of the budget phase is trained once "
        "per seed, and the decode table adds their mean ± sd (default: one run, the config's seed)",
    )
    args = p.parse_args(argv)
    args.tgt = args.pair.split("-")[1]
    if args.quick:
        args.warmup, args.steps, args.rounds = 3, 5, 1
        args.budget_minutes, args.decode_sentences = 1.0, 100
    return args


def build_systems(args: argparse.Namespace, data: Path) -> tuple[list[System], list[System]]:
    """The systems of the throughput phase and those of the budget and decode phases."""
    names = args.systems.split(",")
    budget_names = (args.budget_systems or args.systems).split(",")
    built = {name: make_system(args, data, name) for name in dict.fromkeys(names + budget_names)}
    budget = [built[n] for n in budget_names]
    if args.seeds:
        seeds = [int(s) for s in args.seeds.split(",")]
        budget = [seeded for system in budget for seeded in per_seed(system, seeds)]
    return [built[n] for n in names], budget


def per_seed(system: System, seeds: list[int]) -> list[System]:
    """One copy of a softalign system per seed, named ``NAME-seedN`` (a peer: itself)."""
    if not isinstance(system, Softalign):
        return [system]
    copies = []
    for seed in seeds:
        seeded = copy.copy(system)
        seeded.name, seeded.seed, seeded.seed_of = f"{system.name}-seed{seed}", seed, system.name
        if seeded.budget_of:
            seeded.budget_of = f"{seeded.budget_of}-seed{seed}"
        copies.append(seeded)
    return copies


def make_system(args: argparse.Namespace, data: Path, name: str) -> System:
    python, tgt = Path(sys.executable), args.tgt
    softalign = {
        "softalign": Softalign,
        "softalign-bf16": SoftalignBF16,
        "softalign-reference": SoftalignReference,
        "softalign-recipe": SoftalignRecipe,
        "softalign-recipe-reference": SoftalignRecipeReference,
    }
    if name in softalign:
        return softalign[name](data, python, tgt)
    if name == "joey":
        return Joey(data, install_peer(args.workdir, "joey"), tgt)
    if name == "onmt":
        onmt = OpenNMT(data, install_peer(args.workdir, "onmt"), tgt)
        onmt.build_vocab()
        return onmt
    raise SystemExit(
        f"--systems: unknown system {name!r} ({', '.join([*softalign, 'joey', 'onmt'])})"
    )


def rotated(systems: list[System], round_no: int) -> list[System]:
    k = round_no % len(systems)
    return systems[k:] + systems[:k]


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def lengths(data: Path, split: str, tgt_lang: str) -> tuple[list[int], list[int]]:
    """Source subwords and target subwords + EOS per training pair (pairs over 100 dropped)."""
    src = pieces_per_line(data / f"{split}.sp.en")
    tgt = [n + 1 for n in pieces_per_line(data / f"{split}.sp.{tgt_lang}")]
    kept = [(s, t) for s, t in zip(src, tgt, strict=True) if 0 < s <= 100 and 1 < t <= 101]
    return [s for s, _ in kept], [t for _, t in kept]


# ----------------------------------------------------------------------------- phases


def phase_train(args, systems, runs: Path, peak: float) -> list[str]:
    rates: dict[str, list[float]] = {s.name: [] for s in systems}
    vocab: dict[str, int] = {}
    rss: dict[str, float] = {}
    for round_no in range(args.rounds):
        for system in rotated(systems, round_no):
            run_dir = fresh(runs / f"train-{system.name.split()[0]}-{round_no}")
            log(f"throughput: {system.name}, round {round_no + 1}/{args.rounds}")
            proc = system.train(run_dir, args.warmup + args.steps, 1, None)
            per_step = system.step_rates(run_dir)
            measured = [r for step, r in per_step.items() if step > args.warmup]
            if len(measured) < args.steps:
                raise RuntimeError(f"{system.name}: {len(measured)} of {args.steps} steps logged")
            rates[system.name] += measured
            vocab[system.name] = system.tgt_vocab_size(run_dir)
            rss[system.name] = max(rss.get(system.name, 0.0), proc.peak_rss_mb)
            shared = isinstance(system, Softalign) and system.shared_vocab
            if shared and not system.same_vocab(run_dir):
                raise RuntimeError("softalign trained a different SentencePiece model")
    src_len, tgt_len = lengths(systems[0].data, "train", args.tgt)
    best_peer = max(
        (median(v) for k, v in rates.items() if not k.startswith("softalign")), default=0.0
    )
    rows = [
        f"Training: median target tokens/s over steps {args.warmup + 1}-"
        f"{args.warmup + args.steps} ({args.rounds} run(s) each); fp32 matmul peak "
        f"{peak / 1e9:.0f} GFLOP/s.",
        "",
        "| system | target vocab | target tok/s | vs best peer | train MFLOP/token "
        "| MFU (vs the fp32 peak) | peak RSS |",
        "|---|---|---|---|---|---|---|",
    ]
    for system in systems:
        tok_s = median(rates[system.name])
        flops = train_flops_per_target_token(ModelShape(), vocab[system.name], src_len, tgt_len)
        ours = system.name.startswith("softalign")
        ratio = f"{tok_s / best_peer:.2f}×" if best_peer and ours else ""
        rows.append(
            f"| {system.name} | {vocab[system.name]} | {tok_s:,.0f} | {ratio} "
            f"| {flops / 1e6:.1f} | {tok_s * flops / peak:.1%} | {rss[system.name]:,.0f} MB |"
        )
    return rows


def phase_budget(args, systems, runs: Path) -> dict[str, float]:
    """Train each system for the budget; returns each one's peak RSS (MB)."""
    rss = {}
    for system in systems:
        if getattr(system, "budget_of", ""):
            continue  # decodes another system's budget model
        run_dir = fresh(budget_dir(runs, system))
        log(f"budget: {system.name} for {args.budget_minutes:g} min")
        rss[system.name] = system.train(run_dir, 10**9, 20, args.budget_minutes * 60).peak_rss_mb
    return rss


def budget_dir(runs: Path, system: System) -> Path:
    return runs / f"budget-{getattr(system, 'budget_of', '') or system.name.split()[0]}"


def phase_decode(args, systems, runs: Path, train_rss: dict[str, float], peak: float) -> list[str]:
    data = systems[0].data
    split = TEST
    if args.decode_sentences:
        split = f"{TEST}.first{args.decode_sentences}"
        for suffix in ("en", args.tgt, "sp.en"):
            lines = (data / f"{TEST}.{suffix}").read_text(encoding="utf-8").splitlines()
            text = "".join(line + "\n" for line in lines[: args.decode_sentences])
            (data / f"{split}.{suffix}").write_text(text, encoding="utf-8")
    refs = (data / f"{split}.{args.tgt}").read_text(encoding="utf-8").splitlines()
    results = {}
    for beam in (1, 5):
        for system in systems:
            log(f"decode: {system.name}, beam {beam}")
            run_dir = budget_dir(runs, system)
            results[system.name, beam] = system.decode(run_dir, split, beam, 2000)
    rows = [
        f"Decoding {len(refs)} sentences of {TEST} {args.pair}, 2000 source tokens per batch; "
        f"sentences/s over the process wall time (start-up included) / over the search alone; "
        f"BLEU and chrF of beam 5 after a {args.budget_minutes:g}-minute training budget "
        "(steps: those in the checkpoint decoded); search MFU: the model's matrix FLOPs for "
        "the outputs found (beam 5: five hypotheses per output step, a lower bound) per second "
        f"of search, against the fp32 matmul peak of {peak / 1e9:.0f} GFLOP/s.",
        "",
        "| system | steps | train peak RSS | greedy sent/s | beam-5 sent/s "
        "| search MFU greedy / beam 5 | peak RSS beam 5 | BLEU | chrF |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    seeded: dict[str, list[tuple[int, float, float]]] = {}
    for system in systems:
        g, b = results[system.name, 1], results[system.name, 5]
        scores = score_corpus(b.hypotheses, refs)
        rate = lambda d: f"{len(refs) / d.process.wall_s:.1f} / {len(refs) / d.search_s:.1f}"  # noqa: E731
        steps = system.trained_steps(budget_dir(runs, system))
        train_mb = f"{train_rss[system.name]:,.0f} MB" if system.name in train_rss else ""
        vocab = system.tgt_vocab_size(budget_dir(runs, system))
        mfu = f"{search_mfu(g, 1, vocab, peak)} / {search_mfu(b, 5, vocab, peak)}"
        rows.append(
            f"| {system.name} | {steps} | {train_mb} | {rate(g)} | {rate(b)} | {mfu} "
            f"| {b.process.peak_rss_mb:,.0f} MB | {scores.bleu:.1f} | {scores.chrf:.1f} |"
        )
        if getattr(system, "seed_of", ""):
            seeded.setdefault(system.seed_of, []).append((steps, scores.bleu, scores.chrf))
    for name, runs_of in seeded.items():
        steps, bleu, chrf = zip(*runs_of, strict=True)
        rows.append(
            f"| {name}, mean ± sd of {len(runs_of)} seeds | {mean_sd(steps, 0)} | | | | | "
            f"| {mean_sd(bleu, 2)} | {mean_sd(chrf, 2)} |"
        )
    return rows


def search_mfu(decoded: Decoded, beam: int, tgt_vocab: int, peak: float) -> str:
    """The search's model FLOPs per second (``peers_flops.search_macs``) against ``peak``."""
    if not decoded.out_lengths:
        return ""
    macs = search_macs(ModelShape(), tgt_vocab, decoded.src_lengths, decoded.out_lengths, beam)
    return f"{2 * macs / decoded.search_s / peak:.1%}"


def mean_sd(values, digits: int) -> str:
    """``mean ± sd`` (sample standard deviation; 0 for a single value)."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):,.{digits}f} ± {sd:,.{digits}f}"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), load average {load}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    phases = set(args.phases.split(","))
    args.workdir = args.workdir.expanduser().resolve()
    if args.workdir.is_relative_to(REPO):
        raise SystemExit(f"--workdir {args.workdir}: keep the peers and data outside the repo")
    data = prepare_data(args.workdir, MULTI30K, args.tgt)
    systems, budget_systems = build_systems(args, data)
    runs = args.workdir / f"runs{pair_suffix(args.tgt)}"
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    quick = ", --quick" if args.quick else ""
    print(f"## softalign vs peers, Multi30k {args.pair} ({started}{quick})\n")
    print(f"Machine at start: {machine()}\n")
    peak = matmul_peak_flops()
    if "train" in phases:
        print("\n".join(phase_train(args, systems, runs, peak)) + "\n", flush=True)
    train_rss = phase_budget(args, budget_systems, runs) if "budget" in phases else {}
    if "decode" in phases:
        print("\n".join(phase_decode(args, budget_systems, runs, train_rss, peak)) + "\n")
    print(f"Machine at end: {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
