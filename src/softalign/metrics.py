"""Corpus metrics with sacreBLEU: BLEU (cased, 13a tokenisation, with its signature) and chrF.

Training's validation, ``softalign evaluate``, the analysis tools and the benchmarks all score
with :func:`score_corpus`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sacrebleu.metrics import BLEU, CHRF

from softalign.errors import require_texts


@dataclass(frozen=True)
class Scores:
    bleu: float
    chrf: float
    signature: str
    chrf_signature: str

    def as_dict(self) -> dict[str, float | str]:
        return {
            "bleu": round(self.bleu, 2),
            "chrf": round(self.chrf, 2),
            "signature": self.signature,
            "chrf_signature": self.chrf_signature,
        }


def score_corpus(hypotheses: list[str], references: list[str]) -> Scores:
    """BLEU and chrF of detokenized hypotheses against one reference each."""
    require_texts(hypotheses, "score_corpus", "hypotheses")
    require_texts(references, "score_corpus", "references")
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    bleu, chrf = BLEU(), CHRF()
    bleu_score = bleu.corpus_score(hypotheses, [references])
    chrf_score = chrf.corpus_score(hypotheses, [references])
    return Scores(
        bleu_score.score, chrf_score.score, str(bleu.get_signature()), str(chrf.get_signature())
    )
