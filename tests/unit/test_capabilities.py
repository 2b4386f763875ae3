"""Capabilities: CPU features read from cpuinfo, oneDNN's ISA cap applied, probes that run a
product, and ``softalign info`` (text and JSON) with and without ``ONEDNN_MAX_CPU_ISA=AVX2``."""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from softalign import capabilities
from softalign.capabilities import hardware_bf16, isa_allowed, isa_summary, read_cpuinfo
from softalign.cli import main

REPO = Path(__file__).resolve().parents[2]
X86 = platform.machine() in ("x86_64", "AMD64")
SAPPHIRE = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_bf16")
SAPPHIRE += ("amx_tile", "amx_bf16")
EPYC_ZEN3 = ("avx2", "fma")


def test_cpuinfo_gives_the_model_and_the_flags(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text(
        "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu avx2 fma sse4_2\n\n"
        "processor\t: 1\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu avx2 fma sse4_2\n"
    )
    assert read_cpuinfo(x86) == ("AMD EPYC 7B13", {"fpu", "avx2", "fma", "sse4_2"})
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd sve bf16\nCPU part\t: 0xd40\n")
    assert read_cpuinfo(arm)[1] == {"fp", "asimd", "sve", "bf16"}


def test_the_onednn_cap_hides_hardware_bf16_above_it():
    assert hardware_bf16("x86_64", SAPPHIRE, None) == ("amx_bf16", "avx512_bf16")
    assert hardware_bf16("x86_64", SAPPHIRE, "AVX512_CORE_BF16") == ("avx512_bf16",)
    assert hardware_bf16("x86_64", SAPPHIRE, "AVX512_CORE") == ()
    assert hardware_bf16("x86_64", SAPPHIRE, "AVX2") == ()
    assert hardware_bf16("x86_64", EPYC_ZEN3, None) == ()
    assert hardware_bf16("x86_64", ("avx2", "avx_ne_convert"), "AVX2_VNNI_2") == ("avx_ne_convert",)
    assert hardware_bf16("aarch64", ("asimd", "sve", "bf16"), None) == ("bf16",)
    assert hardware_bf16("aarch64", ("asimd",), None) == ()


def test_isa_levels_are_allowed_by_oneDNN_bit_masks():
    assert isa_allowed("AVX2", "AVX512_CORE_AMX")
    assert not isa_allowed("AVX512_CORE", "AVX2")
    # AVX2_VNNI_2 (AVX-NE-CONVERT) is not a subset of the AVX-512 levels
    assert not isa_allowed("AVX2_VNNI_2", "AVX512_CORE_AMX")
    assert isa_allowed("AVX512_CORE_AMX", None)
    assert isa_allowed("AVX512_CORE_AMX", "AVX10_2_512_AMX_2")  # a level this table lacks


def test_the_isa_summary_names_the_widest_level_in_effect():
    assert isa_summary("x86_64", SAPPHIRE, None) == "AMX"
    assert isa_summary("x86_64", SAPPHIRE, "AVX2") == "AVX2, capped by ONEDNN_MAX_CPU_ISA=AVX2"
    assert isa_summary("x86_64", EPYC_ZEN3, None) == "AVX2"
    assert isa_summary("aarch64", ("asimd", "sve", "bf16"), None) == "SVE + BF16 + NEON"


@pytest.mark.parametrize(
    ("env", "cap"),
    [
        ({"ONEDNN_MAX_CPU_ISA": "avx2"}, "AVX2"),
        ({"DNNL_MAX_CPU_ISA": "AVX512_CORE"}, "AVX512_CORE"),
        ({"ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "AVX512_CORE"}, "AVX2"),
        ({"ONEDNN_MAX_CPU_ISA": "DEFAULT"}, None),
        ({}, None),
    ],
)
def test_the_cap_comes_from_the_environment(monkeypatch, env, cap):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert capabilities.onednn_isa_cap() == cap


def test_probes_run_once_and_leave_the_random_generator_alone():
    state = torch.get_rng_state()
    first = capabilities.probe_bf16_product()
    capabilities.probe_packing()
    assert torch.equal(torch.get_rng_state(), state)
    assert (
        capabilities.cpu() is capabilities.cpu() and capabilities.detect() is capabilities.detect()
    )
    assert first == capabilities.cpu().onednn_bf16


def test_the_packing_probe_agrees_with_packing_a_real_weight():
    """The probe's verdict is what a packed product does on a weight of a model's size."""
    weight = torch.randn(40, 24).bfloat16()
    try:
        packed = torch.ops.mkldnn._reorder_linear_weight(weight)
        torch.ops.mkldnn._linear_pointwise(
            torch.randn(5, 24).bfloat16(), packed, None, "none", [], ""
        )
        packs = True
    except (RuntimeError, AttributeError):
        packs = False
    assert capabilities.cpu().onednn_packing.works == packs


def info_json(**env: str) -> dict:
    """``softalign info --json`` in a fresh process (oneDNN reads its cap once, at start)."""
    path = os.pathsep.join([str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-m", "softalign", "info", "--json"],
        env={**os.environ, "PYTHONPATH": path, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(result.stdout)


def test_info_json_reports_this_machine_and_what_auto_picks():
    record = info_json()
    here = capabilities.cpu()  # this process runs under the same environment
    assert record["cpu"]["features"] == list(here.features)
    assert record["cpu"]["onednn_packing"]["works"] == here.onednn_packing.works
    assert record["torch"] == torch.__version__ and record["threads"] >= 1
    assert record["kernels"] == (record["kernels_reason"] is None)
    fast_bf16 = bool(record["cpu"]["bf16_hardware"]) and record["cpu"]["onednn_bf16"]["works"]
    assert record["auto"]["precision"]["cpu"] == ("bf16" if fast_bf16 else "fp32")


@pytest.mark.skipif(not X86, reason="ONEDNN_MAX_CPU_ISA=AVX2 rehearses an x86 machine")
def test_info_under_an_avx2_cap_shows_no_packing_and_auto_picks_fp32():
    record = info_json(ONEDNN_MAX_CPU_ISA="AVX2", ATEN_CPU_CAPABILITY="avx2")
    cpu = record["cpu"]
    assert cpu["onednn_isa_cap"] == "AVX2" and cpu["aten_capability"] == "AVX2"
    assert cpu["bf16_hardware"] == [] and cpu["isa"].startswith("AVX2")
    assert not cpu["onednn_packing"]["works"] and cpu["onednn_packing"]["detail"]
    assert record["auto"]["precision"]["cpu"] == "fp32"


def test_info_prints_one_readable_line_per_fact(capsys):
    assert main(["info"]) == 0
    lines = capsys.readouterr().out.splitlines()
    facts = dict(line.split("  ", 1) for line in lines)  # name, padding, value
    facts = {name.strip(): value.strip() for name, value in facts.items()}
    here = capabilities.cpu()
    assert facts["torch"] == torch.__version__
    assert facts["bf16 packing"].startswith("works" if here.onednn_packing.works else "fails")
    assert facts["cpu features"] == " ".join(here.features)
    assert facts["auto precision"].startswith("cpu: ")
    assert ("C kernels" in facts) and ("oneDNN isa cap" in facts)


def test_info_shows_the_backend_auto_picks_where_the_backend_seam_exists(monkeypatch, capsys):
    """``softalign.backend.choose_backend("auto", cpu)`` when the module exists; no line
    otherwise."""
    import types

    backend = types.ModuleType("softalign.backend")
    backend.choose_backend = lambda name, device: f"fast ({name} on {device})"
    monkeypatch.setitem(sys.modules, "softalign.backend", backend)
    assert main(["info"]) == 0
    assert "auto backend    cpu: fast (auto on cpu)" in capsys.readouterr().out.splitlines()
    monkeypatch.setitem(sys.modules, "softalign.backend", None)  # import fails
    assert main(["info"]) == 0
    assert "auto backend" not in capsys.readouterr().out


def test_info_lists_cuda_devices_and_what_auto_picks_on_each(monkeypatch):
    """Two GPUs faked (no GPU needed): bf16 on the one with bf16 tensor cores, fp32 on the
    other."""
    from dataclasses import replace

    from softalign.capabilities import CudaDevice
    from softalign.cli.info_command import format_info, info_record

    gpus = (CudaDevice("NVIDIA H200", (9, 0), True), CudaDevice("Tesla T4", (7, 5), False))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i: gpus[i].capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: gpus[i].name)
    record = info_record(replace(capabilities.detect(), cuda=gpus))
    assert record["auto"]["precision"]["cuda:0"] == "bf16"
    assert record["auto"]["precision"]["cuda:1"] == "fp32"
    lines = format_info(record).splitlines()
    cuda = next(line for line in lines if line.startswith("cuda "))
    assert cuda.split("  ", 1)[1].strip() == (
        "cuda:0 NVIDIA H200 (compute 9.0, bf16); cuda:1 Tesla T4 (compute 7.5)"
    )
    auto = next(line for line in lines if line.startswith("auto precision"))
    assert auto.endswith("cuda:0: bf16, cuda:1: fp32")


def test_parsing_the_command_line_imports_no_torch():
    """``info`` and ``--precision`` must not make ``softalign --help`` pay torch's import."""
    path = os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])
    code = "import sys, softalign.cli; print(sorted(m for m in sys.modules if m == 'torch'))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.strip() == "[]"
