"""softalign's C kernels build with each architecture's flags and match a scalar C reference
there: natively, for an AVX2-only x86 (``-march=x86-64-v3``, run on this CPU) and for aarch64
(cross-compiled, run under qemu). The harness is ``tests/native/kernel_check.c``; it prints
"N passed, M failed" and exits non-zero on a mismatch."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from softalign.fast import native
from softalign.fast.native import calls, flags
from softalign.fast.native.flags import host_machine, kernel_flags

HARNESS = Path(__file__).parents[1] / "native" / "kernel_check.c"
NATIVE_DIR = Path(native.__file__).parent
AARCH64_SYSROOT = Path("/usr/aarch64-linux-gnu")
X86 = host_machine() in flags.X86


def _host_compiler() -> str:
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler (install gcc, or set CC)")
    return compiler


def _build_and_run(compiler: str, kernel: list[str], tmp: Path, runner=()) -> str:
    """Compile the kernels with ``kernel`` flags (and OpenMP) and the harness (plain -O2: the
    reference stays IEEE), link, run; the harness's output."""
    objects = []
    for source in native.SOURCES:
        objects.append(tmp / f"{source.stem}.o")
        _run([compiler, *kernel, "-fopenmp", "-c", str(source), "-o", str(objects[-1])])
    objects.append(tmp / "kernel_check.o")
    _run([compiler, "-O2", "-I", str(NATIVE_DIR), "-c", str(HARNESS), "-o", str(objects[-1])])
    program = tmp / "kernel_check"
    _run([compiler, "-fopenmp", *map(str, objects), "-lm", "-o", str(program)])
    result = subprocess.run(
        [*runner, str(program)], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stderr}"


def _summary(output: str) -> tuple[int, int]:
    passed, _, failed, _ = output.strip().splitlines()[-1].split()
    return int(passed), int(failed)


def test_kernels_match_the_scalar_reference_with_this_machines_flags(tmp_path):
    compiler = _host_compiler()
    passed, failed = _summary(_build_and_run(compiler, kernel_flags(compiler), tmp_path))
    assert failed == 0 and passed > 100


@pytest.mark.skipif(not X86, reason="x86-64 only: the AVX2 class (x86-64-v3)")
def test_kernels_match_the_reference_built_for_an_avx2_only_x86(tmp_path, monkeypatch):
    if "avx2" not in Path("/proc/cpuinfo").read_text():
        pytest.skip("this CPU has no AVX2: an x86-64-v3 build cannot run here")
    compiler = _host_compiler()
    monkeypatch.setenv("SOFTALIGN_MARCH", "x86-64-v3")
    kernel = kernel_flags(compiler)
    assert "-march=x86-64-v3" in kernel and "-mprefer-vector-width=512" not in kernel
    passed, failed = _summary(_build_and_run(compiler, kernel, tmp_path))
    assert failed == 0 and passed > 100


def test_kernels_match_the_reference_on_aarch64_under_qemu(tmp_path):
    if host_machine() in flags.ARM:
        pytest.skip("this machine is aarch64: the native harness test covers it")
    compiler, qemu = shutil.which("aarch64-linux-gnu-gcc"), shutil.which("qemu-aarch64")
    if compiler is None or qemu is None or not AARCH64_SYSROOT.is_dir():
        pytest.skip(
            "no aarch64 cross toolchain: apt-get install gcc-aarch64-linux-gnu qemu-user "
            "libc6-dev-arm64-cross"
        )
    kernel = kernel_flags(compiler, "aarch64", cross=True)
    assert "-march=armv8-a" in kernel and not any("vector-width" in flag for flag in kernel)
    runner = (qemu, "-L", str(AARCH64_SYSROOT))
    passed, failed = _summary(_build_and_run(compiler, kernel, tmp_path, runner))
    assert failed == 0 and passed > 100


def _fake_macros(avx512: bool):
    return lambda compiler, flags: "#define __AVX512F__ 1\n" if avx512 else "#define __AVX2__ 1\n"


@pytest.mark.parametrize("avx512", [True, False])
def test_x86_asks_for_512_bit_vectors_only_when_the_target_has_avx512(monkeypatch, avx512):
    monkeypatch.setattr(flags, "predefined_macros", _fake_macros(avx512))
    monkeypatch.delenv("SOFTALIGN_MARCH", raising=False)
    expected = ["-march=native"] + (["-mprefer-vector-width=512"] if avx512 else [])
    assert flags.target_flags("cc", "x86_64") == expected


def test_the_march_override_applies_to_native_builds_only(monkeypatch):
    monkeypatch.setattr(flags, "predefined_macros", _fake_macros(False))
    monkeypatch.setenv("SOFTALIGN_MARCH", "x86-64-v3")
    assert flags.target_flags("cc", "x86_64") == ["-march=x86-64-v3"]
    assert flags.target_flags("cc", "aarch64", cross=True) == ["-march=armv8-a"]


def test_aarch64_builds_for_this_cpu_and_other_machines_portably(monkeypatch):
    monkeypatch.delenv("SOFTALIGN_MARCH", raising=False)
    assert flags.target_flags("cc", "aarch64") == ["-mcpu=native"]
    assert flags.target_flags("cc", "riscv64") == []
    common = flags.kernel_flags("cc", "riscv64")
    assert "-O3" in common and "-fno-finite-math-only" in common
    assert "-ffast-math" not in common  # its -ffinite-math-only makes infinite logits UB


def test_an_unknown_march_leaves_the_kernels_off_with_a_one_line_reason(monkeypatch, tmp_path):
    if not X86:
        pytest.skip("x86-64 only: SOFTALIGN_MARCH names an x86 level here")
    _host_compiler()
    monkeypatch.setenv("SOFTALIGN_CACHE", str(tmp_path))
    monkeypatch.setenv("SOFTALIGN_NATIVE", "1")  # the loader itself, even in a kernels-off run
    monkeypatch.setenv("SOFTALIGN_MARCH", "no-such-cpu")
    native.kernels.cache_clear()
    try:
        assert native.kernels() is None
        reason = native.unavailable_reason()
        assert reason.startswith("the C kernels did not build") and "no-such-cpu" in reason
        assert "\n" not in reason
    finally:
        native.kernels.cache_clear()


@pytest.mark.skipif(not X86, reason="x86-64 only: the AVX2 class (x86-64-v3)")
def test_the_loader_builds_and_runs_an_avx2_only_library(monkeypatch, tmp_path):
    if "avx2" not in Path("/proc/cpuinfo").read_text():
        pytest.skip("this CPU has no AVX2: an x86-64-v3 build cannot run here")
    _host_compiler()
    monkeypatch.setenv("SOFTALIGN_CACHE", str(tmp_path))
    monkeypatch.setenv("SOFTALIGN_NATIVE", "1")  # the loader itself, even in a kernels-off run
    monkeypatch.setenv("SOFTALIGN_MARCH", "x86-64-v3")
    native.kernels.cache_clear()
    try:
        assert native.kernels() is not None, native.unavailable_reason()
        torch.manual_seed(0)
        logits = torch.randn(9, 100)
        values, columns = calls.best_words(logits, 3)
        expected, expected_columns = torch.log_softmax(logits, -1).topk(3, -1)
        assert torch.allclose(values, expected, atol=1e-5)
        assert torch.equal(columns, expected_columns)
        assert len(list((tmp_path / "native").glob("*.so"))) == 1
    finally:
        native.kernels.cache_clear()


def test_the_x86_library_calls_glibcs_vector_expf_and_tanhf():
    """The math flags leave out -ffast-math; the loops must still call libmvec."""
    library = native.kernels()
    objdump = shutil.which("objdump")
    if library is None or objdump is None or not X86:
        pytest.skip("needs the kernels, objdump and x86-64")
    compiler = _host_compiler()
    macros = flags.predefined_macros(compiler, [])
    if "__clang__" in macros or "__GLIBC__" not in _libc_macros(compiler):
        pytest.skip("gcc with glibc only: vector_math.h declares libmvec for them")
    disassembly = subprocess.run(
        [objdump, "-d", library._name], capture_output=True, text=True, check=True
    ).stdout
    for function in ("expf", "tanhf"):  # e.g. _ZGVeN16v_expf (AVX-512), _ZGVdN8v_expf (AVX2)
        assert re.search(rf"call.*<_ZGV\w+v_{function}@plt>", disassembly), function


def _libc_macros(compiler: str) -> str:
    cmd = [compiler, "-dM", "-E", "-include", "features.h", "-x", "c", os.devnull]
    return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout


def test_a_compiler_without_openmp_still_builds_the_kernels_single_threaded(monkeypatch, tmp_path):
    real = _host_compiler()
    compiler = tmp_path / "cc-without-openmp"
    compiler.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do [ "$a" = -fopenmp ] && { echo "error: -fopenmp" >&2; exit 1; }; done\n'
        f'exec {real} "$@"\n'
    )
    compiler.chmod(0o755)
    monkeypatch.setenv("CC", str(compiler))
    monkeypatch.setenv("SOFTALIGN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SOFTALIGN_NATIVE", "1")
    native.kernels.cache_clear()
    try:
        assert native.kernels() is not None, native.unavailable_reason()
        (library,) = (tmp_path / "cache" / "native").glob("*.so")
        assert b"libgomp" not in library.read_bytes()  # built without OpenMP's runtime
        logits = torch.randn(4, 70)
        values, columns = calls.best_words(logits, 2)
        expected, expected_columns = torch.log_softmax(logits, -1).topk(2, -1)
        assert torch.allclose(values, expected, atol=1e-5)
        assert torch.equal(columns, expected_columns)
    finally:
        native.kernels.cache_clear()
