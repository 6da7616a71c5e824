"""The layout rules of docs/architecture.md that no linter checks."""

from __future__ import annotations

import ast
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[1] / "harness"
MAX_LINES = 620
"""'About 600 lines at most', so a module can be read in one sitting."""


def test_every_module_is_short_enough_to_read_in_one_sitting() -> None:
    long = {str(p.relative_to(HARNESS)): n for p in HARNESS.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split these along their seams (docs/architecture.md): {long}"


def test_internal_imports_nothing_else_of_the_harness() -> None:
    """_internal is the ground floor: any import of the harness there, even inside a function, is a defect."""
    found = []
    for path in (HARNESS / "_internal").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            found += [f"{path.name}: {n}" for n in names
                      if (n == "harness" or n.startswith("harness.")) and not n.startswith("harness._internal")]
    assert not found


def test_every_public_module_says_why_it_exists() -> None:
    missing = [str(p.relative_to(HARNESS)) for p in HARNESS.rglob("*.py")
               if not ast.get_docstring(ast.parse(p.read_text(encoding="utf-8")))]
    assert not missing, f"modules without a docstring: {missing}"
