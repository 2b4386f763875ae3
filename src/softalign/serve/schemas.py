"""Request and response bodies of the HTTP API (pydantic models; they also make /docs).

Types are strict: ``"beam": "5"`` or ``"text": "one sentence"`` is a 422 error, not a guess,
and unknown keys are refused so that a misspelt option does not pass silently. The limits
that a server operator configures (sentences per request, characters, beam) are checked in
:mod:`softalign.serve.limits`, since they are not known when this module is imported.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from softalign.translator import Translation


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


class Candidate(BaseModel):
    text: str
    score: float = Field(description="length-normalised log-probability (higher is better)")
    target_tokens: list[str] | None = Field(
        None, description="SentencePiece pieces, '▁' starts a word (with attention=true)"
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


def to_response(
    results: list[Translation], *, beam: int, nbest: int, attention: bool
) -> TranslateResponse:
    """Translations -> response body; tokens and attention only when asked for."""
    sentences = []
    for result in results:
        candidates = [
            Candidate(
                text=c.text,
                score=c.score,
                target_tokens=c.target_tokens if attention else None,
                attention=(
                    c.attention.astype(float).round(4).tolist()
                    if attention and c.attention is not None
                    else None
                ),
            )
            for c in result.nbest
        ]
        sentences.append(
            SentenceTranslation(
                source=result.source,
                text=result.text,
                score=result.score,
                source_tokens=result.source_tokens if attention else None,
                nbest=candidates,
            )
        )
    return TranslateResponse(translations=sentences, beam=beam, nbest=nbest)


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
