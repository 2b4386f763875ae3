"""The package's layers import only downward: the reference model knows nothing of speed,
inference never needs training, and training never needs the command line."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "softalign"


def imports_of(path: Path) -> set[str]:
    """Every softalign module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("softalign")}


def modules(*parts: str) -> list[Path]:
    paths = []
    for part in parts:
        target = PACKAGE / part
        paths += sorted(target.rglob("*.py")) if target.is_dir() else [target]
    return paths


RULES = [  # (modules, forbidden prefixes, why)
    (("model",), ("softalign.fast", "softalign.train", "softalign.decoding"), "reference model"),
    (
        ("translator.py", "loading.py", "backend.py", "decoding", "serve", "analysis"),
        ("softalign.train", "softalign.cli"),
        "inference",
    ),
    (("evaluate.py", "metrics.py", "loss.py"), ("softalign.train", "softalign.cli"), "scoring"),
    (("train",), ("softalign.evaluate", "softalign.cli", "softalign.serve"), "training"),
    (("decoding",), ("softalign.fast",), "the search (padding and packing live in fast/)"),
]


@pytest.mark.parametrize("parts,forbidden,layer", RULES, ids=[r[2] for r in RULES])
def test_layers_import_only_downward(parts, forbidden, layer):
    broken = {
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in modules(*parts)
        for name in imports_of(path)
        if name.startswith(forbidden)
    }
    assert not broken, f"{layer}: " + "; ".join(sorted(broken))


def test_the_checker_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from softalign.train import loop\n", encoding="utf-8")
    assert "softalign.train.loop" in imports_of(source)


def test_reference_model_files_are_short_enough_to_read():
    for path in modules("model"):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= 250, f"{path.name}: {lines} lines"


def test_a_batch_reaches_its_loss_through_five_model_files():
    """seq2seq.py (forward, loss) -> encoder.py -> decoder.py (cells) -> attention.py, with
    the decoder's state in state.py: the reference model a reader follows, nothing else."""
    names = sorted(p.name for p in modules("model") if p.name != "__init__.py")
    assert names == ["attention.py", "decoder.py", "encoder.py", "seq2seq.py", "state.py"]
