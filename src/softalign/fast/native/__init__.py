"""softalign's own CPU kernels (C, no Python headers), built on first use and loaded with ctypes.

PyTorch's CPU recurrence runs each step's gates as ~10 separate operators forward and ~20
backward, each a pass over memory plus dispatcher and autograd book-keeping; at the batch sizes
of training that is most of a recurrent layer's time. ``gru.c`` does a step's gates in one pass,
``additive.c`` the additive attention's energies ``v · tanh(W s + U h)``, ``cross_entropy.c``
the generator's label-smoothed cross-entropy and its gradient, ``best_words.c`` a search's k
best words and their log-probabilities (see their headers for the equations). The library is
compiled with the machine's C compiler (``$CC``, else ``cc``/``gcc``) for this CPU (flags
per architecture: see ``flags.py``; ``SOFTALIGN_MARCH=x86-64-v3`` builds for an AVX2-only
x86) into ``$SOFTALIGN_CACHE`` (default ``~/.cache/softalign``)/native, keyed by the
sources, the flags, the compiler's predefined macros (its version and what ``native`` means
here) and the CPU's features, and written atomically, so concurrent processes may build it
at once. Python calls them only through ``calls.py``, whose wrappers check every tensor's
device, dtype, shape and strides first (a mismatch is a ``ValueError``, never a crash).

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

from softalign.fast.native.flags import OPENMP, host_machine, kernel_flags, predefined_macros

NAMES = ("gru.c", "additive.c", "cross_entropy.c", "best_words.c")
SOURCES = [Path(__file__).with_name(name) for name in NAMES]
HEADERS = [Path(__file__).with_name(name) for name in ("bf16.h", "vector_math.h")]
LIBRARY = ["-fPIC", "-shared"]

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
    """Compile the sources into ``target_dir`` (once per sources, flags, compiler and CPU); the
    path. OpenMP variants are tried in the order of ``flags.OPENMP``; a library built before
    with any of them is reused. Raises ``CalledProcessError`` when no variant builds."""
    flags = kernel_flags(compiler)
    digest = hashlib.sha256(
        "\n".join([compiler, *flags, predefined_macros(compiler, flags), _cpu_features()]).encode()
    )
    for source in SOURCES + HEADERS:
        digest.update(source.read_bytes())
    variants = []
    for openmp in OPENMP:
        key = digest.copy()
        key.update(" ".join(openmp).encode())
        name = f"softalign-kernels-{host_machine()}-{key.hexdigest()[:16]}.so"
        variants.append(([*flags, *openmp, *LIBRARY], target_dir / name))
    for _, target in variants:
        if target.exists():
            return target
    target_dir.mkdir(parents=True, exist_ok=True)
    failure = None
    for variant_flags, target in variants:
        try:
            _compile(compiler, variant_flags, target)
            return target
        except subprocess.CalledProcessError as error:
            failure = error  # the next variant has fewer flags
    raise failure


def _compile(compiler: str, flags: list[str], target: Path) -> None:
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        built = Path(tmp) / target.name
        cmd = [compiler, *flags, "-o", str(built), *map(str, SOURCES), "-lm"]
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
        os.replace(built, target)  # atomic: another process may have built it meanwhile


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
