"""Request limits and the JSON errors that enforce them; the server stays up on any input.

Every error is ``{"error": {"code": "...", "message": "..."}}``, a 4xx status (503 with
``Retry-After`` when the queue is full, 504 when a request waited too long):

=====  ========================  ==========================================================
400    ``malformed_json``        the body is not valid JSON
413    ``body_too_large``        the body is over ``max_body_bytes``
413    ``too_many_sentences``    more than ``max_sentences`` sentences in one request
413    ``sentence_too_long``     a sentence over ``max_chars`` characters
413    ``too_much_work``         the request's decoding work over ``max_work`` (see below)
413    ``too_much_attention``    with ``attention`` (and always on ``/force``): its attention
                                 matrices could hold more than ``max_attention_cells`` numbers
                                 (see below)
413    ``heatmap_too_large``     ``/heatmap``: more than ``max_heatmap_tokens`` tokens on a side
422    ``invalid_request``       wrong types, a missing or unknown key, an empty ``text`` list,
                                 a string that is not valid Unicode, ``/force`` with a
                                 ``reference`` list of another length or an empty source
                                 sentence, ``/heatmap`` with an attention of the wrong shape
422    ``beam_out_of_range``     beam outside [1, ``max_beam``]
422    ``nbest_out_of_range``    nbest outside [1, beam]
422    ``no_attention``          ``/force`` on a model without attention
503    ``overloaded``            more than ``max_pending`` sentences already waiting, or the
                                 work queued (this request's included) would take the model
                                 more than ``max_queue_s`` seconds at its measured speed
504    ``timeout``               no translation within ``timeout_s`` seconds (queued sentences
                                 are dropped; a batch already decoding finishes unseen)
500    ``internal_error``        a bug: logged with its traceback; the server goes on
=====  ========================  ==========================================================

The work of a request is bounded before it is queued, from its characters alone (a client
can compute it too). A subword covers at least one character, so a sentence of ``c``
characters has at most ``n = min(c, L) + 1`` source tokens (``L`` = the run's
``decoding.max_length``, where the translator truncates) and at most
``m = min(L, ceil(r * n) + 5)`` output steps (``r`` = ``decoding.max_length_ratio``):

- work = ``beam * sum(m)``, the hypothesis-steps the beam search may take;
- attention cells = ``nbest * sum(m * n)``, the numbers the response's matrices may hold.

``/force`` reads the whole reference (no cut at ``L``): a pair of ``c`` and ``d`` characters has
at most ``(c + 1) * (d + 1)`` attention cells, summed over the pairs.

Overload is a fast 503, not a slow 200: the queue admits work only while the model can finish
it in ``max_queue_s`` seconds (at the speed it has been measured to decode), and small
requests are decoded before large ones (see :mod:`softalign.serve.batcher`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from softalign.serve.schemas import ForceRequest, HeatmapRequest, TranslateRequest

log = logging.getLogger("softalign.serve")


@dataclass(frozen=True)
class ServeLimits:
    max_sentences: int = 64  # per request
    max_chars: int = 1000  # per sentence
    max_beam: int = 10
    # per request (see the module doc): 64 sentences of 60 characters at beam 5, or 32 of
    # the longest at beam 10
    max_work: int = 64_000
    max_attention_cells: int = 500_000  # about 3.5 MB of JSON
    max_pending: int = 4096  # sentences queued on the model before new requests get 503
    max_queue_s: int = 5  # estimated seconds of queued work before new requests get 503
    max_body_bytes: int = 1_000_000
    timeout_s: int = 15  # a request's wait for its translations before 504
    # tokens per side of a /heatmap image (120 tokens: about 40 inches, 3,900 pixels at 100 dpi)
    max_heatmap_tokens: int = 120

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value < 1:
                raise ValueError(f"{name} must be at least 1 (got {value})")

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


@dataclass(frozen=True)
class Cost:
    """Upper bounds of a request's decoding work and attention size (see the module doc)."""

    work: int
    attention_cells: int


def sentence_work(text: str, beam: int, max_length: int, length_ratio: float) -> Cost:
    """:class:`Cost` of one sentence at ``nbest=1``; an empty sentence costs nothing."""
    chars = len(text.strip())
    if not chars:
        return Cost(0, 0)
    source = min(chars, max_length) + 1
    steps = min(max_length, math.ceil(length_ratio * source) + 5)
    return Cost(beam * steps, steps * source)


def request_cost(
    texts: list[str], beam: int, nbest: int, max_length: int, length_ratio: float
) -> tuple[Cost, list[int]]:
    """The request's :class:`Cost`, and each sentence's work (for the batcher)."""
    costs = [sentence_work(t, beam, max_length, length_ratio) for t in texts]
    works = [c.work for c in costs]
    return Cost(sum(works), nbest * sum(c.attention_cells for c in costs)), works


def force_cells(texts: list[str], references: list[str]) -> int:
    """Upper bound of the attention cells of ``/force`` (see the module doc)."""
    pairs = zip(texts, references, strict=True)
    return sum((len(s.strip()) + 1) * (len(r.strip()) + 1) for s, r in pairs)


def check_cost(cost: Cost, attention: bool, limits: ServeLimits) -> None:
    """Raise :class:`ApiError` (413) for a request whose bounded cost is over a limit."""
    if cost.work > limits.max_work:
        raise ApiError(
            413,
            "too_much_work",
            f"decoding work {cost.work} (beam x output steps, summed over sentences) is over "
            f"max_work={limits.max_work}: send fewer or shorter sentences or a smaller beam",
        )
    if attention and cost.attention_cells > limits.max_attention_cells:
        raise ApiError(
            413,
            "too_much_attention",
            f"attention matrices of up to {cost.attention_cells} numbers are over "
            f"max_attention_cells={limits.max_attention_cells}: send fewer or shorter "
            "sentences or a smaller nbest",
        )


def check_texts(texts: list[str], field: str, limits: ServeLimits) -> None:
    """Raise :class:`ApiError` for too many sentences, a long one or invalid Unicode."""
    if len(texts) > limits.max_sentences:
        raise ApiError(
            413,
            "too_many_sentences",
            f"{field}: at most {limits.max_sentences} sentences per request (got {len(texts)})",
        )
    for index, sentence in enumerate(texts):
        if not _is_unicode(sentence):
            raise ApiError(
                422,
                "invalid_request",
                f"{field}[{index}]: not valid Unicode (a lone surrogate such as \\ud800)",
            )
        if len(sentence) > limits.max_chars:
            raise ApiError(
                413,
                "sentence_too_long",
                f"{field}[{index}]: at most {limits.max_chars} characters per sentence "
                f"(got {len(sentence)})",
            )


def check_request(request: TranslateRequest, beam: int, limits: ServeLimits) -> None:
    """Raise :class:`ApiError` for a request over a configured limit."""
    check_texts(request.text, "text", limits)
    if not 1 <= beam <= limits.max_beam:
        raise ApiError(
            422, "beam_out_of_range", f"beam: must be in [1, {limits.max_beam}] (got {beam})"
        )
    if not 1 <= request.nbest <= beam:
        raise ApiError(
            422,
            "nbest_out_of_range",
            f"nbest: must be in [1, beam={beam}] (got {request.nbest})",
        )


def check_force(request: ForceRequest, limits: ServeLimits) -> None:
    """Raise :class:`ApiError` for a ``/force`` request that is malformed or over a limit."""
    if len(request.reference) != len(request.text):
        raise ApiError(
            422,
            "invalid_request",
            f"reference: one per source sentence ({len(request.text)} in text, "
            f"got {len(request.reference)})",
        )
    check_texts(request.text, "text", limits)
    check_texts(request.reference, "reference", limits)
    for index, sentence in enumerate(request.text):
        if not sentence.strip():
            raise ApiError(
                422, "invalid_request", f"text[{index}]: empty sentence, nothing to force-decode"
            )
    cells = force_cells(request.text, request.reference)
    if cells > limits.max_attention_cells:
        raise ApiError(
            413,
            "too_much_attention",
            f"attention matrices of up to {cells} numbers are over "
            f"max_attention_cells={limits.max_attention_cells}: send fewer or shorter sentences",
        )


def check_heatmap(request: HeatmapRequest, limits: ServeLimits) -> None:
    """Raise :class:`ApiError` for a ``/heatmap`` request of the wrong shape or too large."""
    sides = {"source_tokens": request.source_tokens, "target_tokens": request.target_tokens}
    for field, tokens in sides.items():
        if len(tokens) > limits.max_heatmap_tokens:
            raise ApiError(
                413,
                "heatmap_too_large",
                f"{field}: at most {limits.max_heatmap_tokens} tokens per side (got {len(tokens)})",
            )
    rows, columns = len(request.target_tokens), len(request.source_tokens)
    if len(request.attention) != rows:
        raise ApiError(
            422,
            "invalid_request",
            f"attention: one row per target token ({rows}), got {len(request.attention)} rows",
        )
    for index, row in enumerate(request.attention):
        if len(row) != columns:
            raise ApiError(
                422,
                "invalid_request",
                f"attention[{index}]: one weight per source token ({columns}), got {len(row)}",
            )


def _is_unicode(text: str) -> bool:
    """False for strings with lone surrogates (valid in JSON escapes, not in UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _where(loc: tuple) -> str:
    """``("body", "text", 2)`` -> ``"text[2]"``."""
    parts = [str(p) for p in loc if p != "body"]
    text = ""
    for part in parts:
        text += f"[{part}]" if part.isdigit() else (f".{part}" if text else part)
    return text or "body"


def _describe(error: dict) -> str:
    where = _where(tuple(error.get("loc", ())))
    if where == "body" and error.get("type") in ("missing", "model_attributes_type"):
        return "body: expected a JSON object (with Content-Type: application/json)"
    return f"{where}: {error.get('msg')}"


def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        reason = next(e for e in errors if e.get("type") == "json_invalid")
        detail = (reason.get("ctx") or {}).get("error", "cannot parse the body")
        return error_response(400, "malformed_json", f"malformed JSON: {detail}")
    messages = [_describe(e) for e in errors[:3]]
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return error_response(422, "invalid_request", "; ".join(messages) + more)


def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.message, exc.headers)


def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    code = str(exc.detail).lower().replace(" ", "_")
    return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))


def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", f"the server failed: {type(exc).__name__}")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


class BodySizeLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        messages: list[Message] = []
        size = 0
        while True:  # read the body here, so the limit holds for chunked uploads too
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if message["type"] != "http.request" or not message.get("more_body"):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request body over {self.max_bytes} bytes"
        await error_response(413, "body_too_large", message)(scope, receive, send)
