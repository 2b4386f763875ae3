"""Request and response bodies of the HTTP API (pydantic models; they also make /docs).

Types are strict: ``"beam": "5"`` or ``"text": "one sentence"`` is a 422 error, not a guess,
and unknown keys are refused so that a misspelt option does not pass silently. The limits
that a server operator configures (sentences per request, characters, beam) are checked in
:mod:`softalign.serve.limits`, since they are not known when this module is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
)

from softalign.analysis.forced import ForcedAlignment
from softalign.analysis.words import group_pieces, to_words
from softalign.translator import Translation

Granularity = Literal["subword", "word"]
GRANULARITY = (
    "tokens and attention per SentencePiece piece (subword), or merged to words (word: a "
    "source word's pieces summed, a target word's averaged, so rows still sum to 1)"
)


class TranslateRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"text": ["A man rides a bike."], "beam": 5}]},
    )

    text: list[StrictStr] = Field(min_length=1, description="source sentences, one per item")
    beam: StrictInt | None = Field(
        None,
        description="beam size (1 = greedy, at most the server's max_beam); "
        "default from the run's config",
    )
    nbest: StrictInt = Field(1, description="hypotheses per sentence, from 1 to beam")
    attention: StrictBool = Field(
        False, description="also return subword tokens and attention matrices"
    )
    granularity: Granularity = Field("subword", description=f"with attention=true: {GRANULARITY}")


class Candidate(BaseModel):
    text: str
    score: float = Field(description="length-normalised log-probability (higher is better)")
    target_tokens: list[str] | None = Field(
        None,
        description="SentencePiece pieces, '▁' starts a word, or words with "
        "granularity=word (with attention=true)",
    )
    attention: list[list[float]] | None = Field(
        None,
        description="weights, shape (len(target_tokens), len(source_tokens)); each row sums "
        "to 1 (with attention=true, absent for models without attention)",
    )


class SentenceTranslation(BaseModel):
    source: str
    text: str = Field(description="the best translation (nbest[0].text)")
    score: float
    source_tokens: list[str] | None = Field(None, description="with attention=true")
    nbest: list[Candidate] = Field(description="best first; empty for an empty sentence")


class TranslateResponse(BaseModel):
    translations: list[SentenceTranslation]
    beam: int
    nbest: int
    granularity: Granularity | None = Field(None, description="with attention=true")


class ForceRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"text": ["A man rides a bike."], "reference": ["Ein Mann fährt Rad."]}]
        },
    )

    text: list[StrictStr] = Field(min_length=1, description="source sentences, one per item")
    reference: list[StrictStr] = Field(
        min_length=1,
        description="one target sentence per source sentence, which the model is made to "
        "read (forced decoding, as `softalign attention --ref`)",
    )
    granularity: Granularity = Field("subword", description=GRANULARITY)


class ForcedPair(BaseModel):
    source: str
    reference: str
    log_prob: float = Field(
        description="log p(reference + EOS | source), summed over the target pieces "
        "(not length-normalised)"
    )
    source_tokens: list[str]
    target_tokens: list[str] = Field(description="the reference's pieces (or words)")
    attention: list[list[float]] = Field(
        description="shape (len(target_tokens), len(source_tokens)): row t is the attention "
        "while the model predicts target token t; each row sums to 1"
    )


class ForceResponse(BaseModel):
    alignments: list[ForcedPair]
    granularity: Granularity


Label = Annotated[StrictStr, StringConstraints(max_length=50)]
Weight = Annotated[StrictFloat, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class HeatmapRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "source_tokens": ["a", "cat"],
                    "target_tokens": ["eine", "Katze"],
                    "attention": [[0.9, 0.1], [0.2, 0.8]],
                    "format": "svg",
                }
            ]
        },
    )

    source_tokens: list[Label] = Field(min_length=1, description="column labels (x axis)")
    target_tokens: list[Label] = Field(min_length=1, description="row labels (y axis)")
    attention: list[list[Weight]] = Field(
        description="weights in [0, 1], shape (len(target_tokens), len(source_tokens))"
    )
    format: Literal["png", "svg"] = "png"
    title: Annotated[StrictStr, StringConstraints(max_length=200)] | None = None


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable, e.g. 'too_many_sentences'")
    message: str = Field(description="one line for people")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class HealthResponse(BaseModel):
    status: str
    pending_sentences: int
    pending_work: int = Field(description="estimated work queued (see the 503 'overloaded')")
    batching: dict[str, int | float] = Field(
        description="requests, sentences and decoding calls so far; mean and largest batch"
    )


def _weights(attention: np.ndarray) -> list[list[float]]:
    return np.asarray(attention, dtype=float).round(4).tolist()


def _at(
    granularity: str, src: Sequence[str], tgt: Sequence[str], attention: np.ndarray | None
) -> tuple[list[str], list[str], np.ndarray | None]:
    """Source labels, target labels and attention at ``granularity`` (from pieces)."""
    if granularity == "subword":
        return list(src), list(tgt), attention
    if attention is None:
        return group_pieces(src)[0], group_pieces(tgt)[0], None
    merged, src_words, tgt_words = to_words(attention, src, tgt)
    return src_words, tgt_words, merged


def to_response(
    results: list[Translation],
    *,
    beam: int,
    nbest: int,
    attention: bool,
    granularity: str = "subword",
) -> TranslateResponse:
    """Translations -> response body; tokens and attention only when asked for."""
    sentences = []
    for result in results:
        candidates, source_tokens = [], None
        for c in result.nbest:
            src, tgt, weights = _at(granularity, result.source_tokens, c.target_tokens, c.attention)
            source_tokens = src
            candidates.append(
                Candidate(
                    text=c.text,
                    score=c.score,
                    target_tokens=tgt if attention else None,
                    attention=_weights(weights) if attention and weights is not None else None,
                )
            )
        if source_tokens is None:  # an empty sentence: no hypotheses
            source_tokens = _at(granularity, result.source_tokens, [], None)[0]
        sentences.append(
            SentenceTranslation(
                source=result.source,
                text=result.text,
                score=result.score,
                source_tokens=source_tokens if attention else None,
                nbest=candidates,
            )
        )
    return TranslateResponse(
        translations=sentences,
        beam=beam,
        nbest=nbest,
        granularity=granularity if attention else None,
    )


def to_force_response(request: ForceRequest, alignments: list[ForcedAlignment]) -> ForceResponse:
    """Forced alignments -> response body, at the request's granularity."""
    pairs = []
    for source, reference, forced in zip(request.text, request.reference, alignments, strict=True):
        src, tgt, weights = _at(
            request.granularity, forced.source_tokens, forced.target_tokens, forced.attention
        )
        pairs.append(
            ForcedPair(
                source=source,
                reference=reference,
                log_prob=forced.log_prob,
                source_tokens=src,
                target_tokens=tgt,
                attention=_weights(weights),
            )
        )
    return ForceResponse(alignments=pairs, granularity=request.granularity)


class InfoResponse(BaseModel):
    model: str = Field(description="run directory and checkpoint names")
    source_language: str
    target_language: str
    attention: str = Field(description="attention type: additive, dot, scaled_dot, general, none")
    rnn_type: str
    source_vocab_size: int
    target_vocab_size: int
    default_beam: int
    limits: dict[str, int]
    batching: dict[str, int | float]
