"""Load test for `softalign serve`: concurrent clients on loopback, with and without batching.

    softalign train benchmarks/reverse-tiny.yaml -o runs/reverse-tiny   # about a minute
    python benchmarks/load_test.py runs/reverse-tiny       # 32 clients x 30 s, two servers
    python benchmarks/load_test.py RUN_DIR --beam 1         # greedy decoding
    python benchmarks/load_test.py RUN_DIR --no-compare     # dynamic batching only
    python benchmarks/load_test.py --url http://127.0.0.1:8000 --clients 8 --duration 10
    python benchmarks/load_test.py RUN_DIR --sustained      # 32 clients x 60 s, mixed worst cases

For each mode it starts `softalign serve RUN_DIR` on 127.0.0.1 (``--max-batch 64``, then
``--max-batch 1`` to measure one-by-one decoding), lets ``--clients`` threads each send
one-sentence requests over a kept-alive connection as fast as answers come back, and stops at
``--duration`` seconds or ``--max-requests`` requests, whichever comes first. It prints
requests/s, p50/p95 latency, errors and the server's mean batch size, and the throughput gain.
``--sustained`` instead runs one server at its default limits under 32 clients x 60 s of mixed
normal and worst-case requests (``benchmarks/sustained_load.py``) and checks that there is no
5xx other than 503/504, that the p95 latency of the normal requests is at most 1 s, and that
the server's memory stays flat; it exits 1 when a check fails.
Only loopback addresses are ever contacted. Needs the serve extra.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path

from softalign.data.synthetic import WORDS

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sustained_load  # noqa: E402

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class Result:
    mode: str
    max_batch: int | None
    clients: int
    seconds: float
    requests: int
    errors: int
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    mean_batch: float


def sentences(path: str | None, count: int = 500, seed: int = 1) -> list[str]:
    """Lines of ``path``, else random 5-15 word sentences over the synthetic corpus' words."""
    if path:
        lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
        return [line for line in lines if line]
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(5, 15))) for _ in range(count)]


def get_json(host: str, port: int, path: str) -> dict:
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request("GET", path)
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


class Load:
    """Closed-loop clients: each sends its next request as soon as the last one is answered."""

    def __init__(self, host: str, port: int, texts: list[str], beam: int | None) -> None:
        self.host, self.port, self.texts, self.beam = host, port, texts, beam
        self.latencies: list[float] = []
        self.errors = 0
        self.lock = threading.Lock()
        self.sent = 0

    def _take(self, budget: int) -> bool:
        with self.lock:
            self.sent += 1
            return self.sent <= budget

    def _client(self, index: int, deadline: float, budget: int) -> None:
        rng = random.Random(index)
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        while time.monotonic() < deadline and self._take(budget):
            body = {"text": [rng.choice(self.texts)]}
            if self.beam is not None:
                body["beam"] = self.beam
            start = time.perf_counter()
            try:
                connection.request(
                    "POST", "/translate", json.dumps(body), {"Content-Type": "application/json"}
                )
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
                connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
            elapsed = time.perf_counter() - start
            with self.lock:
                if ok:
                    self.latencies.append(elapsed)
                else:
                    self.errors += 1
        connection.close()

    def run(self, clients: int, duration: float, budget: int) -> tuple[float, int]:
        deadline = time.monotonic() + duration
        threads = [
            threading.Thread(target=self._client, args=(k, deadline, budget))
            for k in range(clients)
        ]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - start, len(self.latencies) + self.errors


def measure(mode: str, host: str, port: int, args: argparse.Namespace, max_batch: int | None):
    texts = sentences(args.input)
    Load(host, port, texts, args.beam).run(min(args.clients, 8), 2.0, 200)  # warm-up
    before = get_json(host, port, "/health")["batching"]
    load = Load(host, port, texts, args.beam)
    seconds, requests = load.run(args.clients, args.duration, args.max_requests)
    after = get_json(host, port, "/health")["batching"]
    batches = after["batches"] - before["batches"]
    decoded = after["sentences"] - before["sentences"]
    ms = sorted(1000 * s for s in load.latencies) or [float("nan")]
    return Result(
        mode=mode,
        max_batch=max_batch,
        clients=args.clients,
        seconds=round(seconds, 1),
        requests=requests,
        errors=load.errors,
        requests_per_s=round(len(load.latencies) / seconds, 1),
        p50_ms=round(statistics.median(ms), 1),
        p95_ms=round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 1),
        mean_batch=round(decoded / batches, 2) if batches else 0.0,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(run_dir: str, max_batch: int, threads: int) -> tuple[subprocess.Popen, int]:
    """`softalign serve` on loopback; its log goes to a temporary file (a pipe nobody reads
    would fill up and stall the server)."""
    port = free_port()
    command = [sys.executable, "-m", "softalign", "serve", run_dir, "--host", "127.0.0.1"]
    command += ["--port", str(port), "--max-batch", str(max_batch), "--threads", str(threads)]
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            sys.exit(f"server exited: {log.read().decode(errors='replace')[-4000:]}")
        try:
            get_json("127.0.0.1", port, "/health")
            return process, port
        except OSError:
            time.sleep(0.25)
    process.kill()
    sys.exit("server did not start within 120 s")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def served(run_dir: str, mode: str, max_batch: int, args: argparse.Namespace) -> Result:
    process, port = start_server(run_dir, max_batch, args.threads)
    try:
        return measure(mode, "127.0.0.1", port, args, max_batch)
    finally:
        stop_server(process)


ROW = "{:<18}{:>10}{:>10}{:>8}{:>9}{:>9}{:>9}{:>12}"


def report(results: list[Result]) -> None:
    print(
        ROW.format(
            "mode", "max_batch", "requests", "errors", "req/s", "p50 ms", "p95 ms", "mean batch"
        )
    )
    for r in results:
        numbers = (f"{r.requests_per_s:.1f}", f"{r.p50_ms:.1f}", f"{r.p95_ms:.1f}")
        print(ROW.format(r.mode, r.max_batch or "-", r.requests, r.errors, *numbers, r.mean_batch))
    if len(results) == 2 and results[1].requests_per_s:
        gain = results[0].requests_per_s / results[1].requests_per_s
        print(f"throughput gain of dynamic batching over batch size 1: {gain:.1f}x")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", nargs="?", help="run to serve (or give --url)")
    p.add_argument(
        "--url", help="an already running server on loopback, e.g. http://127.0.0.1:8000"
    )
    p.add_argument("--clients", type=int, default=32)
    p.add_argument(
        "--duration", type=float, help="seconds per mode, at most 300 (30; --sustained: 60)"
    )
    p.add_argument("--max-requests", type=int, default=100_000, help="request budget per mode")
    p.add_argument("--beam", type=int, help="beam size (default: the server's)")
    p.add_argument("--max-batch", type=int, default=64, help="the dynamic batching mode's")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    p.add_argument("--input", help="sentences to send, one per line (default: synthetic)")
    p.add_argument("--no-compare", action="store_true", help="skip the max-batch-1 server")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.add_argument(
        "--sustained", action="store_true", help="mixed normal and worst-case load, with checks"
    )
    p.add_argument(
        "--worst-share", type=float, default=0.25, help="--sustained: share of worst cases"
    )
    args = p.parse_args()
    args.duration = args.duration or (60.0 if args.sustained else 30.0)
    if not 0 < args.duration <= 300 or args.clients < 1 or args.max_requests < 1:
        p.error("need 0 < --duration <= 300, --clients >= 1 and --max-requests >= 1")
    if bool(args.run_dir) == bool(args.url):
        p.error("give RUN_DIR or --url, not both")
    return args


def sustained(args: argparse.Namespace) -> bool:
    """The mixed load against one server at its default limits (or ``--url``)."""
    if args.url:
        url = urllib.parse.urlsplit(args.url)
        if url.hostname not in LOOPBACK:
            sys.exit(f"refusing {url.hostname}: the load test only targets loopback")
        host, port, process = url.hostname, url.port or 80, None
    else:
        process, port = start_server(args.run_dir, args.max_batch, args.threads)
        host = "127.0.0.1"
    try:
        print(f"{args.clients} clients x {args.duration:g} s, {args.worst_share:.0%} worst cases")
        tally, samples = sustained_load.run(
            host,
            port,
            process.pid if process else None,
            args.clients,
            args.duration,
            args.worst_share,
        )
        return sustained_load.report(tally, samples)
    finally:
        if process is not None:
            stop_server(process)


def main() -> None:
    args = parse_args()
    if args.sustained:
        sys.exit(0 if sustained(args) else 1)
    if args.url:
        url = urllib.parse.urlsplit(args.url)
        if url.hostname not in LOOPBACK:
            sys.exit(f"refusing {url.hostname}: the load test only targets loopback")
        results = [measure("running server", url.hostname, url.port or 80, args, None)]
    else:
        results = [served(args.run_dir, "dynamic batching", args.max_batch, args)]
        if not args.no_compare:
            results.append(served(args.run_dir, "batch size 1", 1, args))
    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")


if __name__ == "__main__":
    main()
