"""The packages form one stack: lmkit ← decompose ← evals ← editor ← benchmarks. Every import, at module level
or inside a function, points down the stack; a module that imports upwards fails here by name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STACK = ["lmkit", "decompose", "evals", "editor", "benchmarks"]


def project_imports(source: str) -> set[str]:
    """The top-level project packages a module's source imports (anywhere in the file)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {n.split(".")[0] for n in names if n.split(".")[0] in STACK}
    return found


def upward_imports(package: str, source: str) -> set[str]:
    allowed = set(STACK[: STACK.index(package) + 1])
    return project_imports(source) - allowed


def test_the_checker_catches_an_upward_import():
    # evals/toxicity.py once read its prompts with editor's JSONL reader.
    assert upward_imports("evals", "def read_prompts(path):\n    from editor.data import jsonl_objects\n") == {"editor"}
    assert upward_imports("decompose", "import evals.harness\n") == {"evals"}
    assert upward_imports("editor", "from lmkit.texts import load_texts\nimport decompose\n") == set()


@pytest.mark.parametrize("package", STACK)
def test_every_import_points_down_the_stack(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no modules under {package}/"
    wrong = {str(f.relative_to(ROOT)): sorted(bad) for f in files if (bad := upward_imports(package, f.read_text(encoding="utf-8")))}
    assert not wrong, f"imports against the direction {' ← '.join(STACK)}: {wrong}"
