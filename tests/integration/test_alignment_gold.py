"""The Hansards En-Fr gold set (../shared/data/alignment-enfr) reads cleanly and the diagonal
baseline scores what benchmarks/alignment_aer.py reports for it."""

import pytest

from softalign.analysis.aer import alignment_error_rate
from softalign.analysis.extract import diagonal_links
from softalign.analysis.pharaoh import read_alignments


def test_gold_links_fit_their_sentences_and_diagonal_baseline_aer(shared_data):
    folder = shared_data / "alignment-enfr"
    pairs = [
        line.split(" ||| ")
        for line in (folder / "dev.src-tgt").read_text(encoding="utf-8").splitlines()
    ]
    gold = read_alignments(folder / "dev.gold", one_index=True)
    assert len(pairs) == len(gold) == 100
    lengths = [(len(en.split()), len(fr.split())) for en, fr in pairs]
    for (n_en, n_fr), alignment in zip(lengths, gold, strict=True):
        assert alignment.sure <= alignment.possible
        assert all(i < n_en and j < n_fr for i, j in alignment.possible)
    score = alignment_error_rate(gold, [diagonal_links(e, f) for e, f in lengths])
    assert (score.sure, score.predicted) == (949, 1509)
    assert score.aer == pytest.approx(0.5378, abs=1e-4)
