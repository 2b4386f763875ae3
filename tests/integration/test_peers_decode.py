"""benchmarks/peers.py's softalign decode on the tiny run: the search time and the subword
lengths the search MFU column counts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from peers_systems import softalign_decode  # noqa: E402

from softalign.translator import Translator  # noqa: E402


def test_decode_reports_the_search_time_and_each_sentences_subword_lengths(
    tiny_run, tmp_path, capsys
):
    lines = ["ba be bi", "ko ku ka ki", "bo"]
    src, out = tmp_path / "src.txt", tmp_path / "hyp.txt"
    src.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    softalign_decode(str(tiny_run), str(src), str(out), "5", "2000", "reference")
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    found = Translator.load(tiny_run, backend="reference").translate(lines, beam=5)
    assert report["search_s"] > 0
    assert report["src_lengths"] == [len(t.source_tokens) for t in found]
    assert report["out_lengths"] == [len(t.target_tokens) for t in found]
    assert out.read_text(encoding="utf-8").splitlines() == [t.text for t in found]
