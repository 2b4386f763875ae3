"""Data-parallel training: sharding, gradient accumulation, and 2-process DDP (gloo, CPU)
training exactly like 1 process accumulating 2 micro-batches, resumed or not."""

import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from tests.helpers import tiny_config

from softalign import checkpoint as ckpt
from softalign.config import save_config
from softalign.train.distributed import Ranks, my_micro_batches, split_batch
from softalign.train.loop import resume, train

STEPS = 6
DDP_OVERRIDES = {
    "training.valid_every": 3,
    "training.checkpoint_every": 3,
    "data.valid_size": 40,
}


def weights(run_dir):
    return load_file(str(ckpt.latest_checkpoint(run_dir) / "model.safetensors"))


def assert_same_weights(a, b, atol):
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=atol, msg=name)


def test_split_batch_keeps_every_example_once_in_order():
    parts = split_batch([5, 3, 9, 1, 7], 2)
    assert parts == [[5, 3, 9], [1, 7]]
    assert split_batch([4], 3) == [[4], [], []]  # fewer examples than parts: empty shares


def test_ranks_share_out_the_micro_batches_of_one_step():
    batch = list(range(10))
    shares = [my_micro_batches(batch, Ranks(r, 2, r), accumulate=2) for r in range(2)]
    assert [len(s) for s in shares] == [2, 2]
    assert [i for share in shares for part in share for i in part] == batch
    assert shares[0] + shares[1] == split_batch(batch, 4)


def test_accumulating_two_halves_equals_one_whole_batch(tmp_path):
    # the same global batches (2 x 300 = 600 tokens), once whole, once in two halves
    whole = tiny_config(**{"training.batch_tokens": 600})
    halves = tiny_config(**{"training.batch_tokens": 300, "training.accumulate": 2})
    train(whole, tmp_path / "whole", max_steps=STEPS, progress=False)
    train(halves, tmp_path / "halves", max_steps=STEPS, progress=False)
    # equal up to float rounding: the halves are padded differently
    assert_same_weights(weights(tmp_path / "whole"), weights(tmp_path / "halves"), atol=1e-5)


def torchrun(*args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", "-m", "softalign", "train", *args, "--no-progress"]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory):
    """A 2-process DDP run of STEPS steps, and the same run stopped halfway then resumed."""
    root = tmp_path_factory.mktemp("ddp")
    config = tiny_config(**DDP_OVERRIDES)
    save_config(config, root / "tiny.yaml")
    torchrun(str(root / "tiny.yaml"), "-o", "straight", "--max-steps", str(STEPS), cwd=root)
    torchrun(str(root / "tiny.yaml"), "-o", "resumed", "--max-steps", str(STEPS // 2), cwd=root)
    torchrun("--resume", "resumed", "--max-steps", str(STEPS), cwd=root)
    return root, config


@pytest.mark.slow
def test_two_process_ddp_equals_one_process_accumulating_two(ddp_runs, tmp_path):
    root, config = ddp_runs
    single = config.replace(**{"training.accumulate": 2})
    train(single, tmp_path / "single", max_steps=STEPS, progress=False)
    # the same micro-batches, the same sums: equal to float rounding (in practice bitwise)
    assert_same_weights(weights(root / "straight"), weights(tmp_path / "single"), atol=1e-6)
    best = ckpt.best_checkpoint(root / "straight")
    assert best is not None and (root / "straight" / "metrics.jsonl").is_file()


@pytest.mark.slow
def test_resumed_ddp_run_equals_uninterrupted_one(ddp_runs):
    root, _ = ddp_runs
    steps = [p.name for p in ckpt.list_checkpoints(root / "resumed")]
    assert steps[-1] == f"step-{STEPS:08d}"
    assert_same_weights(weights(root / "straight"), weights(root / "resumed"), atol=0)


def test_resume_continues_an_accumulating_run_exactly(tmp_path):
    config = tiny_config(**{"training.accumulate": 2, "training.batch_tokens": 300})
    train(config, tmp_path / "straight", max_steps=STEPS, progress=False)
    train(config, tmp_path / "resumed", max_steps=STEPS // 2, progress=False)
    resume(tmp_path / "resumed", max_steps=STEPS, progress=False)
    assert_same_weights(weights(tmp_path / "straight"), weights(tmp_path / "resumed"), atol=0)
