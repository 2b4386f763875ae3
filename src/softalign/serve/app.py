"""The HTTP server: a FastAPI app around one Translator and its dynamic batcher.

    app = create_app(Translator.load("runs/en-de"))      # ASGI app (tests use TestClient)
    serve("runs/en-de", host="127.0.0.1", port=8000)     # what `softalign serve` runs

Endpoints: ``POST /translate``, ``POST /force`` (forced decoding of a reference: its attention
and log-probability), ``POST /heatmap`` (a PNG or SVG image of an attention matrix, drawn by
matplotlib like ``softalign attention`` but in the page's colours), ``GET /health``,
``GET /info``, the attention explorer page at ``GET /`` (static files under ``/static``) and
the OpenAPI docs at ``/docs`` and ``/redoc``.
The docs pages load Swagger UI and ReDoc from the ``fastapi-offline`` package (served under
``/static-offline-docs``), never from a CDN: they work on a machine without internet.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator
from concurrent.futures import Future
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from matplotlib.colors import LinearSegmentedColormap

from softalign.analysis.forced import force_decode
from softalign.analysis.heatmap import attention_image
from softalign.serve.batcher import DynamicBatcher
from softalign.serve.limits import (
    ApiError,
    BodySizeLimit,
    ServeLimits,
    check_cost,
    check_force,
    check_heatmap,
    check_request,
    install_error_handlers,
    request_cost,
)
from softalign.serve.schemas import (
    ErrorResponse,
    ForceRequest,
    ForceResponse,
    HealthResponse,
    HeatmapRequest,
    InfoResponse,
    TranslateRequest,
    TranslateResponse,
    to_force_response,
    to_response,
)
from softalign.translator import Translator

log = logging.getLogger("softalign.serve")

STATIC_DIR = Path(__file__).parent / "static"
ERRORS = {status: {"model": ErrorResponse} for status in (400, 413, 422, 503, 504)}
# the explorer page's heatmap colours (explorer.css --accent over white), for its downloads
PAGE_COLOURS = LinearSegmentedColormap.from_list("softalign-page", ["#ffffff", "#2563eb"])
IMAGE_TYPES = {"png": "image/png", "svg": "image/svg+xml"}

router = APIRouter()


@router.post(
    "/translate",
    response_model=TranslateResponse,
    response_model_exclude_none=True,
    responses=ERRORS,
    summary="Translate sentences (batched with concurrent requests)",
)
async def translate(body: TranslateRequest, request: Request) -> TranslateResponse:
    state = request.app.state
    beam = state.default_beam if body.beam is None else body.beam
    limits: ServeLimits = state.limits
    check_request(body, beam, limits)
    decoding = state.translator.config.decoding
    cost, works = request_cost(
        body.text, beam, body.nbest, decoding.max_length, decoding.max_length_ratio
    )
    check_cost(cost, body.attention, limits)
    batcher: DynamicBatcher = state.batcher
    admit(batcher, len(body.text), cost.work, limits)
    waiting = batcher.submit(body.text, beam, body.nbest, attention=body.attention, works=works)
    results = await answer(waiting, limits)
    return to_response(
        results,
        beam=beam,
        nbest=body.nbest,
        attention=body.attention,
        granularity=body.granularity,
    )


async def answer(waiting: Future, limits: ServeLimits) -> Any:
    """The batcher's result, or 504 after ``timeout_s`` (the job is cancelled then: the batcher
    skips it if it has not started)."""
    try:
        return await asyncio.wait_for(asyncio.wrap_future(waiting), limits.timeout_s)
    except TimeoutError:
        message = f"no translation within {limits.timeout_s} s, retry later or send less"
        raise ApiError(504, "timeout", message) from None


@router.post(
    "/force",
    response_model=ForceResponse,
    responses=ERRORS,
    summary="Force-decode references: the model's attention and log-probability as it reads "
    "a given translation",
)
async def force(body: ForceRequest, request: Request) -> ForceResponse:
    state = request.app.state
    limits: ServeLimits = state.limits
    check_force(body, limits)
    translator: Translator = state.translator
    if translator.model.decoder.attention is None:
        message = "this model has no attention (model.attention: none): nothing to show"
        raise ApiError(422, "no_attention", message)
    batcher: DynamicBatcher = state.batcher
    admit(batcher, len(body.text), 0, limits)
    waiting = batcher.call(
        lambda: force_decode(translator, body.text, body.reference), sentences=len(body.text)
    )
    return to_force_response(body, await answer(waiting, limits))


@router.post(
    "/heatmap",
    response_class=Response,
    responses={
        200: {
            "content": {"image/png": {}, "image/svg+xml": {}},
            "description": "the heatmap, as a download (Content-Disposition: attachment)",
        },
        **ERRORS,
    },
    summary="Draw an attention matrix as a PNG or SVG image (the explorer's downloads)",
)
async def heatmap(body: HeatmapRequest, request: Request) -> Response:
    check_heatmap(body, request.app.state.limits)
    image = await asyncio.to_thread(
        attention_image,
        np.asarray(body.attention, dtype=np.float32),
        body.source_tokens,
        body.target_tokens,
        body.format,
        title=body.title,
        cmap=PAGE_COLOURS,
    )
    headers = {"Content-Disposition": f'attachment; filename="attention.{body.format}"'}
    return Response(image, media_type=IMAGE_TYPES[body.format], headers=headers)


def admit(batcher: DynamicBatcher, sentences: int, work: int, limits: ServeLimits) -> None:
    """503 unless the queue can take the request: at most ``max_pending`` sentences, and
    (when anything is queued ahead of it: smaller requests go first) work the model finishes
    within ``max_queue_s`` at its measured speed. A request with nothing queued ahead is
    always taken: it waits for the round being decoded at most."""
    if batcher.pending_sentences + sentences > limits.max_pending:
        message = "server busy: too many sentences queued, retry later"
        raise ApiError(503, "overloaded", message, {"Retry-After": "1"})
    ahead = batcher.work_ahead_of(work)
    seconds = batcher.seconds_for(ahead + work)
    if ahead and seconds is not None and seconds > limits.max_queue_s:
        wait = max(1, math.ceil(batcher.seconds_for(ahead) or 1))
        message = (
            f"server busy: the queued work would take about {seconds:.0f} s "
            f"(over max_queue_s={limits.max_queue_s}), retry later or send less"
        )
        raise ApiError(503, "overloaded", message, {"Retry-After": str(wait)})


@router.get("/health", response_model=HealthResponse, summary="Liveness and batching counters")
async def health(request: Request) -> HealthResponse:
    batcher: DynamicBatcher = request.app.state.batcher
    return HealthResponse(
        status="ok",
        pending_sentences=batcher.pending_sentences,
        pending_work=batcher.pending_work,
        batching=batcher.stats.as_dict(),
    )


@router.get("/info", response_model=InfoResponse, summary="The model and the server's limits")
async def info(request: Request) -> InfoResponse:
    state = request.app.state
    translator: Translator = state.translator
    config = translator.config
    batcher: DynamicBatcher = state.batcher
    return InfoResponse(
        model=state.model_name,
        source_language=config.data.src_lang,
        target_language=config.data.tgt_lang,
        attention=config.model.attention,
        rnn_type=config.model.rnn_type,
        source_vocab_size=len(translator.src_vocab),
        target_vocab_size=len(translator.tgt_vocab),
        default_beam=state.default_beam,
        limits=state.limits.as_dict(),
        batching={
            "max_batch": batcher.max_batch,
            "max_wait_ms": batcher.max_wait * 1000,
            "round_work": batcher.round_work,
        },
    )


@router.get("/", include_in_schema=False)
async def explorer() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


def create_app(
    translator: Translator,
    *,
    limits: ServeLimits | None = None,
    max_batch: int = 64,
    max_wait_ms: float = 5.0,
    round_work: int = 8000,
) -> FastAPI:
    """The ASGI app; the batcher's worker thread runs while the app's lifespan does."""
    limits = limits or ServeLimits()
    batcher = DynamicBatcher(
        translator, max_batch=max_batch, max_wait=max_wait_ms / 1000, round_work=round_work
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        yield
        batcher.stop()

    app = FastAPIOffline(
        title="softalign",
        summary="Neural machine translation with soft attention",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.translator = translator
    app.state.batcher = batcher
    app.state.limits = limits
    app.state.default_beam = min(translator.config.decoding.beam, limits.max_beam)
    checkpoint = Path(translator.checkpoint)
    app.state.model_name = f"{checkpoint.parent.parent.name}/{checkpoint.name}"
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(BodySizeLimit, max_bytes=limits.max_body_bytes)
    install_error_handlers(app)
    return app


def serve(
    run_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    device: str = "auto",
    backend: str = "auto",
    limits: ServeLimits | None = None,
    max_batch: int = 64,
    max_wait_ms: float = 5.0,
    round_work: int = 8000,
    threads: int | None = None,
    checkpoint: str | Path | None = None,
    decoding: dict[str, Any] | None = None,
) -> None:
    """Load a run and serve it with uvicorn until interrupted."""
    import torch
    import uvicorn

    if threads:
        torch.set_num_threads(threads)
    translator = Translator.load(
        run_dir, checkpoint, device=device, backend=backend, decoding=decoding
    )
    app = create_app(
        translator,
        limits=limits,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        round_work=round_work,
    )
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s: reachable from other machines, with no authentication", host)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
