"""Reading parallel text: every user error is a one-line DataError naming file and line."""

import gzip

import pytest

from softalign.data.corpus import ParallelText, drop_empty_and_long, read_parallel
from softalign.data.sources import load_source
from softalign.errors import DataError


def test_reads_plain_and_gzip(tmp_path):
    (tmp_path / "a.en").write_text("one\ntwo\n")
    with gzip.open(tmp_path / "a.de.gz", "wt") as handle:
        handle.write("eins\nzwei\n")
    text = read_parallel(tmp_path / "a.en", tmp_path / "a.de.gz")
    assert text.src == ["one", "two"] and text.tgt == ["eins", "zwei"]


def test_different_line_counts_are_an_error(tmp_path):
    (tmp_path / "a").write_text("1\n2\n3\n")
    (tmp_path / "b").write_text("1\n2\n")
    with pytest.raises(DataError, match="has 3 lines but .* has 2"):
        read_parallel(tmp_path / "a", tmp_path / "b")


def test_invalid_utf8_reports_file_and_line(tmp_path):
    (tmp_path / "a").write_bytes(b"ok\nfine\nbad \xff\xfe byte\n")
    (tmp_path / "b").write_text("1\n2\n3\n")
    with pytest.raises(DataError, match=r"a:3: invalid UTF-8"):
        read_parallel(tmp_path / "a", tmp_path / "b")


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "file not found"),
        (lambda p: p.write_text(""), "file is empty"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_bytes(b"a\x00b\n"), "NUL byte"),
    ],
)
def test_unusable_files(tmp_path, setup, message):
    bad = tmp_path / "bad.txt"
    setup(bad)
    (tmp_path / "ok").write_text("x\n")
    with pytest.raises(DataError, match=message):
        read_parallel(bad, tmp_path / "ok")


def test_truncated_gzip(tmp_path):
    with gzip.open(tmp_path / "full.gz", "wt") as handle:
        handle.write("line\n" * 10000)
    data = (tmp_path / "full.gz").read_bytes()
    (tmp_path / "cut.gz").write_bytes(data[: len(data) // 2])
    (tmp_path / "ok").write_text("x\n")
    with pytest.raises(DataError, match="truncated gzip"):
        read_parallel(tmp_path / "cut.gz", tmp_path / "ok")


def test_empty_and_long_pairs_are_dropped_and_counted():
    text = ParallelText(["a", "", "b", "c" * 50, "d"], ["x", "y", " ", "z", "w"])
    kept, report = drop_empty_and_long(text, max_chars=10)
    assert kept.src == ["a", "d"] and kept.tgt == ["x", "w"]
    assert (report.kept, report.empty, report.too_long) == (2, 2, 1)


def test_synthetic_reverse_targets_are_reversed_and_deterministic():
    first = load_source("synthetic:reverse?min=3&max=9&n=200&seed=4")
    again = load_source("synthetic:reverse?min=3&max=9&n=200&seed=4")
    assert first["train"].src == again["train"].src
    for src, tgt in zip(first["train"].src, first["train"].tgt, strict=True):
        assert tgt.split() == src.split()[::-1]
        assert 3 <= len(src.split()) <= 9


def test_unknown_source_is_an_error():
    with pytest.raises(DataError, match="unknown source 'nope'"):
        load_source("nope:thing")


def test_the_vocabulary_learns_from_a_sample_of_a_larger_corpus(tmp_path):
    from softalign.data.synthetic import WORDS, generate
    from softalign.data.vocab import UNK_ID, SubwordVocab

    text = generate("copy", 5000, 3, 12, len(WORDS), seed=3).src
    vocab = SubwordVocab.train(text, tmp_path / "spm", 60, sample_sentences=1000)
    # every word of the corpus is still covered: no unknown ids on sentences not sampled
    assert all(UNK_ID not in ids for ids in vocab.encode(text[-200:]))
    assert len(vocab) <= 60
