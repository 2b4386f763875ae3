"""Dynamic batching, driven by a fake translator whose first call can be held open."""

from __future__ import annotations

import threading

import pytest

from softalign.serve.batcher import DynamicBatcher
from softalign.translator import Candidate, Translation

TIMEOUT = 10.0


class FakeTranslator:
    """Upper-cases sentences; records each call; can block its first call until released."""

    def __init__(self, hold_first: bool = False) -> None:
        self.calls: list[tuple[list[str], int, int]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()

    def translate(
        self, texts: list[str], beam: int, nbest: int, attention: bool = True
    ) -> list[Translation]:
        self.calls.append((list(texts), beam, nbest))
        self.entered.set()
        assert self.release.wait(TIMEOUT)
        if "boom" in texts:
            raise RuntimeError("model exploded")
        return [Translation(t, [], [Candidate(t.upper(), -1.0, [], None)]) for t in texts]


@pytest.fixture
def held():
    """A batcher whose model is busy with a first request ("first") until released."""
    fake = FakeTranslator(hold_first=True)
    batcher = DynamicBatcher(fake, max_batch=4, max_wait=0.0)
    batcher.start()
    first = batcher.submit(["first"], beam=2, nbest=1)
    assert fake.entered.wait(TIMEOUT)
    yield fake, batcher, first
    fake.release.set()
    batcher.stop()


def texts_of(future) -> list[str]:
    return [t.text for t in future.result(TIMEOUT)]


def test_requests_queued_while_the_model_is_busy_share_one_call(held):
    fake, batcher, first = held
    futures = [batcher.submit([f"s{k}"], beam=2, nbest=1) for k in range(3)]
    fake.release.set()
    assert texts_of(first) == ["FIRST"]
    assert [texts_of(f) for f in futures] == [["S0"], ["S1"], ["S2"]]
    assert [call[0] for call in fake.calls] == [["first"], ["s0", "s1", "s2"]]
    assert batcher.stats.as_dict()["batches"] == 2
    assert batcher.stats.as_dict()["largest_batch_sentences"] == 3


def test_each_caller_gets_its_own_sentences_back_in_order(held):
    fake, batcher, _ = held
    a = batcher.submit(["a1", "a2"], beam=2, nbest=1)
    b = batcher.submit(["b1"], beam=2, nbest=1)
    fake.release.set()
    assert texts_of(a) == ["A1", "A2"]
    assert texts_of(b) == ["B1"]


def test_batches_never_exceed_max_batch(held):
    fake, batcher, _ = held
    futures = [batcher.submit([f"x{k}", f"y{k}"], beam=2, nbest=1) for k in range(5)]
    fake.release.set()
    for f in futures:
        f.result(TIMEOUT)
    sizes = [len(call[0]) for call in fake.calls]
    assert sizes == [1, 4, 4, 2]
    assert batcher.pending_sentences == 0


def test_a_request_larger_than_max_batch_is_split_over_rounds_in_order(held):
    fake, batcher, _ = held
    big = batcher.submit([f"w{k}" for k in range(6)], beam=2, nbest=1)
    fake.release.set()
    assert texts_of(big) == [f"W{k}" for k in range(6)]
    assert [len(call[0]) for call in fake.calls] == [1, 4, 2]
    assert batcher.pending_sentences == 0 and batcher.pending_work == 0


def test_a_small_request_goes_ahead_of_the_rest_of_a_large_one():
    """Smallest remaining work first, and a round holds at most ``round_work``: the small
    request queued after the large one is decoded in the very next round."""
    fake = FakeTranslator(hold_first=True)
    batcher = DynamicBatcher(fake, max_batch=4, max_wait=0.0, round_work=20)
    batcher.start()
    first = batcher.submit(["first"], beam=2, nbest=1)
    assert fake.entered.wait(TIMEOUT)
    big = batcher.submit([f"w{k}" for k in range(4)], beam=2, nbest=1, works=[10] * 4)
    small = batcher.submit(["s"], beam=2, nbest=1, works=[5])
    assert batcher.pending_work == 1 + 40 + 5
    fake.release.set()
    assert texts_of(small) == ["S"] and len(texts_of(big)) == 4 and texts_of(first)
    assert [call[0] for call in fake.calls] == [["first"], ["s", "w0"], ["w1", "w2"], ["w3"]]
    batcher.stop()


def test_a_request_left_out_of_a_full_round_is_decoded_in_a_later_one(held):
    """Regression: a request looked at but not taken (the round was full) must still be
    decoded later, and the worker must live on."""
    fake, batcher, _ = held
    batcher.round_work = 10
    a = batcher.submit(["a1"], beam=2, nbest=1, works=[5])
    b = batcher.submit(["b1", "b2"], beam=2, nbest=1, works=[6, 6])  # b1 does not fit after a1
    fake.release.set()
    assert texts_of(a) == ["A1"] and texts_of(b) == ["B1", "B2"]
    assert [call[0] for call in fake.calls[1:]] == [["a1"], ["b1"], ["b2"]]


def test_a_sentence_over_the_round_work_still_runs_alone(held):
    fake, batcher, _ = held
    batcher.round_work = 5
    huge = batcher.submit(["h1", "h2"], beam=2, nbest=1, works=[50, 50])
    fake.release.set()
    assert texts_of(huge) == ["H1", "H2"]
    assert [call[0] for call in fake.calls[1:]] == [["h1"], ["h2"]]


def test_a_cancelled_request_leaves_the_queue_counts_at_once(held):
    fake, batcher, _ = held
    gone = batcher.submit(["a", "b"], beam=2, nbest=1, works=[30, 40])
    assert batcher.pending_work == 71 and batcher.pending_sentences == 3
    assert gone.cancel()
    assert batcher.pending_work == 1 and batcher.pending_sentences == 1


def test_a_new_request_waits_only_for_smaller_queued_ones(held):
    _, batcher, _ = held  # "first" is being decoded: not queued any more
    batcher.submit(["big"], beam=2, nbest=1, works=[500])
    batcher.submit(["small"], beam=2, nbest=1, works=[20])
    assert batcher.work_ahead_of(30) == 20
    assert batcher.work_ahead_of(1000) == 20 + 500


def test_the_speed_is_measured_from_decoding_rounds(held):
    fake, batcher, first = held
    assert batcher.seconds_for(1000) is None  # nothing decoded yet
    fake.release.set()
    texts_of(first)
    texts_of(batcher.submit(["x"], beam=2, nbest=1, works=[100]))
    estimate = batcher.seconds_for(1000)
    assert estimate is not None and estimate > 0


def test_rounds_of_empty_sentences_leave_the_speed_unmeasured():
    """Regression: work 0 over some seconds must not divide by zero in every later request."""
    batcher = DynamicBatcher(FakeTranslator(), max_batch=4, max_wait=0.0)
    batcher.start()
    texts_of(batcher.submit(["", " "], beam=2, nbest=1, works=[0, 0]))
    assert batcher.seconds_for(1000) is None
    batcher.stop()


def test_works_must_give_one_number_per_sentence(held):
    _, batcher, _ = held
    with pytest.raises(ValueError, match="one number per sentence"):
        batcher.submit(["a", "b"], beam=2, nbest=1, works=[1])


def test_max_batch_of_one_decodes_each_request_alone():
    fake = FakeTranslator(hold_first=True)
    batcher = DynamicBatcher(fake, max_batch=1, max_wait=0.0)
    batcher.start()
    futures = [batcher.submit([f"s{k}"], beam=1, nbest=1) for k in range(4)]
    assert fake.entered.wait(TIMEOUT)
    fake.release.set()
    assert [texts_of(f) for f in futures] == [["S0"], ["S1"], ["S2"], ["S3"]]
    assert [call[0] for call in fake.calls] == [["s0"], ["s1"], ["s2"], ["s3"]]
    batcher.stop()


def test_different_decoding_options_are_decoded_in_separate_calls(held):
    fake, batcher, _ = held
    greedy = batcher.submit(["g"], beam=1, nbest=1)
    wide = batcher.submit(["w"], beam=5, nbest=3)
    greedy2 = batcher.submit(["g2"], beam=1, nbest=1)
    fake.release.set()
    assert texts_of(greedy) == ["G"] and texts_of(wide) == ["W"] and texts_of(greedy2) == ["G2"]
    assert fake.calls[1:] == [(["g", "g2"], 1, 1), (["w"], 5, 3)]


def test_requests_arriving_within_the_wait_window_are_batched():
    fake = FakeTranslator()
    batcher = DynamicBatcher(fake, max_batch=8, max_wait=0.5)
    batcher.start()
    a = batcher.submit(["a"], beam=1, nbest=1)
    b = batcher.submit(["b"], beam=1, nbest=1)
    assert texts_of(a) == ["A"] and texts_of(b) == ["B"]
    assert [call[0] for call in fake.calls] == [["a", "b"]]
    batcher.stop()


def test_a_failing_batch_reports_the_error_and_the_worker_lives_on(held):
    fake, batcher, _ = held
    bad = batcher.submit(["boom"], beam=2, nbest=1)
    fake.release.set()
    with pytest.raises(RuntimeError, match="model exploded"):
        bad.result(TIMEOUT)
    assert texts_of(batcher.submit(["after"], beam=2, nbest=1)) == ["AFTER"]
    assert batcher.pending_sentences == 0


def test_a_failing_request_does_not_fail_the_requests_batched_with_it(held):
    fake, batcher, _ = held
    good = batcher.submit(["good"], beam=2, nbest=1)
    bad = batcher.submit(["boom"], beam=2, nbest=1)
    also_good = batcher.submit(["fine"], beam=2, nbest=1)
    fake.release.set()
    assert texts_of(good) == ["GOOD"] and texts_of(also_good) == ["FINE"]
    with pytest.raises(RuntimeError, match="model exploded"):
        bad.result(TIMEOUT)
    assert fake.calls[1][0] == ["good", "boom", "fine"]  # batched, failed, then one by one
    assert [call[0] for call in fake.calls[2:]] == [["good"], ["boom"], ["fine"]]
    assert batcher.pending_sentences == 0


def test_a_cancelled_request_is_not_decoded(held):
    fake, batcher, _ = held
    gone = batcher.submit(["gone"], beam=2, nbest=1)
    kept = batcher.submit(["kept"], beam=2, nbest=1)
    assert gone.cancel()
    fake.release.set()
    assert texts_of(kept) == ["KEPT"]
    assert all("gone" not in call[0] for call in fake.calls)
    assert batcher.pending_sentences == 0


def test_stop_answers_the_requests_already_queued(held):
    fake, batcher, _ = held
    queued = batcher.submit(["late"], beam=2, nbest=1)
    fake.release.set()
    batcher.stop()
    assert texts_of(queued) == ["LATE"]


def test_max_batch_must_be_positive():
    with pytest.raises(ValueError, match="max_batch"):
        DynamicBatcher(FakeTranslator(), max_batch=0)


# ---------------------------------------------------------------------------- calls


def test_a_call_runs_on_the_worker_thread_between_rounds(held):
    fake, batcher, first = held
    threads: list[str] = []
    call = batcher.call(lambda: threads.append(threading.current_thread().name) or "done", 2)
    assert batcher.pending_sentences == 1 + 2  # "first" and the call's sentences
    assert not call.done()  # the model is busy: the call waits for the round to end
    fake.release.set()
    assert call.result(TIMEOUT) == "done"
    assert threads == ["softalign-batcher"]
    assert texts_of(first) == ["FIRST"]
    assert batcher.pending_sentences == 0


def test_a_failing_call_hands_its_exception_to_the_caller_and_the_worker_goes_on(held):
    fake, batcher, first = held
    fake.release.set()

    def fail() -> None:
        raise ValueError("bad reference")

    with pytest.raises(ValueError, match="bad reference"):
        batcher.call(fail, 1).result(TIMEOUT)
    assert texts_of(batcher.submit(["after"], beam=2, nbest=1)) == ["AFTER"]
    assert batcher.pending_sentences == 0


def test_a_call_cancelled_before_it_starts_never_runs(held):
    fake, batcher, first = held
    ran: list[int] = []
    call = batcher.call(lambda: ran.append(1), 1)
    assert call.cancel()
    fake.release.set()
    assert batcher.call(lambda: "next").result(TIMEOUT) == "next"
    assert ran == [] and batcher.pending_sentences == 0
