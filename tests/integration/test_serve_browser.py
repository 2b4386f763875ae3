"""The attention explorer in headless Chromium against a live `softalign serve` on loopback.

Needs the serve and dev extras and Debian's chromium (``apt-get install -y chromium``); it is
skipped with the reason when one is missing. Screenshots go to $SOFTALIGN_SCREENSHOTS, else
to pytest's temporary folder.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="needs the serve extra: pip install -e '.[serve]'")
pytest.importorskip("fastapi_offline", reason="needs the serve extra: pip install -e '.[serve]'")
pytest.importorskip("uvicorn", reason="needs the serve extra: pip install -e '.[serve]'")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="needs playwright: pip install -e '.[dev]'"
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SENTENCE = "ba be bi bo bu da"
WORDY = "babebi kokuka de"  # made-up words of several pieces each
REFERENCE = "ed akukok ibebab"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_run, tmp_path_factory):
    """`softalign serve` in a subprocess on 127.0.0.1; yields its base URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "server.log"
    command = [sys.executable, "-m", "softalign", "serve", str(tiny_run)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--threads", "1"]
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"server did not answer within 90 s:\n{log.read_text()}")
                time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not found (apt-get install -y chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("SOFTALIGN_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def api(url: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{url}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def api_translation(url: str, beam: int, nbest: int, **options) -> dict:
    body = {"text": [SENTENCE], "beam": beam, "nbest": nbest, "attention": True, **options}
    return api(url, "/translate", body)["translations"][0]


def attended(weights: list[float]) -> set[int]:
    """What the page marks: weights at least half the largest on the line."""
    largest = max(weights)
    return {k for k, w in enumerate(weights) if w >= 0.5 * largest}


def indices(page, selector: str, key: str) -> set[int]:
    return {int(v) for v in page.eval_on_selector_all(selector, f"els => els.map(e => e.{key})")}


def open_page(page, url: str) -> None:
    page.goto(url)
    page.wait_for_function("document.querySelector('#beam').options.length > 0")


def translate_on_page(
    page, url: str, beam: int, nbest: int, text: str = SENTENCE, reference: str = ""
) -> None:
    open_page(page, url)
    page.fill("#source", text)
    page.fill("#reference", reference)
    page.select_option("#beam", str(beam))
    page.select_option("#nbest", str(nbest))
    page.click("#translate")
    page.wait_for_selector("#target-tokens .tok")


def test_hovering_a_word_highlights_what_it_attends_to(server, browser, shots):
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    translate_on_page(page, server, beam=3, nbest=2)
    expected = api_translation(server, beam=3, nbest=2)
    best = expected["nbest"][0]
    weights = best["attention"]
    assert weights, "the tiny model gave an empty translation: nothing to hover"

    assert "additive attention" in page.inner_text("#model-info")
    rows = page.locator("#nbest-list li")
    assert rows.count() == 2
    assert rows.nth(0).locator(".text").inner_text() == (best["text"] or "(empty)")
    assert rows.nth(0).locator(".score").inner_text() == f"{best['score']:.3f}"
    assert page.locator("#source-tokens .tok").count() == len(expected["source_tokens"])
    assert page.locator("#heatmap tbody td").count() == len(weights) * len(weights[0])

    # target word 0 -> the source words it attends to
    page.hover('#target-tokens .tok[data-tgt="0"]')
    marked = indices(page, "#source-tokens .tok.attended", "dataset.src")
    argmax = max(range(len(weights[0])), key=weights[0].__getitem__)
    assert argmax in marked and marked == attended(weights[0])
    assert indices(page, '#heatmap td.attended[data-i="0"]', "dataset.j") == marked
    assert page.locator("#heatmap td.line").count() == len(weights[0])
    page.screenshot(path=str(shots / "explorer.png"), full_page=True)

    # and the reverse: the last source word -> the target words attending to it
    last = len(expected["source_tokens"]) - 1
    page.hover(f'#source-tokens .tok[data-src="{last}"]')
    column = [row[last] for row in weights]
    assert indices(page, "#target-tokens .tok.attended", "dataset.tgt") == attended(column)

    # choosing the second hypothesis shows its own attention
    rows.nth(1).locator("button").click()
    second = expected["nbest"][1]
    assert page.locator("#target-tokens .tok").count() == len(second["target_tokens"])
    assert errors == []
    page.close()


def test_the_page_fits_a_phone_and_reacts_to_taps(server, browser, shots):
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    translate_on_page(page, server, beam=2, nbest=2)
    page.tap('#target-tokens .tok[data-tgt="0"]')
    assert page.locator("#source-tokens .tok.attended").count() >= 1
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px on a phone"
    page.screenshot(path=str(shots / "explorer-phone.png"), full_page=True)
    page.tap('#target-tokens .tok[data-tgt="0"]')  # tap again: let go
    assert page.locator("#source-tokens .tok.attended").count() == 0
    context.close()


def test_long_input_is_counted_against_the_limit_never_cut(server, browser):
    page = browser.new_page()
    open_page(page, server)
    page.wait_for_function("document.querySelector('#source-count').textContent !== ''")
    page.fill("#source", "ba be\nbi")
    assert page.inner_text("#source-count") == "longest line 5 / 1000 characters · 2 / 64 lines"
    page.fill("#source", "x" * 1001)
    assert page.input_value("#source") == "x" * 1001  # nothing cut
    counter = page.locator("#source-count")
    assert counter.inner_text().startswith("line 1: 1001 / 1000 characters")
    assert "over" in counter.get_attribute("class")
    page.click("#translate")  # the server says why, on the page
    page.wait_for_selector("#status.error")
    assert "at most 1000 characters" in page.inner_text("#status")
    page.close()


def test_each_line_is_translated_as_its_own_sentence(server, browser):
    lines = ["ba be bi", "ko ku ka ke"]
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    translate_on_page(page, server, beam=2, nbest=2, text="\n".join(lines) + "\n\n")
    expected = api(server, "/translate", {"text": lines, "beam": 2, "nbest": 2, "attention": True})
    rows = page.locator("#sentence-list li .text")
    assert rows.count() == 2
    for k, sentence in enumerate(expected["translations"]):
        assert rows.nth(k).inner_text() == f"{lines[k]} → {sentence['text'] or '(empty)'}"
    page.click("#sentence-list li:nth-child(2) button")
    second = expected["translations"][1]
    assert page.locator("#source-tokens .tok").count() == len(second["source_tokens"])
    texts = page.locator("#nbest-list li .text").all_inner_texts()
    assert texts == [c["text"] or "(empty)" for c in second["nbest"]]
    page.close()


def test_the_word_toggle_shows_the_attention_merged_to_words(server, browser, shots):
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    translate_on_page(page, server, beam=2, nbest=1, text=WORDY)
    body = {"text": [WORDY], "beam": 2, "nbest": 1, "attention": True}
    pieces = api(server, "/translate", body)["translations"][0]
    words = api(server, "/translate", {**body, "granularity": "word"})["translations"][0]
    assert page.locator("#source-tokens .tok").count() == len(pieces["source_tokens"]) > 3

    page.check('input[name="granularity"][value="word"]')
    page.wait_for_function("document.querySelectorAll('#source-tokens .tok').length === 3")
    assert page.locator("#source-tokens .tok").all_inner_texts() == WORDY.split()
    best = words["nbest"][0]
    assert page.locator("#target-tokens .tok").all_inner_texts() == best["target_tokens"]
    page.hover('#target-tokens .tok[data-tgt="0"]')
    marked = indices(page, "#source-tokens .tok.attended", "dataset.src")
    assert marked == attended(best["attention"][0])
    page.screenshot(path=str(shots / "explorer-words.png"), full_page=True)

    page.check('input[name="granularity"][value="subword"]')
    count = len(pieces["source_tokens"])
    page.wait_for_function(f"document.querySelectorAll('#source-tokens .tok').length === {count}")
    page.close()


def test_a_reference_is_force_decoded_and_its_attention_shown(server, browser, shots):
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    translate_on_page(page, server, beam=2, nbest=2, text=WORDY, reference=REFERENCE)
    [forced] = api(server, "/force", {"text": [WORDY], "reference": [REFERENCE]})["alignments"]
    page.wait_for_selector("#reference-list li")
    assert page.inner_text("#reference-list .text") == REFERENCE
    assert page.inner_text("#reference-list .score") == f"log p {forced['log_prob']:.3f}"

    page.click("#reference-list button")
    assert page.locator("#target-tokens .tok").count() == len(forced["target_tokens"])
    cells = len(forced["target_tokens"]) * len(forced["source_tokens"])
    assert page.locator("#heatmap tbody td").count() == cells
    page.hover('#target-tokens .tok[data-tgt="0"]')
    marked = indices(page, "#source-tokens .tok.attended", "dataset.src")
    assert marked == attended(forced["attention"][0])
    assert "reading the reference" in page.inner_text("#attention-hint")
    page.screenshot(path=str(shots / "explorer-reference.png"), full_page=True)

    page.fill("#reference", "one\ntwo")  # two references for one sentence
    page.click("#translate")
    page.wait_for_selector("#status.error")
    assert "2 lines for 1 source lines" in page.inner_text("#status")
    page.close()


def test_the_heatmap_has_a_legend_and_downloads_as_png_and_svg(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    translate_on_page(page, server, beam=2, nbest=1)
    assert page.is_visible("#legend")
    assert page.locator("#legend .tick").all_inner_texts() == ["0", "1"]
    gradient = page.eval_on_selector("#legend .scale", "e => getComputedStyle(e).backgroundImage")
    assert "linear-gradient" in gradient and "37, 99, 235" in gradient

    for fmt, magic in (("png", b"\x89PNG"), ("svg", b"<svg")):
        with page.expect_download() as caught:
            page.click(f"#download-{fmt}")
        download = caught.value
        assert download.suggested_filename == f"attention-sentence1-hypothesis1.{fmt}"
        path = tmp_path / download.suggested_filename
        download.save_as(path)
        assert magic in path.read_bytes()[:2000]
    assert not page.locator("#status.error").count()
    page.close()


def test_docs_page_renders_with_every_other_host_blocked(server, browser, shots):
    """/docs offline: requests to any host but this server are aborted, and Swagger UI still
    lists the endpoints."""
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    foreign: list[str] = []

    def only_this_server(route):
        if route.request.url.startswith(server):
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    page.goto(f"{server}/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = set(
        page.eval_on_selector_all(".opblock-summary-path", "els => els.map(e => e.dataset.path)")
    )
    page.screenshot(path=str(shots / "docs-offline.png"))
    assert {"/translate", "/health", "/info"} <= paths
    assert not foreign, foreign
