"""``softalign info``: what this machine can do (see ``capabilities.py``) and what ``auto`` picks.

The text form is for reading; ``--json`` prints the same facts as one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import TYPE_CHECKING, Any

import softalign
from softalign.errors import SoftalignError

if TYPE_CHECKING:
    from softalign.capabilities import Capabilities


def auto_choices(caps: Capabilities) -> dict[str, dict[str, str]]:
    """What ``auto`` resolves to on each device here: {"precision": {device: name}, and
    "backend" where ``softalign.backend`` exists}."""
    import torch

    from softalign.precision import resolve_precision

    devices = [torch.device("cpu")] + [torch.device("cuda", i) for i in range(len(caps.cuda))]
    picks: dict[str, dict[str, str]] = {"precision": {}}
    for device in devices:
        picks["precision"][str(device)] = resolve_precision("auto", device, cpu=caps.cpu)
    try:
        from softalign.backend import choose_backend
    except ImportError:
        return picks
    try:
        picks["backend"] = {"cpu": str(choose_backend("auto", torch.device("cpu")))}
    except SoftalignError as error:
        picks["backend"] = {"cpu": f"error: {error}"}
    return picks


def info_record(caps: Capabilities) -> dict[str, Any]:
    """The capabilities as plain JSON-able data, with ``auto``'s choices."""
    record = {"softalign": softalign.__version__, **dataclasses.asdict(caps)}
    record["cpu"]["isa"] = caps.cpu.isa
    record["auto"] = auto_choices(caps)
    return record


def _probe(probe: dict[str, Any]) -> str:
    return "works" if probe["works"] else f"fails ({probe['detail']})"


def format_info(record: dict[str, Any]) -> str:
    """The record as an aligned, readable block."""
    cpu = record["cpu"]
    hardware = ", ".join(cpu["bf16_hardware"])
    cap = cpu["onednn_isa_cap"]
    kernels = "loaded" if record["kernels"] else f"off: {record['kernels_reason']}"
    if not record["kernels"]:
        kernels += " (PyTorch's operators instead: same results, slower)"
    cuda = [
        f"{d['name']} (compute {d['capability'][0]}.{d['capability'][1]}"
        f"{', bf16' if d['bf16'] else ''})"
        for d in record["cuda"]
    ]
    rows = [
        ("softalign", record["softalign"]),
        ("python", record["python"]),
        ("torch", record["torch"]),
        ("os", record["os"]),
        ("cpu", f"{cpu['machine']}, {cpu['model']}"),
        ("cpu features", " ".join(cpu["features"]) or "none of those softalign uses"),
        ("vector isa", f"{cpu['isa']} (ATen: {cpu['aten_capability']})"),
        ("oneDNN isa cap", cap or "none"),
        ("threads", str(record["threads"])),
        ("bf16 products", _probe(cpu["onednn_bf16"])),
        ("bf16 packing", _probe(cpu["onednn_packing"])),
        ("hardware bf16", hardware or "none (bf16 runs slower than fp32 here)"),
        ("C kernels", kernels),
        ("cuda", "; ".join(f"cuda:{i} {name}" for i, name in enumerate(cuda)) or "none"),
    ]
    for what, picks in record["auto"].items():
        choices = ", ".join(f"{device}: {name}" for device, name in picks.items())
        rows.append((f"auto {what}", choices))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def cmd_info(args: argparse.Namespace) -> int:
    from softalign import capabilities

    record = info_record(capabilities.detect())
    print(json.dumps(record, indent=2) if args.json else format_info(record))
    return 0
