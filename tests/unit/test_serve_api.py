"""The HTTP API through FastAPI's ASGI test client: every endpoint and every limit."""

from __future__ import annotations

import re
import threading
import time
import warnings

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="needs the serve extra: pip install -e '.[serve]'")
pytest.importorskip("fastapi_offline", reason="needs the serve extra: pip install -e '.[serve]'")
pytest.importorskip("httpx", reason="needs the serve extra: pip install -e '.[serve]'")

from tests.helpers import tiny_config  # noqa: E402

from softalign.serve import ServeLimits, create_app  # noqa: E402
from softalign.serve.app import STATIC_DIR  # noqa: E402
from softalign.translator import Translator  # noqa: E402

with warnings.catch_warnings():  # newer Starlette prefers httpx2 over httpx; both work
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

LIMITS = ServeLimits(max_sentences=4, max_chars=40, max_beam=4, max_body_bytes=4000)


@pytest.fixture(scope="module")
def translator(tiny_run) -> Translator:
    return Translator.load(tiny_run)


@pytest.fixture(scope="module")
def client(translator):
    with TestClient(create_app(translator, limits=LIMITS)) as client:
        yield client


def post(client, body: dict, **options):
    return client.post("/translate", json=body, **options)


# ---------------------------------------------------------------------------- endpoints


def test_translate_matches_the_translator_one_sentence_each_in_order(client, translator):
    sentences = ["ba be bi", "", "ko ku ka ke"]
    response = post(client, {"text": sentences, "beam": 2})
    assert response.status_code == 200
    body = response.json()
    assert (body["beam"], body["nbest"]) == (2, 1)
    direct = translator.translate(sentences, beam=2)
    assert [t["source"] for t in body["translations"]] == sentences
    assert [t["text"] for t in body["translations"]] == [d.text for d in direct]
    assert body["translations"][0]["score"] == pytest.approx(direct[0].score)
    assert body["translations"][1]["nbest"] == []  # an empty sentence: empty translation


def test_tokens_and_attention_only_when_asked(client):
    sentence = "ba be bi bo bu da de"
    plain = post(client, {"text": [sentence]}).json()["translations"][0]
    assert "source_tokens" not in plain and "attention" not in plain["nbest"][0]

    shown = post(client, {"text": [sentence], "attention": True}).json()["translations"][0]
    best = shown["nbest"][0]
    assert best["target_tokens"], "the tiny model gave an empty translation"
    weights = np.array(best["attention"])
    assert weights.shape == (len(best["target_tokens"]), len(shown["source_tokens"]))
    assert np.allclose(weights.sum(axis=1), 1.0, atol=1e-3)
    assert shown["source_tokens"][0].startswith("▁")


def test_nbest_lists_hypotheses_best_first_with_scores(client):
    body = post(client, {"text": ["ba be bi"], "beam": 4, "nbest": 3}).json()
    [sentence] = body["translations"]
    scores = [c["score"] for c in sentence["nbest"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    assert sentence["text"] == sentence["nbest"][0]["text"]


def test_default_beam_comes_from_the_run_config(client):
    assert post(client, {"text": ["ba be"]}).json()["beam"] == 3  # tiny config: decoding.beam


def test_health_counts_requests_and_batches(client):
    before = client.get("/health").json()["batching"]["requests"]
    post(client, {"text": ["ba", "be"]})
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["pending_sentences"] == 0
    assert health["batching"]["requests"] == before + 1
    assert health["batching"]["batches"] >= 1


def test_info_describes_model_languages_vocabularies_and_limits(client, translator):
    info = client.get("/info").json()
    assert info["model"].startswith("run/")
    assert (info["source_language"], info["target_language"]) == ("src", "tgt")
    assert info["attention"] == "additive" and info["rnn_type"] == "gru"
    assert info["source_vocab_size"] == len(translator.src_vocab)
    assert info["target_vocab_size"] == len(translator.tgt_vocab)
    assert info["limits"]["max_sentences"] == 4 and info["limits"]["max_beam"] == 4
    assert info["default_beam"] == 3


def test_openapi_docs_describe_the_endpoints(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/translate", "/force", "/heatmap", "/health", "/info"} <= set(paths)


def test_explorer_page_and_its_assets_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="heatmap"' in page.text and 'name="viewport"' in page.text
    for asset in ("explorer.js", "explorer.css"):
        assert client.get(f"/static/{asset}").status_code == 200


def test_explorer_page_loads_nothing_from_other_hosts():
    for path in STATIC_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text and "//cdn" not in text


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_their_scripts_and_styles_from_this_server(client, page):
    """/docs must work offline: every URL the page loads is a path on this server, and
    each one is served."""
    html = client.get(page).text
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", html)
    urls += re.findall(r"""['"](/[^'"]+\.(?:js|css|png))['"]""", html)
    assert urls, html
    assert not re.search(r"https?://|//cdn", html), html
    for url in urls:
        assert url.startswith("/"), url
        assert client.get(url).status_code == 200, url


def test_unknown_paths_get_json_errors(client):
    response = client.get("/nowhere")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert client.get("/translate").status_code == 405


def test_concurrent_requests_are_decoded_together(translator):
    app = create_app(translator, limits=LIMITS, max_batch=16, max_wait_ms=300)
    with TestClient(app) as client:
        start = threading.Barrier(6)
        codes = []

        def one(k: int) -> None:
            start.wait()
            codes.append(post(client, {"text": [f"ba be {k}"], "beam": 2}).status_code)

        threads = [threading.Thread(target=one, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = client.get("/health").json()["batching"]
    assert codes == [200] * 6
    assert stats["requests"] == 6 and stats["batches"] < 6


def test_a_model_without_attention_returns_no_matrices(tmp_path):
    from softalign.train.loop import train

    run = tmp_path / "run"
    train(tiny_config(**{"model.attention": "none", "training.max_steps": 5}), run, progress=False)
    with TestClient(create_app(Translator.load(run))) as client:
        assert client.get("/info").json()["attention"] == "none"
        body = post(client, {"text": ["ba be"], "attention": True}).json()
        words = {"text": ["ba be"], "attention": True, "granularity": "word"}
        worded = post(client, words).json()["translations"][0]
        forced = client.post("/force", json={"text": ["ba be"], "reference": ["eb ab"]})
    [sentence] = body["translations"]
    assert "source_tokens" in sentence and "attention" not in sentence["nbest"][0]
    assert worded["source_tokens"] == ["ba", "be"] and "attention" not in worded["nbest"][0]
    assert forced.status_code == 422 and forced.json()["error"]["code"] == "no_attention"


# ---------------------------------------------------------------------------- limits

BAD_REQUESTS = [
    pytest.param(b'{"text": ["ba be"', 400, "malformed_json", id="malformed-json"),
    pytest.param(b"", 422, "invalid_request", id="no-body"),
    pytest.param(b'["ba be"]', 422, "invalid_request", id="not-an-object"),
    pytest.param(b'{"text": "ba be"}', 422, "invalid_request", id="text-not-a-list"),
    pytest.param(b'{"text": ["ba", 3]}', 422, "invalid_request", id="sentence-not-a-string"),
    pytest.param(b'{"text": ["ba"], "beam": "2"}', 422, "invalid_request", id="beam-a-string"),
    pytest.param(b'{"text": ["ba"], "beam": 2.5}', 422, "invalid_request", id="beam-a-float"),
    pytest.param(b'{"text": ["ba"], "attention": "yes"}', 422, "invalid_request", id="flag"),
    pytest.param(b'{"txt": ["ba"]}', 422, "invalid_request", id="misspelt-key"),
    pytest.param(b'{"text": []}', 422, "invalid_request", id="empty-list"),
    pytest.param(b'{"text": ["ba \\ud800 ke"]}', 422, "invalid_request", id="lone-surrogate"),
    pytest.param(b'{"text": ["a", "b", "c", "d", "e"]}', 413, "too_many_sentences", id="many"),
    pytest.param(b'{"text": ["ba", "%s"]}' % (b"x" * 41), 413, "sentence_too_long", id="long"),
    pytest.param(b'{"text": ["ba"], "beam": 0}', 422, "beam_out_of_range", id="beam-zero"),
    pytest.param(b'{"text": ["ba"], "beam": 5}', 422, "beam_out_of_range", id="beam-over-max"),
    pytest.param(b'{"text": ["ba"], "beam": 2, "nbest": 3}', 422, "nbest_out_of_range", id="nb"),
    pytest.param(b'{"text": ["ba"], "nbest": 0}', 422, "nbest_out_of_range", id="nbest-zero"),
]


@pytest.mark.parametrize(("body", "status", "code"), BAD_REQUESTS)
def test_bad_requests_get_a_4xx_json_error_and_the_server_stays_up(client, body, status, code):
    response = client.post("/translate", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"] and "\n" not in error["message"]
    assert post(client, {"text": ["ba be"]}).status_code == 200


def test_error_messages_name_the_field_and_the_limit(client):
    too_long = post(client, {"text": ["ba", "x" * 41]}).json()["error"]["message"]
    assert too_long == "text[1]: at most 40 characters per sentence (got 41)"
    wrong = post(client, {"text": ["ba"], "beam": "2"}).json()["error"]["message"]
    assert wrong.startswith("beam: ")


def test_a_body_over_the_byte_limit_is_refused(client):
    big = {"text": ["ba"], "padding": "x" * 5000}
    response = post(client, big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


def test_a_chunked_body_over_the_byte_limit_is_refused(client):
    def chunks():
        yield b'{"text": ["'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"]}'

    response = client.post(
        "/translate", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"


def test_too_many_queued_sentences_get_503(translator):
    limits = ServeLimits(max_sentences=8, max_pending=4)
    with TestClient(create_app(translator, limits=limits)) as client:
        response = post(client, {"text": ["ba"] * 5})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "overloaded"
        assert response.headers["Retry-After"] == "1"
        assert post(client, {"text": ["ba"] * 4}).status_code == 200


def test_a_request_waiting_past_the_timeout_gets_504_and_the_server_goes_on(
    translator, monkeypatch
):
    started, release = threading.Event(), threading.Event()
    translate = translator.translate

    def slow(texts, beam, nbest, attention=True):
        started.set()
        release.wait(10)
        return translate(texts, beam=beam, nbest=nbest, attention=attention)

    limits = ServeLimits(timeout_s=1)
    with TestClient(create_app(translator, limits=limits)) as client:
        monkeypatch.setattr(translator, "translate", slow)
        response = post(client, {"text": ["ba be"]})
        assert started.is_set()
        assert response.status_code == 504
        assert response.json()["error"]["code"] == "timeout"
        assert "1 s" in response.json()["error"]["message"]
        monkeypatch.undo()
        release.set()  # the timed-out batch finishes unseen; the next request is answered
        assert post(client, {"text": ["ba be"]}).status_code == 200
        assert client.get("/health").json()["pending_sentences"] == 0


def test_a_request_timing_out_in_the_queue_is_never_decoded(translator, monkeypatch):
    release, decoded = threading.Event(), []
    translate = translator.translate

    def slow(texts, beam, nbest, attention=True):
        decoded.extend(texts)
        release.wait(10)
        return translate(texts, beam=beam, nbest=nbest, attention=attention)

    app = create_app(translator, limits=ServeLimits(timeout_s=1), max_batch=1, max_wait_ms=0)
    with TestClient(app) as client:
        monkeypatch.setattr(translator, "translate", slow)
        codes = {}

        def one(text: str) -> None:
            codes[text] = post(client, {"text": [text]}).status_code

        first = threading.Thread(target=one, args=("ba be",))
        first.start()
        while not decoded:  # the worker is busy with the first request
            threading.Event().wait(0.01)
        one("bo bu")  # queued behind it, and gives up after 1 s
        release.set()
        first.join()
        for _ in range(500):  # the worker finishes the first batch, then drops the second
            if client.get("/health").json()["pending_sentences"] == 0:
                break
            threading.Event().wait(0.01)
        monkeypatch.undo()
        assert client.get("/health").json()["pending_sentences"] == 0
    assert codes == {"ba be": 504, "bo bu": 504}
    assert decoded == ["ba be"]


def test_a_failure_in_the_model_is_a_json_500_and_the_server_goes_on(translator, monkeypatch):
    def broken(texts, beam, nbest, attention=True):
        raise RuntimeError("model exploded")

    with TestClient(create_app(translator), raise_server_exceptions=False) as client:
        monkeypatch.setattr(translator, "translate", broken)
        response = post(client, {"text": ["ba be"]})
        assert response.status_code == 500
        assert response.json()["error"] == {
            "code": "internal_error",
            "message": "the server failed: RuntimeError",
        }
        monkeypatch.undo()
        assert post(client, {"text": ["ba be"]}).status_code == 200


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="max_chars"):
        ServeLimits(max_chars=0)


# ---------------------------------------------------------------------------- command line


def test_serve_command_reports_a_missing_run_in_one_line(tmp_path, capsys):
    from softalign.cli import main

    assert main(["serve", str(tmp_path / "missing"), "--port", "1"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("softalign: error:") and error.count("\n") == 1


@pytest.mark.parametrize(
    "option",
    [
        "--max-chars",
        "--max-sentences",
        "--max-batch",
        "--timeout",
        "--max-work",
        "--max-attention-cells",
        "--max-queue-s",
        "--round-work",
        "--max-heatmap-tokens",
    ],
)
def test_serve_command_refuses_limits_below_one(tiny_run, capsys, option):
    from softalign.cli import main

    assert main(["serve", str(tiny_run), option, "0", "--port", "1"]) == 2
    assert option.lstrip("-").replace("-", "_") in capsys.readouterr().err.replace("-", "_")


# ---------------------------------------------------------------- bounded work per request


@pytest.fixture(scope="module")
def default_client(translator):
    with TestClient(create_app(translator)) as client:
        yield client


def long_sentence(chars: int = 1000) -> str:
    return ("ba de fi go " * chars)[:chars]


def test_the_64kb_worst_case_request_is_refused_before_decoding(default_client):
    """64 x 1000 characters, beam 10, nbest 10, attention: once an 11 MB answer after
    seconds of decoding; now a 413 naming the limit, and nothing is decoded."""
    before = default_client.get("/health").json()["batching"]["sentences"]
    body = {"text": [long_sentence()] * 64, "beam": 10, "nbest": 10, "attention": True}
    response = post(default_client, body)
    assert response.status_code == 413, response.text[:200]
    assert response.json()["error"]["code"] == "too_much_work"
    assert "max_work=64000" in response.json()["error"]["message"]
    assert default_client.get("/health").json()["batching"]["sentences"] == before


def test_large_attention_answers_are_refused_naming_nbest(default_client):
    body = {"text": [long_sentence()] * 3, "beam": 10, "nbest": 10, "attention": True}
    response = post(default_client, body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_much_attention"
    assert "nbest" in response.json()["error"]["message"]
    body["attention"] = False  # the same work without matrices is allowed
    assert post(default_client, body).status_code == 200


def test_the_largest_allowed_answer_stays_a_few_megabytes(default_client):
    body = {"text": [long_sentence()], "beam": 10, "nbest": 10, "attention": True}
    response = post(default_client, body)
    assert response.status_code == 200
    assert len(response.content) < 4_000_000


def test_request_cost_bounds_follow_the_documented_formula():
    from softalign.serve.limits import request_cost

    cost, works = request_cost(["abc", "", " " * 5, "x" * 500], 4, 2, 200, 2.0)
    # "abc": n = 3 + 1 = 4 source tokens, m = min(200, 8 + 5) = 13 steps
    # "x" * 500: n = 201, m = 200; blank sentences cost nothing
    assert works == [4 * 13, 0, 0, 4 * 200]
    assert cost.work == sum(works)
    assert cost.attention_cells == 2 * (13 * 4 + 200 * 201)


class QueuedBatcher:
    """What admission looks at: queued sentences and work, and the measured speed."""

    def __init__(self, sentences: int, work: int, seconds_per_work: float | None) -> None:
        self.pending_sentences, self.pending_work = sentences, work
        self.rate = seconds_per_work

    def work_ahead_of(self, work: int) -> int:
        return self.pending_work

    def seconds_for(self, work: int) -> float | None:
        return None if self.rate is None else work * self.rate


def test_work_that_would_wait_past_max_queue_s_gets_a_fast_503():
    from softalign.serve.app import admit
    from softalign.serve.limits import ApiError

    limits = ServeLimits(max_queue_s=5)
    admit(QueuedBatcher(10, 4000, 0.001), 1, 900, limits)  # 4.9 s: admitted
    with pytest.raises(ApiError) as refused:
        admit(QueuedBatcher(10, 4000, 0.001), 1, 1100, limits)  # 5.1 s
    assert refused.value.status == 503 and refused.value.code == "overloaded"
    assert refused.value.headers == {"Retry-After": "4"}
    admit(QueuedBatcher(0, 0, 0.001), 1, 60_000, limits)  # an idle server takes any request
    admit(QueuedBatcher(10, 10**6, None), 1, 100, limits)  # speed not measured yet


def test_an_overloaded_server_answers_503_at_once_and_recovers(translator, monkeypatch):
    """The worker is held busy with one large request, so the queued work would take past
    max_queue_s at the measured speed: the next request gets 503 without waiting; once the
    worker is free, requests are answered."""
    release = threading.Event()
    translate = translator.translate

    def held(texts, beam, nbest, attention=True):
        release.wait(20)
        return translate(texts, beam=beam, nbest=nbest, attention=attention)

    limits = ServeLimits(max_queue_s=1, timeout_s=30)
    with TestClient(create_app(translator, limits=limits, max_wait_ms=0)) as client:
        assert post(client, {"text": ["ba de"]}).status_code == 200  # measures the speed
        monkeypatch.setattr(translator, "translate", held)
        # the speed as a slow machine measures it (a warm process can measure so fast that
        # 16,000 units of queued work look shorter than max_queue_s): 1,000 units a second
        batcher = client.app.state.batcher
        monkeypatch.setattr(batcher, "seconds_for", lambda work: work / 1000)
        body = {"text": [long_sentence(300)] * 8, "beam": 10}  # work 16,000
        answers: list[int] = []
        sender = threading.Thread(target=lambda: answers.append(post(client, body).status_code))
        sender.start()
        deadline = time.monotonic() + 20
        while client.get("/health").json()["pending_sentences"] < 8:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        started = time.monotonic()
        response = post(client, body)
        assert response.status_code == 503 and time.monotonic() - started < 2
        assert response.json()["error"]["code"] == "overloaded"
        monkeypatch.undo()
        release.set()
        sender.join(30)
        assert answers == [200]
        assert post(client, body).status_code == 200
