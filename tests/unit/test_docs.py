"""README.md and docs/*.md: every ``softalign`` command shown parses, every linked file exists.

Commands are read from fenced code blocks (bash/sh/shell/console or no language): lines joined
at a trailing backslash, split at pipes and ``&&``/``;``, comments dropped. A command is
``softalign SUB ...`` (also ``.venv/bin/softalign``, ``python -m softalign`` and ``torchrun ...
-m softalign``); its arguments must parse with :func:`softalign.cli.build_parser`, and every
``--flag`` must be one of the subcommand's own option strings, spelled out (argparse would
accept an abbreviation). Links are Markdown links and images with a relative target.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from softalign.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGUAGES = {"bash", "sh", "shell", "console", ""}
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
SEPARATORS = {"|", "||", "&&", ";", "&"}
REDIRECTS = {"<", ">", ">>", "2>", "2>&1"}


def shell_lines(markdown: str) -> list[str]:
    """The command lines of the shell blocks, continuation lines joined."""
    blocks: list[list[str]] = []
    language = None  # None outside a fence, else the open fence's language
    for line in markdown.splitlines():
        if line.startswith("```"):
            if language is None:
                language = line[3:].strip()
                blocks.append([])
            else:
                language = None
        elif language is not None and language in SHELL_LANGUAGES:
            blocks[-1].append(line)
    lines: list[str] = []
    for block in blocks:
        text = re.sub(r"\\\n\s*", " ", "\n".join(block))
        lines += [line.strip() for line in text.splitlines() if line.strip()]
    return lines


def softalign_commands(line: str) -> list[list[str]]:
    """The argument lists given to ``softalign`` on one shell line (without ``softalign``)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands, current = [], []
    for token in lexer:
        if token in SEPARATORS:
            commands.append(current)
            current = []
        else:
            current.append(token)
    commands.append(current)
    found = []
    for words in commands:
        words = strip_redirects(words)
        for i, word in enumerate(words):
            if word.endswith("softalign") and (i == 0 or words[i - 1] == "-m"):
                if word == "softalign" or word.endswith("/softalign"):
                    found.append(words[i + 1 :])
                    break
    return found


def strip_redirects(words: list[str]) -> list[str]:
    kept, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word in REDIRECTS:
            skip = True
        else:
            kept.append(word)
    return kept


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def check_command(args: list[str]) -> str | None:
    """None when ``softalign ARGS`` parses with its flags spelled out; else why not."""
    parser = build_parser()
    commands = subparsers(parser)
    if not args or args[0] not in commands:
        return f"unknown subcommand {args[:1]}"
    known = set(commands[args[0]]._option_string_actions)
    for word in args[1:]:
        flag = word.split("=", 1)[0]
        if flag.startswith("-") and flag not in known and not re.fullmatch(r"-[\d.]+", flag):
            return f"'{args[0]}' has no option {flag}"
    try:
        parser.parse_args(args)
    except SystemExit:
        return "argparse rejects it"
    return None


def relative_links(markdown: str) -> list[str]:
    """Relative link targets, anchors kept (``docs/x.md#part``); ``#part`` alone is skipped."""
    return [
        target
        for target in LINK.findall(markdown)
        if not re.match(r"[a-z][a-z0-9+.-]*:", target) and not target.startswith("#")
    ]


def heading_anchors(markdown: str) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to -."""
    anchors = set()
    for line in markdown.splitlines():
        if match := re.match(r"#{1,6}\s+(.*)", line):
            text = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_softalign_command_shown_parses(page: Path, capsys) -> None:
    problems = []
    for line in shell_lines(page.read_text(encoding="utf-8")):
        for args in softalign_commands(line):
            if (why := check_command(args)) is not None:
                problems.append(f"{line}: {why}")
    capsys.readouterr()  # argparse's own complaints
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_points_to_a_file(page: Path) -> None:
    missing = []
    for target in relative_links(page.read_text(encoding="utf-8")):
        path, _, anchor = target.partition("#")
        linked = page.parent / path
        if not linked.exists():
            missing.append(target)
        elif anchor and anchor not in heading_anchors(linked.read_text(encoding="utf-8")):
            missing.append(target)
    text = page.read_text(encoding="utf-8")
    missing += [
        f"#{a}" for a in re.findall(r"\]\(#([^)\s]+)\)", text) if a not in heading_anchors(text)
    ]
    assert not missing, f"{page.name}: missing {missing}"


def test_the_pages_show_commands_of_every_kind() -> None:
    """The checks above see the commands: the README's tour alone shows these subcommands."""
    shown = {
        args[0]
        for line in shell_lines((ROOT / "README.md").read_text(encoding="utf-8"))
        for args in softalign_commands(line)
    }
    tour = {"train", "translate", "evaluate", "attention", "align", "aer", "serve", "study"}
    assert tour <= shown


def test_readme_starts_with_the_two_setup_commands_and_stays_short() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("```bash\nbash scripts/demo.sh ")
    assert readme.splitlines()[2].startswith("bash scripts/test.sh ")
    assert len(readme.splitlines()) <= 250


def test_a_misspelt_or_abbreviated_flag_is_caught() -> None:
    assert check_command(["translate", "RUN", "--beam", "5"]) is None
    assert "no option --beams" in check_command(["translate", "RUN", "--beams", "5"])
    assert "no option --len" in check_command(["translate", "RUN", "--len", "1.0"])
    assert "unknown subcommand" in check_command(["translat", "RUN"])
    assert check_command(["evaluate", "RUN", "--src", "x"]) == "argparse rejects it"  # no --ref


def test_commands_are_found_in_pipes_torchrun_and_continued_lines() -> None:
    markdown = (
        "```bash\n"
        'echo "a b" | softalign translate RUN --beam 5 > out.txt  # a comment --nope\n'
        "torchrun --nproc-per-node 2 -m softalign train C.yaml \\\n    -o RUN\n"
        "pip install softalign\n"
        "```\n"
        "```python\nsoftalign = 1\n```\n"
    )
    found = [args for line in shell_lines(markdown) for args in softalign_commands(line)]
    assert found == [["translate", "RUN", "--beam", "5"], ["train", "C.yaml", "-o", "RUN"]]


def test_links_skip_urls_and_anchors() -> None:
    markdown = "[a](docs/x.md#part) ![b](img.png) [c](https://x.org) [d](#top) [e](mailto:a@b)"
    assert relative_links(markdown) == ["docs/x.md#part", "img.png"]


def test_anchors_are_spelt_as_github_makes_them() -> None:
    markdown = "# The demo: English → French on the Bible\n## `data.vocab`\n### On a GPU\n"
    assert heading_anchors(markdown) == {
        "the-demo-english--french-on-the-bible",
        "datavocab",
        "on-a-gpu",
    }
