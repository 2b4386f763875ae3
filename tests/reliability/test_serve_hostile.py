"""A real ``softalign serve`` process under hostile input: a schemathesis run against its own
OpenAPI schema (no 5xx, every response as the schema says), loopback by default, the body
size capped, and a stalled client does not stall the others."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="needs the serve extra: pip install -e '.[serve]'")
pytest.importorskip("fastapi_offline", reason="needs the serve extra: pip install -e '.[serve]'")

from tests.reliability.clicheck import low_priority, softalign  # noqa: E402

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def schemathesis_run(port: int, max_examples: int, phases: str) -> None:
    """``schemathesis run`` against the server's own /openapi.json, every check but one.

    positive_data_acceptance is left out: the limits (max_beam, max_chars, sentences per
    request) are set when the server starts and are not in the schema, so schema-valid
    requests over them are rightly refused with 413/422.
    """
    if not SCHEMATHESIS.exists():
        pytest.skip("needs schemathesis (dev extra)")
    done = subprocess.run(
        [
            str(SCHEMATHESIS), "run", f"http://127.0.0.1:{port}/openapi.json",
            "--checks", "all", "--exclude-checks", "positive_data_acceptance",
            "--phases", phases, "--max-examples", str(max_examples), "--seed", "9",
            "--workers", "1", "--no-color",
        ],
        capture_output=True, text=True, timeout=600, preexec_fn=low_priority,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "Test cases:" in done.stdout and " 0 generated" not in done.stdout


def test_schemathesis_finds_no_server_error_or_schema_violation(server):
    schemathesis_run(server, max_examples=15, phases="examples,fuzzing")


@pytest.mark.slow
def test_schemathesis_coverage_phase_finds_no_server_error_or_schema_violation(server):
    schemathesis_run(server, max_examples=60, phases="examples,coverage,fuzzing")


# ------------------------------------------------------------------ a real server process


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp*) of sockets listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A = LISTEN
                found.add(address)
    return found


def request(port: int, path: str, body: bytes | None = None, timeout: float = 30):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def start_server(run: Path, *options: str) -> tuple[object, int]:
    port = free_port()
    process = softalign("serve", run, "--port", str(port), *options)
    deadline = time.monotonic() + 600  # generous: a busy machine
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1][-2000:]
        try:
            if request(port, "/health", timeout=2)[0] == 200:
                return process, port
        except OSError:
            time.sleep(0.3)
    process.kill()
    pytest.fail("the server did not start")


@pytest.fixture(scope="module")
def server(tiny_run):
    process, port = start_server(
        tiny_run, "--max-body-bytes", "10000", "--max-chars", "60", "--max-beam", "3"
    )
    yield port
    process.terminate()
    process.communicate(timeout=120)


def test_server_listens_on_loopback_only_by_default(server):
    assert listening_addresses(server) == {"0100007F"}  # 127.0.0.1, nothing else


def test_request_body_over_the_cap_is_refused_and_the_server_goes_on(server):
    status, body = request(server, "/translate", b'{"text": ["' + b"x" * 2_000_000 + b'"]}')
    assert status == 413 and body["error"]["code"] == "body_too_large"
    status, body = request(server, "/translate", b'{"text": ["ba de"]}')
    assert status == 200 and len(body["translations"]) == 1


def test_a_stalled_client_does_not_stall_other_requests(server):
    stalled = socket.create_connection(("127.0.0.1", server))
    try:  # headers promising a body that never comes
        stalled.sendall(b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{")
        started = time.monotonic()
        status, _ = request(server, "/translate", b'{"text": ["ba de"]}', timeout=120)
        assert status == 200 and time.monotonic() - started < 120  # not until the stall ends
    finally:
        stalled.close()


@pytest.mark.slow  # a second server, and one that listens beyond loopback for a moment
def test_serving_beyond_loopback_warns(tiny_run):
    process, port = start_server(tiny_run, "--host", "0.0.0.0")
    process.terminate()
    _, err = process.communicate(timeout=120)
    assert "reachable from other machines, with no authentication" in err
