"""Dynamic batching: concurrent requests share one decoding call on one worker thread.

Requests wait in a queue, each with its estimated work (one number per sentence, see
:func:`softalign.serve.limits.request_cost`). The worker takes what is queued, keeps collecting
for at most ``max_wait`` seconds (or until ``max_batch`` sentences are there), then fills one
decoding *round* smallest request first: at most ``max_batch`` sentences and ``round_work``
units of work. A request larger than that is split over several rounds, so small requests
that arrive meanwhile go ahead of its rest: a large request delays a small one by one round at
most, never by all of its own decoding. Each round's sentences are grouped by decoding options
``(beam, nbest, attention)`` and each group is translated in one call to
:meth:`Translator.translate`.

The worker measures its speed (work per second, a decayed average over rounds), so the server
can tell how long the queued work will take (:meth:`DynamicBatcher.seconds_for`) and refuse a
request that would wait too long before it waits at all.

The model only ever runs on the worker thread; callers get a ``concurrent.futures.Future``
(``asyncio.wrap_future`` makes it awaitable). Work other than beam search (forced decoding of
a reference) goes to the same thread through :meth:`DynamicBatcher.call`, between rounds.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from softalign.translator import Translation

log = logging.getLogger("softalign.serve")

SPEED_DECAY = 0.9  # weight of the older rounds in the measured speed


class TranslateFn(Protocol):
    def translate(
        self, texts: list[str], beam: int, nbest: int, attention: bool = True
    ) -> list[Translation]: ...


@dataclass
class Job:
    texts: list[str]
    beam: int
    nbest: int
    attention: bool
    works: list[int]  # each sentence's estimated work
    seq: int  # arrival order, among requests of equal work
    future: Future = field(default_factory=Future)
    next: int = 0  # first sentence not yet handed to a round
    running: bool = False  # the future is marked running (it can no longer be cancelled)
    results: list[Translation] = field(default_factory=list)

    @property
    def remaining_work(self) -> int:
        return sum(self.works[self.next :])


@dataclass
class Slice:
    """Sentences ``start:end`` of a job, decoded in one round."""

    job: Job
    start: int
    end: int

    @property
    def texts(self) -> list[str]:
        return self.job.texts[self.start : self.end]


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

    def __init__(
        self,
        translator: TranslateFn,
        *,
        max_batch: int = 64,
        max_wait: float = 0.005,
        round_work: int = 8000,
    ):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if round_work < 1:
            raise ValueError("round_work must be at least 1")
        self.translator = translator
        self.max_batch = max_batch  # sentences per decoding round
        self.max_wait = max_wait  # seconds to wait for more requests after the first
        self.round_work = round_work  # work per round (one sentence over it runs alone)
        self.stats = BatchStats()
        self._jobs: list[Job] = []  # queued, some sentences not yet handed to a round
        self._calls: list[tuple[Callable[[], Any], Future, int]] = []  # fn, future, sentences
        self._pending = 0  # sentences submitted and not yet answered
        self._pending_work = 0
        self._work_done = 0.0  # decayed sums of work and seconds: the measured speed
        self._seconds = 0.0
        self._stopping = False
        self._seq = itertools.count()
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None

    @property
    def pending_sentences(self) -> int:
        return self._pending

    @property
    def pending_work(self) -> int:
        return self._pending_work

    def work_ahead_of(self, work: int) -> int:
        """The queued work a new request of ``work`` would wait for: the requests no larger
        (decoded first, smallest first); larger ones wait behind it. The round being decoded
        is not counted: it is bounded by ``round_work`` and partly done."""
        with self._lock:
            return sum(job.remaining_work for job in self._jobs if job.remaining_work <= work)

    def seconds_for(self, work: int) -> float | None:
        """Estimated decoding seconds of ``work`` at the measured speed (None: not measured)."""
        with self._lock:
            if self._seconds <= 0 or self._work_done <= 0:  # none, or only empty sentences
                return None
            return work * self._seconds / self._work_done

    def start(self) -> None:
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="softalign-batcher", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the queued jobs, then end the worker thread."""
        if self._thread is not None:
            with self._lock:
                self._stopping = True
                self._lock.notify_all()
            self._thread.join(timeout)
            self._thread = None

    def submit(
        self,
        texts: list[str],
        beam: int,
        nbest: int,
        attention: bool = True,
        works: list[int] | None = None,
    ) -> Future:
        """Queue sentences for translation; the future's result is a list of Translation.
        ``works`` estimates each sentence's work (default: 1 each)."""
        works = list(works) if works is not None else [1] * len(texts)
        if len(works) != len(texts):
            raise ValueError("works must give one number per sentence")
        with self._lock:
            job = Job(list(texts), beam, nbest, attention, works, next(self._seq))
            self._pending += len(job.texts)
            self._pending_work += sum(works)
            self.stats.requests += 1
            self._jobs.append(job)
            self._lock.notify_all()
        job.future.add_done_callback(lambda future: self._forget_if_cancelled(job))
        return job.future

    def call(self, fn: Callable[[], Any], sentences: int = 0) -> Future:
        """Run ``fn()`` on the worker thread before the next decoding round; the future holds
        its result or exception. ``sentences`` count as pending (for the 503) until it ends;
        a call cancelled before it starts never runs."""
        future: Future = Future()
        with self._lock:
            self._pending += sentences
            self._calls.append((fn, future, sentences))
            self._lock.notify_all()
        return future

    def _forget_if_cancelled(self, job: Job) -> None:
        """A caller that gave up (timeout) takes its queued sentences out of the counts."""
        if not job.future.cancelled():
            return
        with self._lock:
            if job in self._jobs:
                self._jobs.remove(job)
                self._answered(len(job.texts) - job.next, job.remaining_work)

    # ------------------------------------------------------------------ worker thread

    def _run(self) -> None:
        while True:
            try:
                self._run_calls()
                round_, stopping = self._collect()
                if round_:
                    self._decode(round_)
                elif stopping and not self._calls:
                    return
            except Exception:  # a bug here must not leave every later request to time out
                log.exception("the batching worker failed; it goes on")

    def _run_calls(self) -> None:
        with self._lock:
            calls, self._calls = self._calls, []
        for fn, future, sentences in calls:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except Exception as exc:  # handed to the caller; the worker stays alive
                    future.set_exception(exc)
            with self._lock:
                self._pending -= sentences

    def _collect(self) -> tuple[list[Slice], bool]:
        """Block for a first job, give others ``max_wait`` to join, then fill one round
        (none when a :meth:`call` is waiting and no job is)."""
        with self._lock:
            while not self._jobs and not self._calls and not self._stopping:
                self._lock.wait()
            if not self._jobs:
                return [], self._stopping
            deadline = time.monotonic() + self.max_wait
            while not self._stopping and self._queued_sentences() < self.max_batch:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
            return self._fill_round(), self._stopping

    def _queued_sentences(self) -> int:
        return sum(len(job.texts) - job.next for job in self._jobs)

    def _fill_round(self) -> list[Slice]:
        """Smallest remaining request first, up to ``max_batch`` sentences and ``round_work``
        work; the first sentence always goes, however large. Called with the lock held."""
        sentences, work, round_ = 0, 0, []
        for job in sorted(self._jobs, key=lambda j: (j.remaining_work, j.seq)):
            if not job.running:
                if not job.future.set_running_or_notify_cancel():
                    continue  # cancelled: _forget_if_cancelled takes it out
                job.running = True
            start = job.next
            while (
                job.next < len(job.texts)
                and sentences < self.max_batch
                and (sentences == 0 or work + job.works[job.next] <= self.round_work)
            ):
                work += job.works[job.next]
                sentences += 1
                job.next += 1
            if job.next > start:
                round_.append(Slice(job, start, job.next))
            if job.next == len(job.texts):
                self._jobs.remove(job)
            if sentences >= self.max_batch or work >= self.round_work:
                break
        return round_

    def _decode(self, round_: list[Slice]) -> None:
        """Translate each ``(beam, nbest, attention)`` group in one call and hand each job
        its sentences."""
        groups: dict[tuple[int, int, bool], list[Slice]] = {}
        for part in round_:
            key = (part.job.beam, part.job.nbest, part.job.attention)
            groups.setdefault(key, []).append(part)
        for (beam, nbest, attention), group in groups.items():
            texts = [t for part in group for t in part.texts]
            work = sum(sum(p.job.works[p.start : p.end]) for p in group)
            outcome = self._translate(texts, beam, nbest, attention, work)
            if isinstance(outcome, Exception) and len(group) > 1:
                # one bad request must not fail the ones batched with it: retry each alone
                for part in group:
                    part_work = sum(part.job.works[part.start : part.end])
                    self._answer(
                        [part], self._translate(part.texts, beam, nbest, attention, part_work)
                    )
            else:
                self._answer(group, outcome)

    def _translate(
        self, texts: list[str], beam: int, nbest: int, attention: bool, work: int
    ) -> list[Translation] | Exception:
        started = time.perf_counter()
        try:
            outcome: list[Translation] | Exception = self.translator.translate(
                texts, beam=beam, nbest=nbest, attention=attention
            )
        except Exception as exc:  # handed to the callers; the worker must stay alive
            log.exception("decoding a batch of %d sentences failed", len(texts))
            outcome = exc
        seconds = time.perf_counter() - started
        with self._lock:
            self._work_done = SPEED_DECAY * self._work_done + work
            self._seconds = SPEED_DECAY * self._seconds + seconds
            self.stats.batches += 1
            self.stats.sentences += len(texts)
            self.stats.largest_batch = max(self.stats.largest_batch, len(texts))
        return outcome

    def _answer(self, group: list[Slice], outcome: list[Translation] | Exception) -> None:
        offset = 0
        for part in group:
            job, count = part.job, part.end - part.start
            with self._lock:
                self._answered(count, sum(job.works[part.start : part.end]))
                if job.future.done():  # failed in an earlier round
                    offset += count
                    continue
                if isinstance(outcome, Exception):
                    if job in self._jobs:  # its later sentences are not decoded
                        self._jobs.remove(job)
                        self._answered(len(job.texts) - job.next, job.remaining_work)
                    job.future.set_exception(outcome)
                else:
                    job.results.extend(outcome[offset : offset + count])
                    if len(job.results) == len(job.texts):
                        job.future.set_result(job.results)
            offset += count

    def _answered(self, sentences: int, work: int) -> None:
        """Called with the lock held."""
        self._pending -= sentences
        self._pending_work -= work
