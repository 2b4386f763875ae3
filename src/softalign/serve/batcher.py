"""Dynamic batching: concurrent requests share one decoding call on one worker thread.

Requests wait in a queue. The worker takes the oldest one, then keeps collecting for at
most ``max_wait`` seconds (or until ``max_batch`` sentences are gathered), groups what it
collected by decoding options ``(beam, nbest)`` and translates each group in one call to
:meth:`Translator.translate`, which sorts the sentences by length into token batches. Under
load the queue fills while the model is busy, so batches grow with the number of clients
instead of requests being served one by one; with no load a request waits ``max_wait`` at most.

The model only ever runs on the worker thread; callers get a ``concurrent.futures.Future``
(``asyncio.wrap_future`` makes it awaitable).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol

from softalign.translator import Translation

log = logging.getLogger("softalign.serve")


class TranslateFn(Protocol):
    def translate(self, texts: list[str], beam: int, nbest: int) -> list[Translation]: ...


@dataclass
class Job:
    texts: list[str]
    beam: int
    nbest: int
    future: Future = field(default_factory=Future)


@dataclass
class BatchStats:
    """Counters for /health: how many decoding calls and how full they were."""

    requests: int = 0
    sentences: int = 0
    batches: int = 0
    largest_batch: int = 0

    def as_dict(self) -> dict[str, float]:
        mean = self.sentences / self.batches if self.batches else 0.0
        return {
            "requests": self.requests,
            "sentences": self.sentences,
            "batches": self.batches,
            "mean_batch_sentences": round(mean, 2),
            "largest_batch_sentences": self.largest_batch,
        }


class DynamicBatcher:
    """Collects jobs from many threads and decodes them together on one worker thread."""

    def __init__(self, translator: TranslateFn, *, max_batch: int = 64, max_wait: float = 0.005):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.translator = translator
        self.max_batch = max_batch  # sentences per decoding round (a larger request runs alone)
        self.max_wait = max_wait  # seconds to wait for more requests after the first
        self.stats = BatchStats()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._held: Job | None = None  # a job that did not fit the last round, goes first next
        self._pending = 0  # sentences submitted and not yet answered
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def pending_sentences(self) -> int:
        return self._pending

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="softalign-batcher", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the queued jobs, then end the worker thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def submit(self, texts: list[str], beam: int, nbest: int) -> Future:
        """Queue sentences for translation; the future's result is a list of Translation."""
        job = Job(list(texts), beam, nbest)
        with self._lock:
            self._pending += len(job.texts)
            self.stats.requests += 1
        self._queue.put(job)
        return job.future

    # ------------------------------------------------------------------ worker thread

    def _run(self) -> None:
        while True:
            jobs, stopping = self._collect()
            if jobs:
                self._decode(jobs)
            if stopping:
                return

    def _collect(self) -> tuple[list[Job], bool]:
        """Block for a first job, then gather more until the window closes or the batch is full."""
        first = self._held if self._held is not None else self._queue.get()
        self._held = None
        if first is None:
            return [], True
        jobs, size = [first], len(first.texts)
        deadline = time.monotonic() + self.max_wait
        while size < self.max_batch:
            try:
                job = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            if size + len(job.texts) > self.max_batch:
                self._held = job
                break
            jobs.append(job)
            size += len(job.texts)
        return jobs, False

    def _decode(self, jobs: list[Job]) -> None:
        """Translate each ``(beam, nbest)`` group in one call and hand each job its slice."""
        groups: dict[tuple[int, int], list[Job]] = {}
        for job in jobs:
            if job.future.set_running_or_notify_cancel():  # False: the caller went away
                groups.setdefault((job.beam, job.nbest), []).append(job)
            else:
                self._answered(len(job.texts))
        for (beam, nbest), group in groups.items():
            outcome = self._translate([t for job in group for t in job.texts], beam, nbest)
            if isinstance(outcome, Exception) and len(group) > 1:
                # one bad request must not fail the ones batched with it: retry each alone
                for job in group:
                    self._answer([job], self._translate(job.texts, beam, nbest))
            else:
                self._answer(group, outcome)

    def _translate(self, texts: list[str], beam: int, nbest: int) -> list[Translation] | Exception:
        try:
            outcome: list[Translation] | Exception = self.translator.translate(
                texts, beam=beam, nbest=nbest
            )
        except Exception as exc:  # handed to the callers; the worker must stay alive
            log.exception("decoding a batch of %d sentences failed", len(texts))
            outcome = exc
        with self._lock:
            self.stats.batches += 1
            self.stats.sentences += len(texts)
            self.stats.largest_batch = max(self.stats.largest_batch, len(texts))
        return outcome

    def _answer(self, group: list[Job], outcome: list[Translation] | Exception) -> None:
        start = 0
        for job in group:
            if isinstance(outcome, Exception):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(outcome[start : start + len(job.texts)])
            start += len(job.texts)
            self._answered(len(job.texts))

    def _answered(self, sentences: int) -> None:
        with self._lock:
            self._pending -= sentences
