"""--checkpoint and --set decoding.* on the decoding commands, through the API and the CLI."""

import subprocess
import sys

from softalign.translator import Translator

SOURCES = ["ba be bi bo bu da de di do du", "ko ku ka ga ge gi"]


def softalign(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "softalign", *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_translator_loads_the_named_checkpoint(tiny_run):
    first = Translator.load(tiny_run, checkpoint="100")
    assert first.checkpoint.name == "step-00000100"
    assert Translator.load(tiny_run, checkpoint="latest").checkpoint.name == "step-00000200"
    weights = first.model.state_dict()
    later = Translator.load(tiny_run, checkpoint="latest").model.state_dict()
    assert any(not weights[k].equal(later[k]) for k in weights)  # different weights loaded


def test_decoding_overrides_cap_the_output_length(tiny_run):
    full = Translator.load(tiny_run).translate(SOURCES, beam=1)
    short = Translator.load(tiny_run, decoding={"max_length": 2}).translate(SOURCES, beam=1)
    assert max(len(t.target_tokens) for t in full) > 2
    assert all(len(t.target_tokens) <= 2 for t in short)


def test_cli_translate_with_checkpoint_and_set(tiny_run):
    done = softalign(
        "translate", tiny_run, "--checkpoint", "100", "--beam", "1", stdin="\n".join(SOURCES)
    )
    assert done.returncode == 0, done.stderr
    expected = Translator.load(tiny_run, checkpoint="100").translate(SOURCES, beam=1)
    assert done.stdout.splitlines() == [t.text for t in expected]

    done = softalign(
        "translate", tiny_run, "--set", "decoding.max_length=1", "--beam", "1", stdin=SOURCES[0]
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.split()) <= 1


def test_cli_errors_for_unknown_checkpoints_and_keys_are_one_line(tiny_run):
    for args, message in [
        (("--checkpoint", "999"), "no checkpoint of step 999 (steps: 100, 200)"),
        (("--set", "model.attention=dot"), "only decoding.* keys"),
        (("--set", "decoding.beam=0"), "'decoding.beam': must be at least 1"),
    ]:
        done = softalign("translate", tiny_run, *args, stdin="ba\n")
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_translations_start_with_their_prefix_api_and_cli(tiny_run, tmp_path):
    translator = Translator.load(tiny_run)
    prefixes = ["du do di", ""]
    for beam in (1, 3):
        found = translator.translate(SOURCES, beam=beam, prefix=prefixes)
        assert found[0].text.startswith("du do di")
        assert found[0].target_tokens[:3] == ["▁du", "▁do", "▁di"]
    assert found[1].text == translator.translate(SOURCES, beam=3)[1].text  # "" forces nothing
    (tmp_path / "prefix.txt").write_text("\n".join(prefixes) + "\n")
    done = softalign(
        "translate", tiny_run, "--prefix", tmp_path / "prefix.txt", stdin="\n".join(SOURCES)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        t.text for t in translator.translate(SOURCES, prefix=prefixes)
    ]
    (tmp_path / "short.txt").write_text("du\n")
    done = softalign(
        "translate", tiny_run, "--prefix", tmp_path / "short.txt", stdin="\n".join(SOURCES)
    )
    assert done.returncode == 2 and "short.txt: fewer lines than the input" in done.stderr


def test_cli_translate_with_several_runs_is_an_ensemble(tiny_run):
    done = softalign("translate", tiny_run, tiny_run, "--beam", "2", stdin="\n".join(SOURCES))
    assert done.returncode == 0, done.stderr
    expected = Translator.load(tiny_run).translate(SOURCES, beam=2)
    assert done.stdout.splitlines() == [t.text for t in expected]


def test_evaluate_reports_the_checkpoint_and_decoding_it_used(tiny_run, tmp_path):
    from softalign.evaluate import evaluate_files

    (tmp_path / "src.txt").write_text("ba be bi\nko ku\n")
    (tmp_path / "ref.txt").write_text("bi be ba\nku ko\n")
    result = evaluate_files(
        tiny_run,
        tmp_path / "src.txt",
        tmp_path / "ref.txt",
        checkpoint="100",
        decoding={"beam": 1},
    )
    assert result["checkpoint"].endswith("step-00000100") and result["beam"] == 1


def test_prefix_file_errors_come_before_loading_the_run(tiny_run, tmp_path):
    for args, message in [
        (("--prefix", tmp_path / "missing.txt"), "missing.txt: file not found"),
        (("--prefix", "-"), "--prefix -: the input is standard input already"),
    ]:
        done = softalign("translate", tiny_run, *args, stdin="ba\n")
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1
