"""The C compiler flags of softalign's kernels, per target architecture.

========  ===================================================================================
x86-64    ``-march=$SOFTALIGN_MARCH`` (default ``native``; e.g. ``x86-64-v3`` builds for an
          AVX2-only CPU), plus ``-mprefer-vector-width=512`` only when that target has AVX-512
          (the compiler says so: ``__AVX512F__``)
aarch64   ``-mcpu=native`` (``-march=$SOFTALIGN_MARCH`` when set; ``-march=armv8-a`` when
          cross-compiling, where ``$SOFTALIGN_MARCH`` does not apply)
other     none beyond the common ones: a portable build
========  ===================================================================================

Common to all: ``-O3`` and the parts of ``-ffast-math`` that keep infinities and NaNs
defined (:data:`MATH`): reassociation (vectorised sums), no ``errno`` (vector ``expf``), no
traps, no signed zeros, reciprocals. ``-ffinite-math-only`` is left out, because under it an
infinite or NaN logit (a masked word, a diverged model) is undefined behaviour; glibc's vector
``expf``/``tanhf`` are declared by ``vector_math.h`` instead of by ``-ffast-math``'s headers.
OpenMP is tried in the order of :data:`OPENMP` (the loader keeps the first that builds).
"""

from __future__ import annotations

import os
import platform
import subprocess

OPTIMISE = ["-O3"]
MATH = [
    "-fno-math-errno",
    "-fno-trapping-math",
    "-fassociative-math",
    "-fno-signed-zeros",
    "-freciprocal-math",
    "-fno-finite-math-only",
]
OPENMP = (["-fopenmp"], ["-fopenmp-simd"], [])  # threads + simd pragmas; simd pragmas; neither
X86 = ("x86_64", "amd64")
ARM = ("aarch64", "arm64")


def host_machine() -> str:
    """This machine's architecture, lower case (``x86_64``, ``aarch64``, ...)."""
    return platform.machine().lower()


def target_flags(compiler: str, machine: str | None = None, cross: bool = False) -> list[str]:
    """The architecture flags for ``machine`` (default: this one); ``cross`` when the
    compiler builds for another machine than the one it runs on (no ``native``)."""
    machine = (machine or host_machine()).lower()
    march = None if cross else os.environ.get("SOFTALIGN_MARCH")
    if machine in X86:
        flags = [f"-march={march or ('x86-64-v2' if cross else 'native')}"]
        if "__AVX512F__" in predefined_macros(compiler, flags):
            flags.append("-mprefer-vector-width=512")
        return flags
    if machine in ARM:
        if march:
            return [f"-march={march}"]
        return ["-march=armv8-a"] if cross else ["-mcpu=native"]
    return []


def kernel_flags(compiler: str, machine: str | None = None, cross: bool = False) -> list[str]:
    """Every flag but OpenMP's and the output kind's (``-shared``, ``-fPIC``)."""
    return [*OPTIMISE, *target_flags(compiler, machine, cross), *MATH]


def predefined_macros(compiler: str, flags: list[str]) -> str:
    """The compiler's predefined macros under ``flags`` (its version and the target's
    features: what ``native`` means on this CPU). Raises ``CalledProcessError`` (with the
    compiler's message) when it refuses the flags."""
    cmd = [compiler, *flags, "-dM", "-E", "-x", "c", os.devnull]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60).stdout
