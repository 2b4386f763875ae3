"""The sustained mixed load of ``load_test.py --sustained``: normal and worst-case requests.

Closed-loop clients on loopback each pick, per request, a normal one (one 5-15 word sentence,
the server's default beam) or, with probability ``worst_share``, one of the worst cases the
default limits allow or refuse:

- ``max work``: 32 sentences of 1000 characters, beam 10, nbest 10 (work 64,000 = max_work);
- ``max attention``: one sentence of 1000 characters, beam 10, nbest 10, with attention;
- ``64 KB``: 64 x 1000 characters, beam 10, nbest 10, attention (refused: 413).

A 503 is followed by a pause of ``min(Retry-After, 1 s)`` before the client's next request,
as a well-behaved client would. A monitor samples the server's RSS every second. The verdict:
no 5xx but 503/504, p95 of the normal requests at most 1 s, RSS flat (the last third's mean
within 10 % or 50 MB of the first third's).
"""

from __future__ import annotations

import http.client
import json
import random
import statistics
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from softalign.data.synthetic import WORDS

NORMAL_P95_S = 1.0


def long_sentence(rng: random.Random, chars: int = 1000) -> str:
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < chars:
        words.append(rng.choice(WORDS))
    return " ".join(words)[:chars]


def request_body(kind: str, rng: random.Random) -> dict:
    if kind == "normal":
        return {"text": [" ".join(rng.choices(WORDS, k=rng.randint(5, 15)))]}
    if kind == "max work":
        return {"text": [long_sentence(rng)] * 32, "beam": 10, "nbest": 10}
    if kind == "max attention":
        return {"text": [long_sentence(rng)], "beam": 10, "nbest": 10, "attention": True}
    return {"text": [long_sentence(rng)] * 64, "beam": 10, "nbest": 10, "attention": True}


WORST = ("max work", "max attention", "64 KB")


@dataclass
class Tally:
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, status: int, seconds: float) -> None:
        with self.lock:
            self.statuses[kind][status] += 1
            if status == 200:
                self.latencies[kind].append(seconds)


def client(host: str, port: int, seed: int, worst_share: float, deadline: float, tally: Tally):
    rng = random.Random(seed)
    bodies = {kind: json.dumps(request_body(kind, rng)) for kind in WORST}
    connection = http.client.HTTPConnection(host, port, timeout=120)
    while time.monotonic() < deadline:
        kind = rng.choice(WORST) if rng.random() < worst_share else "normal"
        body = bodies[kind] if kind != "normal" else json.dumps(request_body(kind, rng))
        start = time.perf_counter()
        retry_after = 0.0
        try:
            connection.request("POST", "/translate", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            status = response.status
            retry_after = float(response.getheader("Retry-After") or 0)
        except (OSError, http.client.HTTPException):
            status = 0  # connection error
            connection.close()
            connection = http.client.HTTPConnection(host, port, timeout=120)
        tally.add(kind, status, time.perf_counter() - start)
        if status == 503:
            time.sleep(min(retry_after, 1.0))
    connection.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def monitor(pid: int, deadline: float, samples: list[float]) -> None:
    while time.monotonic() < deadline:
        samples.append(rss_mb(pid))
        time.sleep(1.0)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run(host: str, port: int, pid: int | None, clients: int, seconds: float, worst_share: float):
    """Run the load; return (tally, RSS samples in MB)."""
    tally, samples = Tally(), []
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(target=client, args=(host, port, k, worst_share, deadline, tally))
        for k in range(clients)
    ]
    if pid is not None:
        threads.append(threading.Thread(target=monitor, args=(pid, deadline, samples)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally, samples


def report(tally: Tally, samples: list[float]) -> bool:
    """Print the table and the verdict; True when every check holds."""
    row = "{:<15}{:>9}{:>7}{:>7}{:>7}{:>7}{:>10}{:>10}{:>9}{:>9}"
    print(
        row.format(
            "request",
            "sent",
            "200",
            "413",
            "503",
            "504",
            "other 5xx",
            "conn err",
            "p50 ms",
            "p95 ms",
        )
    )
    bad_5xx = 0
    for kind in ("normal", *WORST):
        counts = tally.statuses.get(kind, Counter())
        other = sum(n for s, n in counts.items() if s >= 500 and s not in (503, 504))
        bad_5xx += other
        ms = [1000 * s for s in tally.latencies.get(kind, [])]
        p50 = f"{statistics.median(ms):.0f}" if ms else "-"
        p95 = f"{percentile(ms, 0.95):.0f}" if ms else "-"
        print(
            row.format(
                kind,
                sum(counts.values()),
                counts[200],
                counts[413],
                counts[503],
                counts[504],
                other,
                counts[0],
                p50,
                p95,
            )
        )
    normal_p95 = percentile(tally.latencies.get("normal", []), 0.95)
    dropped = sum(counts[0] for counts in tally.statuses.values())
    checks = {
        "no 5xx other than 503/504": bad_5xx == 0,
        "no dropped connections": dropped == 0,
        f"p95 of normal requests <= {NORMAL_P95_S:g} s ({normal_p95:.2f} s)": normal_p95
        <= NORMAL_P95_S,
    }
    if samples:
        third = max(1, len(samples) // 3)
        first, last = statistics.mean(samples[:third]), statistics.mean(samples[-third:])
        print(
            f"server RSS MB: first {samples[0]:.0f}, max {max(samples):.0f}, "
            f"last {samples[-1]:.0f} (first third mean {first:.0f}, last third {last:.0f})"
        )
        print("server RSS MB every 10 s: " + " ".join(f"{mb:.0f}" for mb in samples[::10]))
        checks["RSS flat"] = last - first <= max(50.0, 0.1 * first)
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return all(checks.values())
