"""The three systems of ``peers.py`` behind one interface: train, read throughput, decode.

Each system trains the same model (``peers.py`` describes it) from the same data, logs every
step during the throughput runs, and is stopped by a signal at the end of a wall-clock budget:

- softalign: SIGTERM; it finishes the current step and writes a checkpoint.
- Joey NMT: SIGINT; it catches the KeyboardInterrupt and saves the current weights.
- OpenNMT-py: SIGTERM; it cannot save on a signal, so it writes a checkpoint every
  25 steps (``peer_configs/onmt.yaml``) and the latest one (before the deadline) is used.

Every process runs through :func:`run_process`, which measures its wall time and peak RSS
(``wait4``'s ``ru_maxrss``).
"""

from __future__ import annotations

import gc
import json
import os
import re
import signal
import subprocess
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from peers_setup import DEFAULT_TGT, pair_suffix

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DECODE_MAX_LENGTH = 100
FOREVER = 10**9


def template(name: str, **values: Path | str) -> dict:
    """A config from ``peer_configs/``, with each ``@KEY@`` replaced by its value."""
    text = (BENCH / "peer_configs" / name).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    return yaml.safe_load(text)


@dataclass
class Process:
    wall_s: float
    peak_rss_mb: float
    returncode: int
    log: Path

    def check(self, what: str) -> Process:
        stopped = (signal.SIGTERM, signal.SIGINT)
        if self.returncode not in (0, *(-s for s in stopped), *(128 + s for s in stopped)):
            tail = self.log.read_text(errors="replace").splitlines()[-15:]
            message = f"{what} failed ({self.returncode}); {self.log}:\n" + "\n".join(tail)
            raise RuntimeError(message)
        return self


def run_process(
    cmd: list[str],
    log: Path,
    *,
    env: dict[str, str] | None = None,
    stdin: Path | None = None,
    stdout: Path | None = None,
    cwd: Path | None = None,
    deadline_s: float | None = None,
    stop_signal: int = signal.SIGTERM,
) -> Process:
    """Run ``cmd`` (output to ``log``, or only stderr when ``stdout`` names a file for the
    standard output); at ``deadline_s`` send ``stop_signal``, and SIGKILL
    two minutes later. Returns wall time and peak resident memory of the process."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(log, "w") as err,
        open(stdout or os.devnull, "w") as out,
        open(stdin or os.devnull) as inp,
    ):
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdout=out if stdout else err,
            stderr=err if stdout else subprocess.STDOUT,
            stdin=inp,
            cwd=cwd,
            env=env,
            preexec_fn=_default_sigint,
        )
        signalled = killed = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            elapsed = time.perf_counter() - started
            if deadline_s is not None and elapsed >= deadline_s and not signalled:
                proc.send_signal(stop_signal)
                signalled = True
            if deadline_s is not None and elapsed >= deadline_s + 120 and not killed:
                proc.kill()
                killed = True
            time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Process(time.perf_counter() - started, usage.ru_maxrss / 1024, proc.returncode, log)


def _default_sigint() -> None:
    """A shell starts background jobs with SIGINT ignored, and Python then never turns it
    into KeyboardInterrupt: restore the default so that Joey NMT can be stopped."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def count_lines(path: Path) -> int:
    with open(path, encoding="utf-8") as handle:
        return sum(1 for _ in handle)


def pieces_per_line(path: Path) -> list[int]:
    """Subwords of each line of a file segmented into space-separated pieces."""
    return [len(line.split()) for line in path.read_text(encoding="utf-8").splitlines()]


def median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


@dataclass
class Decoded:
    process: Process
    search_s: float  # the tool's own timing of the search (no start-up)
    hypotheses: list[str]  # detokenized
    # subwords of each source and of each output (EOS not counted), in the system's own
    # vocabulary: what the search MFU counts (peers_flops.search_macs)
    src_lengths: list[int] = field(default_factory=list)
    out_lengths: list[int] = field(default_factory=list)


class System:
    """Base: ``data`` is the prepared data dir, ``python`` the system's interpreter, ``tgt``
    the target language (English is always the source)."""

    name = ""

    def __init__(self, data: Path, python: Path, tgt: str = DEFAULT_TGT) -> None:
        self.data, self.python, self.tgt = data, python, tgt

    def train(self, run_dir: Path, max_steps: int, log_every: int, deadline_s: float | None):
        raise NotImplementedError

    def step_rates(self, run_dir: Path) -> dict[int, float]:
        """Target tokens/s of each logged step (one step per window in throughput runs)."""
        raise NotImplementedError

    def tgt_vocab_size(self, run_dir: Path) -> int:
        raise NotImplementedError

    def trained_steps(self, run_dir: Path) -> int:
        """Training steps in the checkpoint that decoding will use."""
        raise NotImplementedError

    def decode(self, run_dir: Path, split: str, beam: int, batch_tokens: int) -> Decoded:
        """Translate ``data/{split}.en`` with ``batch_tokens`` source tokens per batch."""
        raise NotImplementedError


# ----------------------------------------------------------------------------- softalign


class Softalign(System):
    name = "softalign"
    precision = "fp32"
    backend = "auto"  # the fast CPU backend on the CPU (softalign/backend.py)
    budget_of = ""  # decode another system's budget model instead of training one
    seed: int | None = None  # training.seed, if not the config's (peers.py --seeds)
    seed_of = ""  # the system this one is a seeded copy of
    shared_vocab = True  # the benchmark's joint 8k SentencePiece model, as the peers use
    kept_training = ()  # training keys the benchmark leaves as the config file sets them

    def config_file(self, deadline_s: float | None = None) -> str:
        """The file under configs/ this system trains with (within a budget of ``deadline_s``):
        the peers' model on Multi30k, ``multi30k-en-<tgt>.yaml``."""
        return f"multi30k-en-{self.tgt}.yaml"

    def config(self, max_steps: int, log_every: int, deadline_s: float | None = None) -> dict:
        """``configs/<config_file>`` on the benchmark's files, with the joint 8k vocab unless
        the system keeps its config's own (``shared_vocab = False``)."""
        config = yaml.safe_load((REPO / "configs" / self.config_file(deadline_s)).read_text())
        kept = {key: config["training"][key] for key in self.kept_training}
        config["data"].update(
            dir=str(self.data),
            train_src="train.en",
            train_tgt=f"train.{self.tgt}",
            valid_src="val.en",
            valid_tgt=f"val.{self.tgt}",
            test_src="test_2016_flickr.en",
            test_tgt=f"test_2016_flickr.{self.tgt}",
        )
        if self.shared_vocab:
            config["data"]["vocab"] = {"type": "unigram", "size": 8000, "joint": True}
        config["training"].update(
            max_steps=max_steps,
            log_every=log_every,
            valid_every=FOREVER,  # no validation: the peers do none either
            checkpoint_every=FOREVER,  # a checkpoint is written when training stops
        )
        config["training"].update(kept, max_minutes=self.max_minutes(deadline_s))
        config["decoding"]["max_length"] = DECODE_MAX_LENGTH
        config["training"]["precision"] = config["decoding"]["precision"] = self.precision
        config["training"]["backend"] = self.backend
        if self.seed is not None:
            config["training"]["seed"] = self.seed
        return config

    def max_minutes(self, deadline_s: float | None) -> float:
        """``training.max_minutes`` within a budget: 0, the harness's deadline stops the run."""
        return 0

    def train(self, run_dir, max_steps, log_every, deadline_s):
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg = run_dir.parent / f"{run_dir.name}.yaml"
        config = self.config(max_steps, log_every, deadline_s)
        cfg.write_text(yaml.safe_dump(config, sort_keys=False))
        cmd = [str(self.python), "-m", "softalign", "train", str(cfg), "-o", str(run_dir)]
        cmd += ["--no-progress"]
        return run_process(cmd, run_dir / "bench.log", deadline_s=deadline_s).check("softalign")

    def step_rates(self, run_dir):
        rates = {}
        for line in (run_dir / "metrics.jsonl").read_text().splitlines():
            record = json.loads(line)
            if "tokens_per_s" in record:
                rates[record["step"]] = record["tokens_per_s"]
        return rates

    def trained_steps(self, run_dir):
        from softalign.checkpoint import latest_checkpoint

        return int(latest_checkpoint(run_dir).name.split("-")[1])

    def same_vocab(self, run_dir: Path) -> bool:
        """Did softalign train the shared SentencePiece model for itself? (Same pieces and
        scores; the model files differ only in the output path recorded in them.)"""
        import sentencepiece as spm

        def pieces(path: Path) -> list[tuple[str, float]]:
            model = spm.SentencePieceProcessor(model_file=str(path))
            return [(model.id_to_piece(i), model.get_score(i)) for i in range(len(model))]

        return pieces(run_dir / "spm.joint.model") == pieces(self.data / "spm.joint.model")

    def tgt_vocab_size(self, run_dir):
        """The generator's rows: the target pieces seen in training (``model.output_vocab``)."""
        from safetensors import safe_open

        from softalign.checkpoint import latest_checkpoint

        weights = latest_checkpoint(run_dir) / "model.safetensors"
        with safe_open(str(weights), framework="pt") as tensors:
            return tensors.get_slice("generator.bias").get_shape()[0]

    def decode(self, run_dir, split, beam, batch_tokens):
        src = self.data / f"{split}.en"
        out = run_dir / f"hyp.beam{beam}.txt"
        code = (
            f"import sys; sys.path.insert(0, {str(BENCH)!r}); "
            "from peers_systems import softalign_decode; softalign_decode(*sys.argv[1:])"
        )
        cmd = [str(self.python), "-c", code, str(run_dir), str(src), str(out), str(beam)]
        cmd += [str(batch_tokens), self.backend]
        proc = run_process(cmd, run_dir / f"decode.beam{beam}.log").check("softalign decode")
        timing = json.loads(proc.log.read_text().strip().splitlines()[-1])
        hyps = out.read_text(encoding="utf-8").splitlines()
        return Decoded(proc, timing["search_s"], hyps, timing["src_lengths"], timing["out_lengths"])


class SoftalignBF16(Softalign):
    """The same model trained and decoded under bf16 autocast (AMX matrix products)."""

    name = "softalign-bf16"
    precision = "bf16"


class SoftalignReference(Softalign):
    """The same model computed by the plain-PyTorch reference backend: what the fast one buys."""

    name = "softalign-reference"
    backend = "reference"


class SoftalignRecipe(Softalign):
    """The same model trained with softalign's recipe for a 15-minute budget
    (``configs/multi30k-en-de-15min.yaml``: warm-up and a cosine decay that ends at the
    deadline, a checkpoint every 50 steps, the last ones averaged at the end). Within a budget
    it stops itself ``STOP_EARLY_S`` before the harness's deadline (at half a
    shorter budget), so that start-up, the final
    checkpoint and the averaging all fit in the same wall clock as the peers'; it decodes the
    average (``RUN/averaged``). Its vocabulary is the recipe's too (the config's
    ``data.vocab``, trained inside its budget as every softalign system trains its own;
    the peers' subwords are prepared outside theirs), not the benchmark's shared joint 8k
    model: the vocabulary size is one of the choices the recipe makes. A budget of 45 minutes
    or more trains the 45-minute recipe (``configs/multi30k-en-de-45min.yaml``), a shorter one
    the 15-minute recipe: the shipped configs are the winners for those two budgets. En-Fr
    has one recipe, for 45 minutes (``configs/multi30k-en-fr-45min.yaml``): a shorter budget
    trains it too, its cosine decay ending at that budget's deadline."""

    name = "softalign-recipe"
    RECIPES = {
        "de": {15.0: "multi30k-en-de-15min.yaml", 45.0: "multi30k-en-de-45min.yaml"},
        "fr": {45.0: "multi30k-en-fr-45min.yaml"},
    }
    shared_vocab = False
    kept_training = ("checkpoint_every", "keep_checkpoints", "average_last", "valid_every")
    STOP_EARLY_S = 60.0

    def config_file(self, deadline_s=None):
        """The recipe of the longest budget that fits in ``deadline_s`` (the shortest if none)."""
        recipes = self.RECIPES[self.tgt]
        minutes = deadline_s / 60 if deadline_s else min(recipes)
        fitting = [budget for budget in recipes if budget <= minutes] or [min(recipes)]
        return recipes[max(fitting)]

    def max_minutes(self, deadline_s):
        """The recipe stops itself, ``STOP_EARLY_S`` before the deadline (or at half of it)."""
        if not deadline_s:
            return 0
        return round(max(deadline_s - self.STOP_EARLY_S, deadline_s / 2) / 60, 3)

    def decode(self, run_dir, split, beam, batch_tokens):
        from softalign.average import current_average

        return super().decode(current_average(run_dir) or run_dir, split, beam, batch_tokens)

    def trained_steps(self, run_dir):
        from softalign.average import current_average

        return super().trained_steps(current_average(run_dir) or run_dir)


class SoftalignRecipeReference(SoftalignRecipe):
    """The recipe's budget model decoded by the reference backend (not trained again)."""

    name = "softalign-recipe-reference"
    backend = "reference"
    budget_of = "softalign-recipe"


def softalign_decode(
    run_dir: str, src: str, out: str, beam: str, batch_tokens: str, backend: str = "auto"
) -> None:
    """In a fresh process: load the run, translate ``src`` and print the search time."""
    from softalign.translator import Translator

    translator = Translator.load(run_dir, backend=backend)
    # the same source-token budget per batch as the peers: softalign divides by the beam
    budget = int(batch_tokens) * int(beam)
    translator.config = translator.config.replace(**{"decoding.batch_tokens": budget})
    lines = Path(src).read_text(encoding="utf-8").splitlines()
    started = time.perf_counter()
    # as `softalign translate` without --attention (OpenNMT-py keeps none unless asked either)
    found = translator.translate(lines, beam=int(beam), attention=False)
    seconds = time.perf_counter() - started
    Path(out).write_text("".join(t.text + "\n" for t in found), encoding="utf-8")
    lengths = {
        "src_lengths": [len(t.source_tokens) for t in found],
        "out_lengths": [len(t.target_tokens) for t in found],
    }
    print(json.dumps({"search_s": seconds, **lengths}))
    gc.freeze()  # as the `softalign` command ends (softalign.cli.run): a shorter shutdown


# ------------------------------------------------------------------------------- Joey NMT


class Joey(System):
    name = "Joey NMT 2.3.0"
    LOG = re.compile(r"Step:\s+(\d+),.*Tokens per Sec:\s+([\d.]+)")

    def config(self, run_dir: Path, max_steps: int, log_every: int, beam: int = 5) -> dict:
        config = template("joey.yaml", DATA=self.data, RUN=run_dir, TGT=self.tgt)
        config["training"].update(updates=max_steps, logging_freq=log_every)
        config["testing"]["beam_size"] = beam
        return config

    def train(self, run_dir, max_steps, log_every, deadline_s):
        cfg = run_dir.parent / f"{run_dir.name}.yaml"
        cfg.parent.mkdir(parents=True, exist_ok=True)
        cfg.write_text(yaml.safe_dump(self.config(run_dir, max_steps, log_every)))
        cmd = [str(self.python), "-m", "joeynmt", "train", str(cfg), "--skip-test"]
        log = run_dir.parent / f"{run_dir.name}.log"
        proc = run_process(cmd, log, deadline_s=deadline_s, stop_signal=signal.SIGINT)
        return proc.check("Joey NMT training")

    def step_rates(self, run_dir):
        text = (run_dir.parent / f"{run_dir.name}.log").read_text(errors="replace")
        return {int(s): float(r) for s, r in self.LOG.findall(text)}

    def tgt_vocab_size(self, run_dir):
        return count_lines(run_dir / "trg_vocab.txt")

    def trained_steps(self, run_dir):
        return int((run_dir / "latest.ckpt").resolve().stem)

    def decode(self, run_dir, split, beam, batch_tokens):
        import sentencepiece as spm

        src = self.data / f"{split}.en"
        cfg = run_dir.parent / f"{run_dir.name}.decode{beam}.yaml"
        config = self.config(run_dir, 1, 1, beam=beam)
        config["testing"]["batch_size"] = batch_tokens
        cfg.write_text(yaml.safe_dump(config))
        out = run_dir.parent / f"{run_dir.name}.hyp.beam{beam}.txt"
        # not `-o out`: Joey 2.3.0's translate then fails (`args.n_best`); stdout works
        cmd = [str(self.python), "-m", "joeynmt", "translate", str(cfg)]
        log = run_dir.parent / f"{run_dir.name}.decode{beam}.log"
        proc = run_process(cmd, log, stdin=src, stdout=out).check("Joey NMT translate")
        found = re.findall(r"Generation took ([\d.]+)\[sec\]", log.read_text(errors="replace"))
        hyps = out.read_text(encoding="utf-8").splitlines()
        # Joey writes detokenized text: its lengths are those of the same joint model re-encoding
        # it (a re-encoding can differ from the generated pieces by a piece here and there)
        sp = spm.SentencePieceProcessor(model_file=str(self.data / "spm.joint.model"))
        out_lengths = [len(x) for x in sp.encode(hyps)]
        src_lengths = pieces_per_line(self.data / f"{split}.sp.en")
        return Decoded(proc, float(found[-1]), hyps, src_lengths, out_lengths)


# ----------------------------------------------------------------------------- OpenNMT-py


class OpenNMT(System):
    name = "OpenNMT-py 3.5.1"
    LOG = re.compile(r"Step\s+(\d+)/\s*\d+;.*?([\d.]+)/\s*([\d.]+) tok/s")
    ENV = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}  # it pickles a Namespace

    def bin(self, tool: str) -> str:
        return str(self.python.parent / tool)

    def config(self, run_dir: Path, max_steps: int, log_every: int) -> dict:
        vocab = self.vocab_dir()
        config = template("onmt.yaml", DATA=self.data, VOCAB=vocab, RUN=run_dir, TGT=self.tgt)
        config.update(train_steps=max_steps, report_every=log_every)
        return config

    def vocab_dir(self) -> Path:
        """Its vocabulary tables, next to the data dir, one per pair (as the data dir)."""
        return self.data.parent / f"onmt_vocab{pair_suffix(self.tgt)}"

    def build_vocab(self) -> None:
        """``onmt_build_vocab`` once (data preparation, outside every timing)."""
        vocab = self.vocab_dir()
        if (vocab / "vocab.tgt").is_file():
            return
        cfg = vocab.with_name(f"{vocab.name}.yaml")
        cfg.write_text(yaml.safe_dump(self.config(vocab.with_name("unused"), 1, 1)))
        cmd = [self.bin("onmt_build_vocab"), "-config", str(cfg), "-n_sample", "-1"]
        log = vocab.with_name(f"{vocab.name}.log")
        run_process(cmd, log, env=self.ENV).check("onmt_build_vocab")

    def train(self, run_dir, max_steps, log_every, deadline_s):
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg = run_dir / "onmt.yaml"
        cfg.write_text(yaml.safe_dump(self.config(run_dir, max_steps, log_every)))
        cmd = [self.bin("onmt_train"), "-config", str(cfg)]
        proc = run_process(cmd, run_dir / "train.log", env=self.ENV, deadline_s=deadline_s)
        return proc.check("onmt_train")

    def step_rates(self, run_dir):
        text = (run_dir / "train.log").read_text(errors="replace")
        return {int(s): float(tgt) for s, _, tgt in self.LOG.findall(text)}

    def tgt_vocab_size(self, run_dir):
        found = re.findall(r"tgt vocab size = (\d+)", (run_dir / "train.log").read_text())
        return int(found[-1])

    def trained_steps(self, run_dir):
        return int(self.checkpoint(run_dir).stem.rsplit("_", 1)[1])

    def checkpoint(self, run_dir: Path) -> Path:
        """The newest complete checkpoint (one cut off by the stop signal is skipped)."""
        found = sorted(run_dir.glob("model_step_*.pt"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
        complete = [p for p in found if zipfile.is_zipfile(p)]
        if not complete:
            raise RuntimeError(f"{run_dir}: no OpenNMT-py checkpoint was written in the budget")
        return complete[-1]

    def decode(self, run_dir, split, beam, batch_tokens):
        import sentencepiece as spm

        src = self.data / f"{split}.sp.en"
        out = run_dir / f"hyp.beam{beam}.sp.txt"
        cmd = [self.bin("onmt_translate"), "-model", str(self.checkpoint(run_dir))]
        cmd += ["-src", str(src), "-output", str(out), "-beam_size", str(beam)]
        cmd += ["-batch_size", str(batch_tokens), "-batch_type", "tokens"]
        cmd += ["-max_length", str(DECODE_MAX_LENGTH), "-report_time"]
        proc = run_process(cmd, run_dir / f"decode.beam{beam}.log", env=self.ENV)
        proc.check("onmt_translate")
        found = re.findall(r"Total translation time \(s\): ([\d.]+)", proc.log.read_text())
        sp = spm.SentencePieceProcessor(model_file=str(self.data / "spm.joint.model"))
        pieces = [line.split() for line in out.read_text(encoding="utf-8").splitlines()]
        out_lengths = [len(x) for x in pieces]
        return Decoded(proc, float(found[-1]), sp.decode(pieces), pieces_per_line(src), out_lengths)
