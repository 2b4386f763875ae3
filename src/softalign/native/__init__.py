"""softalign's own CPU kernels (C, no Python headers), built on first use and loaded with ctypes.

PyTorch's CPU recurrence runs each step's gates as ~10 separate operators forward and ~20
backward, each a pass over memory plus dispatcher and autograd book-keeping; at the batch sizes
of training that is most of a recurrent layer's time. ``gru.c`` does a step's gates in one pass
(see its header for the equations). The library is compiled with the machine's C compiler
(``$CC``, else ``cc``/``gcc``) for this CPU (``-march=native``) into
``$SOFTALIGN_CACHE`` (default ``~/.cache/softalign``)/native, keyed by the source, the flags
and the CPU's features, and written atomically, so concurrent processes may build it at once.

Without a compiler, or with ``SOFTALIGN_NATIVE=0``, :func:`gru_kernels` is None and callers use
PyTorch's own operators: same results up to rounding, slower.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger("softalign")

SOURCE = Path(__file__).with_name("gru.c")
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
    """Compile ``gru.c`` into ``target_dir`` (once per source, flags and CPU) and return it."""
    key = hashlib.sha256(
        SOURCE.read_bytes() + " ".join([compiler, *FLAGS, _cpu_features()]).encode()
    ).hexdigest()[:16]
    target = target_dir / f"softalign-gru-{platform.machine()}-{key}.so"
    if target.exists():
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target_dir) as tmp:
        built = Path(tmp) / target.name
        cmd = [compiler, *FLAGS, "-o", str(built), str(SOURCE), "-lm"]
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
        os.replace(built, target)  # atomic: another process may have built it meanwhile
    return target


@functools.cache
def gru_kernels() -> ctypes.CDLL | None:
    """The loaded library with ``gru_forward_step`` and ``gru_backward_step``, or None."""
    if os.environ.get("SOFTALIGN_NATIVE", "1") == "0":
        return None
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        log.info("no C compiler found: recurrent layers use PyTorch's operators")
        return None
    try:
        library = ctypes.CDLL(str(build(compiler, cache_dir() / "native")))
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", None) or error
        log.warning("softalign's GRU kernels could not be built (%s); using PyTorch's", detail)
        return None
    library.gru_forward_step.argtypes = FORWARD_ARGS
    library.gru_forward_step.restype = None
    library.gru_backward_step.argtypes = BACKWARD_ARGS
    library.gru_backward_step.restype = None
    return library
