"""docs/configuration.md is generated from config.py: regenerating it gives the committed page."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from softalign.config import RunConfig
from softalign.config_docs import field_comments, main, render

PAGE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_committed_page_is_what_config_py_generates() -> None:
    assert PAGE.read_text(encoding="utf-8") == render(), (
        "docs/configuration.md is stale: run python -m softalign.config_docs docs/configuration.md"
    )


def test_every_config_key_is_documented_with_a_meaning() -> None:
    page = render()
    for section in dataclasses.fields(RunConfig):
        for field in dataclasses.fields(getattr(RunConfig(), section.name)):
            key = f"{section.name}.{field.name}"
            row = next(line for line in page.splitlines() if line.startswith(f"| `{key}` |"))
            assert not row.endswith("|  |"), f"{key} has no comment in config.py"


@dataclass(frozen=True)
class Example:
    # a block comment above
    # on two lines
    first: int = 1
    second: str = "x"  # trailing only
    # above and
    third: float = 0.5  # trailing both
    fourth: bool = True


def test_comments_above_and_after_a_field_are_both_read() -> None:
    assert field_comments(Example) == {
        "first": "a block comment above on two lines",
        "second": "trailing only",
        "third": "above and trailing both",
    }


def test_page_shows_types_and_defaults() -> None:
    page = render()
    assert '| `model.attention` | str | `"additive"` |' in page
    assert "| `data.vocab.joint` | bool | true |" in page
    assert "| `training.lr` | float | `0.001` |" in page


def test_main_writes_the_page(tmp_path: Path) -> None:
    out = tmp_path / "configuration.md"
    assert main([str(out)]) == 0
    assert out.read_text(encoding="utf-8") == render()
    assert main([]) == 2
