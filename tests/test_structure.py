"""The package's layers: imports only go down (issue 15), lazy imports inside functions included.

Read from the source with :mod:`ast`, so an import that runs only on some path counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "meshgraph"

#: Top-level modules and subpackages, lowest layer first. A module may import from its own
#: layer and the layers below it.
LAYERS: list[set[str]] = [
    {"_optional", "devices", "io", "mesh", "geometry", "generators", "coarsening"},
    {"nn", "losses", "metrics", "viz"},
    {"bodies", "keypoint_formats"},
    {"data", "datasets"},
    {"models"},
    {"training"},
    {"detect", "cli", "__init__"},
]


def _layer(top: str) -> int:
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"meshgraph.{top} is in no layer: add it to LAYERS in {__file__}")


def _top(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, top-level meshgraph module)`` of every import of the package in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "meshgraph":
                names = [f"meshgraph.{a.name}" for a in node.names]
            else:
                names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "meshgraph" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


def test_every_import_goes_down_or_sideways():
    wrong = []
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 30
    for path in files:
        here = _top(path)
        for line, target in _imports(path):
            if (PACKAGE / target).is_dir() or (PACKAGE / f"{target}.py").is_file():
                if _layer(target) > _layer(here):
                    wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}")
    assert not wrong, "imports that go up a layer:\n" + "\n".join(wrong)


def test_the_checker_sees_an_upward_import(tmp_path):
    """The check is not vacuous: a lazy import of training from a model file is found."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from meshgraph.training.evaluate import evaluate\n")
    assert _imports(bad) == [(2, "training")]
    assert _layer("training") > _layer("models")
