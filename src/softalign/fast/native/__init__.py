"""softalign's own CPU kernels (C, no Python headers), built on first use and loaded with ctypes.

PyTorch's CPU recurrence runs each step's gates as ~10 separate operators forward and ~20
backward, each a pass over memory plus dispatcher and autograd book-keeping; at the batch sizes
of training that is most of a recurrent layer's time. ``gru.c`` does a step's gates in one pass,
``additive.c`` the additive attention's energies ``v · tanh(W s + U h)``, ``cross_entropy.c``
the generator's label-smoothed cross-entropy and its gradient, ``best_words.c`` a search's k
best words and their log-probabilities (see their headers for the equations). The library is
compiled with the machine's C compiler (``$CC``, else ``cc``/``gcc``) for this CPU
(``-march=native``) into ``$SOFTALIGN_CACHE`` (default ``~/.cache/softalign``)/native, keyed by
the sources, the flags and the CPU's features, and written atomically, so concurrent processes
may build it at once.

Without a compiler, or with ``SOFTALIGN_NATIVE=0``, :func:`kernels` is None and callers use
PyTorch's own operators: same results up to rounding, slower.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

NAMES = ("gru.c", "additive.c", "cross_entropy.c", "best_words.c")
SOURCES = [Path(__file__).with_name(name) for name in NAMES]
HEADERS = [Path(__file__).with_name("bf16.h")]
# -ffast-math lets gcc call glibc's vector expf/tanhf (libmvec) inside the loops
FLAGS = ["-O3", "-march=native", "-mprefer-vector-width=512", "-ffast-math", "-fopenmp", "-fPIC"]
FLAGS += ["-shared"]

_i64, _int, _ptr = ctypes.c_int64, ctypes.c_int, ctypes.c_void_p
# gru_forward_step(rows, H, x, x_stride, x_low, g, low, b, h, h_stride, out, out_stride, copy,
#                  saved) and gru_backward_step(rows, H, dout, dout_stride, carry_in, rec, low,
#                  saved, h, h_stride, carry_out, dx, dx_stride, x_low, dg, db): see gru.c
FORWARD_ARGS = [_i64, _i64, _ptr, _i64, _int, _ptr, _int, _ptr, _ptr, _i64, _ptr, _i64, _ptr]
FORWARD_ARGS += [_ptr]
BACKWARD_ARGS = [_i64, _i64, _ptr, _i64, _ptr, _ptr, _int, _ptr, _ptr, _i64, _ptr, _ptr, _i64]
BACKWARD_ARGS += [_int, _ptr, _ptr]
# additive_scores(n, G, S, D, q, k, v, e, T), additive_scores_backward(n, G, S, D, de, T, v, dq,
#                 dk, dv): see additive.c
SCORES_ARGS = [_i64, _i64, _i64, _i64, _ptr, _ptr, _ptr, _ptr, _ptr]
SCORES_BACKWARD_ARGS = [_i64, _i64, _i64, _i64, _ptr, _ptr, _ptr, _ptr, _ptr, _ptr]
# cross_entropy_chunk(rows, real, V, z, low, y, eps, with_grad, db) -> loss: see cross_entropy.c
CROSS_ENTROPY_ARGS = [_i64, _i64, _i64, _ptr, _int, _ptr, ctypes.c_float, _int, _ptr]
# best_words(rows, V, z, low, bias, k, values, indices): see best_words.c
BEST_WORDS_ARGS = [_i64, _i64, _ptr, _int, _ptr, _i64, _ptr, _ptr]
# the kernels keep a row of logits (and its bias-gradient sums) on each thread's stack
MAX_ROW = 1 << 18
SIGNATURES = {  # name: (argument types, result type)
    "gru_forward_step": (FORWARD_ARGS, None),
    "gru_backward_step": (BACKWARD_ARGS, None),
    "additive_scores": (SCORES_ARGS, None),
    "additive_scores_backward": (SCORES_BACKWARD_ARGS, None),
    "cross_entropy_chunk": (CROSS_ENTROPY_ARGS, ctypes.c_double),
    "best_words": (BEST_WORDS_ARGS, None),
}


def cache_dir() -> Path:
    return Path(os.environ.get("SOFTALIGN_CACHE", Path.home() / ".cache" / "softalign"))


def _cpu_features() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def build(compiler: str, target_dir: Path) -> Path:
    """Compile the sources into ``target_dir`` (once per sources, flags and CPU); the path."""
    digest = hashlib.sha256(" ".join([compiler, *FLAGS, _cpu_features()]).encode())
    for source in SOURCES + HEADERS:
        digest.update(source.read_bytes())
    target = target_dir / f"softalign-kernels-{platform.machine()}-{digest.hexdigest()[:16]}.so"
    if target.exists():
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target_dir) as tmp:
        built = Path(tmp) / target.name
        cmd = [compiler, *FLAGS, "-o", str(built), *map(str, SOURCES), "-lm"]
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
        os.replace(built, target)  # atomic: another process may have built it meanwhile
    return target


def available(tensor) -> bool:
    """Whether the kernels can run on ``tensor``: a CPU tensor, the library built."""
    return tensor.device.type == "cpu" and kernels() is not None


def unavailable_reason() -> str | None:
    """Why :func:`kernels` is None (one line), or None when the kernels are loaded."""
    return None if kernels() is not None else _reason


_reason = ""


@functools.cache
def kernels() -> ctypes.CDLL | None:
    """The loaded library (the functions of ``SIGNATURES``), or None (see
    :func:`unavailable_reason`)."""
    global _reason
    if os.environ.get("SOFTALIGN_NATIVE", "1") == "0":
        _reason = "SOFTALIGN_NATIVE=0"
        return None
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        _reason = "no C compiler found (install gcc, or set CC)"
        return None
    try:
        library = ctypes.CDLL(str(build(compiler, cache_dir() / "native")))
    except (OSError, subprocess.SubprocessError) as error:
        output = getattr(error, "stderr", None) or ""
        errors = [line for line in output.splitlines() if "error" in line]
        detail = errors[0].strip() if errors else str(error).strip()
        _reason = f"the C kernels did not build: {detail}"
        return None
    for name, (argtypes, restype) in SIGNATURES.items():
        function = getattr(library, name)
        function.argtypes, function.restype = argtypes, restype
    return library
