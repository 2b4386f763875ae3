"""What this machine can do, detected once: CPU features, oneDNN's bf16 products, kernels, CUDA.

Two levels, each computed once per process (``functools.cache``):

- :func:`cpu` — the CPU's ISA features (``/proc/cpuinfo``), oneDNN's ISA cap
  (``ONEDNN_MAX_CPU_ISA``), ATen's vector capability, and two probes that *run* a tiny
  product rather than infer from names: whether oneDNN computes bf16 products
  (``F.linear`` in bf16) and whether it packs bf16 weights
  (``torch.ops.mkldnn._reorder_linear_weight`` + ``_linear_pointwise``; PyTorch refuses it
  without AVX-512 BW/VL/DQ or AVX-NE-CONVERT). Both check the result against exact values.
  Cheap (≈ 10 ms): precision and packed products use it.
- :func:`detect` — all of that plus versions, threads, the C kernels (building them if
  needed, or the reason they are off) and CUDA devices: what ``softalign info`` prints.

bf16 is *fast* on a CPU only with hardware bf16 that oneDNN may use: AMX (``amx_bf16``),
AVX-512 BF16 (``avx512_bf16``) or AVX-NE-CONVERT (``avx_ne_convert``) on x86, the BF16
extension on aarch64. A cap ``ONEDNN_MAX_CPU_ISA=AVX2`` hides them from oneDNN, as on a
machine without them; the cap is a bit mask of ISA levels, and a level is allowed when its
bits are within the cap's (oneDNN's ``dnnl_cpu_isa_t``).
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

# the features softalign's speed depends on, as /proc/cpuinfo names them
X86_FEATURES = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512dq",
    "avx512_bf16",
    "avx_ne_convert",
    "amx_tile",
    "amx_bf16",
)
ARM_FEATURES = ("asimd", "sve", "sve2", "bf16")
# oneDNN's ISA levels (dnnl_cpu_isa_t): ONEDNN_MAX_CPU_ISA=NAME allows the levels whose bits
# lie within NAME's
ONEDNN_ISA_BITS = {
    "SSE41": 0x1,
    "AVX": 0x3,
    "AVX2": 0x7,
    "AVX2_VNNI": 0xF,
    "AVX2_VNNI_2": 0x1F,
    "AVX512_CORE": 0x27,
    "AVX512_CORE_VNNI": 0x67,
    "AVX512_CORE_BF16": 0xE7,
    "AVX10_1_512": 0x1EF,
    "AVX512_CORE_FP16": 0x1EF,
    "AVX10_1_512_AMX": 0xFEF,
    "AVX512_CORE_AMX": 0xFEF,
    "AVX10_1_512_AMX_FP16": 0x1FEF,
    "AVX512_CORE_AMX_FP16": 0x1FEF,
}
# x86 hardware bf16 feature -> the oneDNN level that uses it
X86_BF16_HARDWARE = {
    "amx_bf16": "AVX512_CORE_AMX",
    "avx512_bf16": "AVX512_CORE_BF16",
    "avx_ne_convert": "AVX2_VNNI_2",
}


@dataclass(frozen=True)
class Probe:
    """Whether a tiny product ran and gave the exact result; if not, the one-line reason."""

    works: bool
    detail: str = ""


@dataclass(frozen=True)
class CpuCapabilities:
    machine: str  # platform.machine(): x86_64, aarch64, ...
    model: str  # e.g. "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"
    features: tuple[str, ...]  # those of X86_FEATURES / ARM_FEATURES the CPU has
    onednn_isa_cap: str | None  # ONEDNN_MAX_CPU_ISA (or DNNL_MAX_CPU_ISA), None: no cap
    aten_capability: str  # torch.backends.cpu.get_cpu_capability(): DEFAULT, AVX2, AVX512...
    onednn_bf16: Probe  # bf16 F.linear runs and is exact
    onednn_packing: Probe  # oneDNN packs a bf16 weight and its product is exact
    bf16_hardware: tuple[str, ...]  # hardware bf16 features oneDNN may use here (cap applied)

    @property
    def isa(self) -> str:
        """The widest vector ISA in effect, for messages: AMX, AVX-512 BF16, AVX-512, AVX2..."""
        return isa_summary(self.machine, self.features, self.onednn_isa_cap)


@dataclass(frozen=True)
class CudaDevice:
    name: str
    capability: tuple[int, int]  # compute capability (major, minor)
    bf16: bool  # 8.0 or later: bf16 tensor cores


@dataclass(frozen=True)
class Capabilities:
    cpu: CpuCapabilities
    threads: int
    python: str
    torch: str
    os: str
    kernels: bool  # softalign's C kernels are loaded
    kernels_reason: str | None  # why not (None when loaded)
    cuda: tuple[CudaDevice, ...]


def read_cpuinfo(path: Path = Path("/proc/cpuinfo")) -> tuple[str, set[str]]:
    """The CPU's model name and its feature flags (empty when there is no cpuinfo)."""
    model, flags = "", set()
    try:
        text = path.read_text()
    except OSError:
        return platform.processor() or "unknown", flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return model or platform.processor() or "unknown", flags


def onednn_isa_cap() -> str | None:
    """oneDNN's ISA cap from the environment (``ONEDNN_MAX_CPU_ISA``, else the older
    ``DNNL_MAX_CPU_ISA``); None without a cap (unset, DEFAULT or ALL)."""
    value = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or ""
    value = value.strip().upper()
    return None if value in ("", "DEFAULT", "ALL") else value


def isa_allowed(level: str, cap: str | None) -> bool:
    """Whether oneDNN may use ISA ``level`` under ``cap`` (an unknown cap is not held against
    it: a newer oneDNN's level this table does not know)."""
    if cap is None or cap not in ONEDNN_ISA_BITS:
        return True
    return ONEDNN_ISA_BITS[level] & ~ONEDNN_ISA_BITS[cap] == 0


def hardware_bf16(machine: str, features: tuple[str, ...], cap: str | None) -> tuple[str, ...]:
    """The CPU's hardware bf16 features that oneDNN may use under ``cap``."""
    if machine in ("aarch64", "arm64"):
        return ("bf16",) if "bf16" in features else ()
    return tuple(
        f for f, level in X86_BF16_HARDWARE.items() if f in features and isa_allowed(level, cap)
    )


def isa_summary(machine: str, features: tuple[str, ...], cap: str | None) -> str:
    """The widest vector ISA oneDNN may use, as a reader names it (cap applied)."""
    if machine in ("aarch64", "arm64"):
        names = {"sve": "SVE", "bf16": "BF16", "asimd": "NEON"}
        found = [name for f, name in names.items() if f in features]
        return " + ".join(found) if found else machine
    avx512 = all(f in features for f in ("avx512f", "avx512bw", "avx512vl", "avx512dq"))
    levels = [  # widest first: (name, present, oneDNN level)
        ("AMX", "amx_bf16" in features, "AVX512_CORE_AMX"),
        ("AVX-512 BF16", "avx512_bf16" in features, "AVX512_CORE_BF16"),
        ("AVX-512", avx512, "AVX512_CORE"),
        ("AVX2 + AVX-NE-CONVERT", "avx_ne_convert" in features, "AVX2_VNNI_2"),
        ("AVX2", "avx2" in features, "AVX2"),
    ]
    for name, present, level in levels:
        if present and isa_allowed(level, cap):
            return name + (f", capped by ONEDNN_MAX_CPU_ISA={cap}" if cap else "")
    return machine


def _exact_operands(rows: int, inputs: int, outputs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x (rows, inputs) and W (outputs, inputs) with entries in {-1, 0, 1}: their bf16 product
    is exact, so a probe compares with ``==`` (and draws nothing from the random generator)."""
    x = (torch.arange(rows * inputs) % 3 - 1).float().view(rows, inputs)
    w = (torch.arange(outputs * inputs) % 5 % 3 - 1).float().view(outputs, inputs)
    return x, w


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


def probe_bf16_product() -> Probe:
    """Run a (3 × 32) · (32 × 16) bf16 ``F.linear`` on the CPU; exact against fp32?"""
    x, w = _exact_operands(3, 32, 16)
    try:
        with torch.no_grad(), torch.autocast("cpu", enabled=False):
            got = F.linear(x.bfloat16(), w.bfloat16()).float()
    except RuntimeError as error:
        return Probe(False, _first_line(error))
    if not torch.equal(got, x @ w.T):
        return Probe(False, "a bf16 product gave wrong values")
    return Probe(True)


def probe_packing() -> Probe:
    """Pack a (16 × 32) bf16 weight for oneDNN and multiply 3 rows by it; exact?"""
    mkldnn = getattr(torch.ops, "mkldnn", None)
    if not torch.backends.mkldnn.is_available() or mkldnn is None:
        return Probe(False, "this PyTorch build has no oneDNN")
    if not (hasattr(mkldnn, "_reorder_linear_weight") and hasattr(mkldnn, "_linear_pointwise")):
        return Probe(False, "this PyTorch build has no oneDNN packed products")
    x, w = _exact_operands(3, 32, 16)
    bias = torch.arange(16.0) - 8
    try:
        with torch.no_grad(), torch.autocast("cpu", enabled=False):
            packed = mkldnn._reorder_linear_weight(w.bfloat16())
            got = mkldnn._linear_pointwise(x.bfloat16(), packed, bias.bfloat16(), "none", [], "")
    except RuntimeError as error:
        return Probe(False, _first_line(error))
    if not torch.equal(got.float(), x @ w.T + bias):
        return Probe(False, "a packed bf16 product gave wrong values")
    return Probe(True)


@functools.cache
def cpu() -> CpuCapabilities:
    """This CPU's features and what oneDNN does with bf16 on it (probed once)."""
    machine = platform.machine()
    model, flags = read_cpuinfo()
    wanted = ARM_FEATURES if machine in ("aarch64", "arm64") else X86_FEATURES
    features = tuple(f for f in wanted if f in flags)
    cap = onednn_isa_cap()
    return CpuCapabilities(
        machine=machine,
        model=model,
        features=features,
        onednn_isa_cap=cap,
        aten_capability=torch.backends.cpu.get_cpu_capability(),
        onednn_bf16=probe_bf16_product(),
        onednn_packing=probe_packing(),
        bf16_hardware=hardware_bf16(machine, features, cap),
    )


def cuda_device(index: int) -> CudaDevice:
    """CUDA device ``index``: its name, compute capability and whether it has bf16."""
    capability = tuple(torch.cuda.get_device_capability(index))
    return CudaDevice(torch.cuda.get_device_name(index), capability, capability >= (8, 0))


def cuda_devices() -> tuple[CudaDevice, ...]:
    if not torch.cuda.is_available():
        return ()
    return tuple(cuda_device(i) for i in range(torch.cuda.device_count()))


@functools.cache
def detect() -> Capabilities:
    """Everything ``softalign info`` shows (builds the C kernels if they are not yet built)."""
    from softalign.fast import native

    loaded = native.kernels() is not None
    return Capabilities(
        cpu=cpu(),
        threads=torch.get_num_threads(),
        python=platform.python_version(),
        torch=torch.__version__,
        os=f"{platform.system()} {platform.release()}",
        kernels=loaded,
        kernels_reason=None if loaded else native.unavailable_reason(),
        cuda=cuda_devices(),
    )
