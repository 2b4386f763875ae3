"""The analysis commands end to end on the tiny run: attention, align, aer, evaluate
--by-length, compare, translate --attention; user errors are one line and exit 2."""

import json
import shutil

import pytest

from softalign.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("texts")
    (folder / "src.txt").write_text("ba be bi\nko ku ka ki\nbo\n")
    (folder / "ref.txt").write_text("bi be ba\nki ka ku ko\nbo\n")
    return folder


def test_attention_draws_one_sentence_as_png_and_svg(tiny_run, tmp_path, capsys):
    code, out, _ = run(capsys, "attention", tiny_run, "ba be bi", "-o", tmp_path / "a.png")
    assert code == 0 and (tmp_path / "a.png").read_bytes()[:8] == PNG_MAGIC
    code, _, _ = run(
        capsys,
        "attention",
        tiny_run,
        "ba be bi",
        "--ref",
        "bi be ba",
        "--granularity",
        "word",
        "-o",
        tmp_path / "a.svg",
    )
    assert code == 0 and "<svg" in (tmp_path / "a.svg").read_text()


def test_attention_draws_many_sentences_into_a_folder(tiny_run, texts, tmp_path, capsys):
    outdir = tmp_path / "maps"
    code, out, _ = run(
        capsys,
        "attention",
        tiny_run,
        "--input",
        texts / "src.txt",
        "--refs",
        texts / "ref.txt",
        "--outdir",
        outdir,
        "--format",
        "svg",
    )
    assert code == 0
    assert sorted(p.name for p in outdir.iterdir()) == ["0001.svg", "0002.svg", "0003.svg"]
    assert out.split() == [str(outdir / f"000{i}.svg") for i in (1, 2, 3)]


def test_attention_argument_errors_are_one_line(tiny_run, tmp_path, capsys):
    code, _, err = run(capsys, "attention", tiny_run, "ba be")
    assert code == 2 and err.startswith("softalign: error: ") and err.count("\n") == 1
    code, _, err = run(capsys, "attention", tiny_run, "ba", "-o", tmp_path / "a.gif")
    assert code == 2 and "unsupported image format" in err


def test_translate_writes_attention_jsonl(tiny_run, texts, tmp_path, capsys):
    path = tmp_path / "att.jsonl"
    code, out, _ = run(
        capsys, "translate", tiny_run, "-i", texts / "src.txt", "--attention", path, "--beam", 2
    )
    assert code == 0
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["index"] for r in records] == [0, 1, 2]
    assert [r["translation"] for r in records] == out.splitlines()
    for record in records:
        assert len(record["attention"]) == len(record["target_tokens"])


def test_align_then_aer(tiny_run, texts, tmp_path, capsys):
    pred = tmp_path / "pred.align"
    code, _, _ = run(
        capsys,
        "align",
        tiny_run,
        "--src",
        texts / "src.txt",
        "--tgt",
        texts / "ref.txt",
        "-o",
        pred,
        "--one-index",
    )
    assert code == 0
    lines = pred.read_text().splitlines()
    assert len(lines) == 3 and lines[2] == "1-1"  # "bo" ||| "bo": the only possible link
    gold = tmp_path / "gold"
    gold.write_text("3-1 2-2 1-3\n4-1 3-2 2-3 1-4\n1-1\n")
    code, out, _ = run(capsys, "aer", "--gold", gold, "--pred", pred, "--one-index", "--json")
    assert code == 0
    score = json.loads(out)
    assert set(score) == {"precision", "recall", "aer"} and 0.0 <= score["aer"] <= 1.0
    code, out, _ = run(capsys, "aer", "--gold", gold, "--pred", gold, "--one-index")
    assert "aer: 0.0" in out.splitlines()


def test_align_symmetrized_with_a_reverse_model(tiny_run, texts, tmp_path, capsys):
    pred = tmp_path / "sym.align"
    code, _, _ = run(
        capsys,
        "align",
        tiny_run,
        "--src",
        texts / "src.txt",
        "--tgt",
        texts / "ref.txt",
        "-o",
        pred,
        "--reverse-run",
        tiny_run,
        "--symmetrize",
        "grow-diag-final-and",
        "--method",
        "threshold",
    )
    assert code == 0 and len(pred.read_text().splitlines()) == 3


def test_aer_with_malformed_prediction_is_one_line_error(tmp_path, capsys):
    gold, pred = tmp_path / "gold", tmp_path / "pred"
    gold.write_text("1-1\n")
    pred.write_text("1-1 2~2\n")
    code, _, err = run(capsys, "aer", "--gold", gold, "--pred", pred)
    assert code == 2
    assert (
        err == f"softalign: error: {pred}:1: bad link '2~2': expected i-j (sure) or ipj "
        "(possible), with non-negative integer positions\n"
    )


def test_evaluate_by_length_reports_buckets_and_writes_a_plot(tiny_run, texts, tmp_path, capsys):
    plot = tmp_path / "len.png"
    code, out, _ = run(
        capsys,
        "evaluate",
        tiny_run,
        "--src",
        texts / "src.txt",
        "--ref",
        texts / "ref.txt",
        "--by-length",
        "--buckets",
        "1,3",
        "--plot",
        plot,
        "--json",
    )
    assert code == 0 and plot.read_bytes()[:8] == PNG_MAGIC
    report = json.loads(out)
    assert [(b["bucket"], b["count"]) for b in report["buckets"]] == [
        ("1-1", 1),
        ("2-3", 1),
        ("4+", 1),
    ]
    assert "bleu" in report and "chrf" in report


def test_compare_puts_runs_in_one_table(tiny_run, texts, tmp_path, capsys):
    copy = shutil.copytree(tiny_run, tmp_path / "copy")
    plot = tmp_path / "cmp.svg"
    code, out, _ = run(
        capsys,
        "compare",
        tiny_run,
        copy,
        "--src",
        texts / "src.txt",
        "--ref",
        texts / "ref.txt",
        "--buckets",
        "2",
        "--plot",
        plot,
    )
    assert code == 0 and plot.is_file()
    assert f"| {tiny_run.name} | 3 |" in out and "| copy | 3 |" in out
    assert "| 1-2 | 1 |" in out and "| 3+ | 2 |" in out
