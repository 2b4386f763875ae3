"""Where softalign's training step spends its time, on the benchmark's model and data.

    python benchmarks/profile_train.py [--workdir DIR] [--warmup 5] [--steps 20] [--precision bf16]

Uses the data that ``peers.py`` prepares (``--workdir``, default ``~/.cache/softalign-bench``)
and softalign's config ``configs/multi30k-en-de.yaml`` with the joint 8k vocabulary, as the
benchmark does. Prints two Markdown tables:

1. the step cut into its phases, timed with ``perf_counter`` around the calls that a
   single-process ``softalign.train.step.train_step`` makes (collate, encoder, decoder loop,
   generator and loss, backward, clipping, Adam), next to the speed of ``train_step`` itself;
2. torch.profiler's operators by self CPU time over the measured steps, grouped.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers_systems import Softalign  # noqa: E402

from softalign.config import from_dict  # noqa: E402
from softalign.data.batching import collate  # noqa: E402
from softalign.data.vocab import PAD_ID  # noqa: E402
from softalign.train.loop import next_batch, prepare, train_step  # noqa: E402

PHASES = ("collate", "encoder", "decoder loop", "generator + loss", "backward", "clip", "adam")


def timed_step(session, indices: list[int], times: dict[str, float]) -> int:
    """One training step as ``train_step`` does it, each phase timed. Returns target tokens."""
    cfg, model = session.config.training, session.model
    marks = [time.perf_counter()]
    batch = collate(indices, session.train.src, session.train.tgt)
    marks.append(time.perf_counter())
    with session.precision.autocast():
        state = model.start(batch.src, batch.src_lengths)
        marks.append(time.perf_counter())
        attentional, _ = model.decoder(batch.tgt_in, state)
        marks.append(time.perf_counter())
        real = batch.tgt_out != PAD_ID
        tokens = int(real.sum())
        loss = model.loss(attentional[real], batch.tgt_out[real], cfg.label_smoothing)
    marks.append(time.perf_counter())
    session.optimizer.zero_grad(set_to_none=True)
    (loss / tokens).backward()
    marks.append(time.perf_counter())
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
    marks.append(time.perf_counter())
    session.optimizer.step()
    marks.append(time.perf_counter())
    for name, start, end in zip(PHASES, marks[:-1], marks[1:], strict=True):
        times[name] += end - start
    return tokens


GROUPS = (  # first match wins: (group, substrings of the operator name)
    ("autograd nodes' own time (…Backward0)", ("backward0", "backward1")),
    ("GRU encoder (mkldnn_rnn fwd+bwd)", ("rnn", "gru")),
    ("matmul fwd+bwd (mm/addmm/bmm)", ("aten::addmm", "aten::mm", "aten::bmm", "aten::matmul")),
    ("gradient buffers (fill_/copy_/add_/zero_)", ("fill_", "copy_", "aten::add_", "zero_")),
    (
        "Adam (lerp_/addcmul_/addcdiv_/sqrt/div)",
        ("_foreach", "lerp", "addcmul", "addcdiv", "sqrt", "aten::div"),
    ),
    (
        "elementwise (tanh/sigmoid/mul/add/sub/where)",
        ("tanh", "sigmoid", "mul", "add", "sub", "where"),
    ),
    ("reductions (sum: bias and broadcast grads)", ("aten::sum",)),
    ("softmax / cross-entropy", ("softmax", "nll", "cross_entropy")),
    ("cat, stack, index, chunk, slice", ("cat", "stack", "index", "chunk", "slice", "select")),
)


def group_of(name: str) -> str:
    low = name.lower()
    for group, keys in GROUPS:
        if any(k.lower() in low for k in keys):
            return group
    return "other"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, default=Path.home() / ".cache" / "softalign-bench")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    args = p.parse_args()
    data = args.workdir.expanduser() / "data"
    raw = Softalign(data, Path(sys.executable)).config(10**9, 1)
    raw["training"]["precision"] = args.precision
    with tempfile.TemporaryDirectory() as tmp:
        session = prepare(from_dict(raw), Path(tmp), resume=False)
        session.model.train()
        times: dict[str, float] = defaultdict(float)
        for _ in range(args.warmup):
            timed_step(session, next_batch(session), defaultdict(float))
        tokens = 0
        started = time.perf_counter()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for _ in range(args.steps):
                tokens += timed_step(session, next_batch(session), times)
        wall = time.perf_counter() - started
        plain_tokens, plain_start = 0, time.perf_counter()
        for _ in range(args.steps):  # the loop's own train_step, no timers, no profiler
            plain_tokens += train_step(session, next_batch(session))[1]
        plain = plain_tokens / (time.perf_counter() - plain_start)
    total = sum(times.values())
    print(f"{torch.get_num_threads()} threads. {args.steps} steps of softalign's train_step: ")
    print(f"{plain:,.0f} target tok/s. {args.steps} timed and profiled steps ({tokens} target")
    print(f"tokens): {tokens / wall:,.0f} tok/s under the profiler.\n")
    print("| phase | ms/step | share |\n|---|---|---|")
    for name in PHASES:
        print(f"| {name} | {times[name] / args.steps * 1e3:.0f} | {times[name] / total:.0%} |")
    groups: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    for event in prof.key_averages():
        groups[group_of(event.key)] += event.self_cpu_time_total
        calls[group_of(event.key)] += event.count
    op_total = sum(groups.values())
    print(f"\nOperators: {sum(calls.values()) / args.steps:,.0f} calls per step.\n")
    print("| operator group | ms/step | share | calls/step |\n|---|---|---|---|")
    for name, us in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(
            f"| {name} | {us / args.steps / 1e3:.0f} | {us / op_total:.0%} "
            f"| {calls[name] / args.steps:,.0f} |"
        )
    print("\nTop operators by self CPU time:\n")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


if __name__ == "__main__":
    main()
