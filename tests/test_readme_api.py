"""The README's Python API example, run exactly as written (from a folder that has the repository's examples/);
a real forget and evaluation of the shipped model, so it is in the slow tier."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Python API") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no python block under ### Python API"
    return match.group(1)


def test_readme_example_uses_only_the_api():
    code = readme_example()
    compile(code, "README.md", "exec")
    assert "from editor import api" in code
    from editor import api

    for name in set(re.findall(r"api\.(\w+)\(", code)):
        assert callable(getattr(api, name)), name


@pytest.mark.slow
def test_readme_example_runs_as_written(tmp_path):
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", readme_example()], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "5 rank-1 components removed"
    assert len(lines) == 1 + 5 + 1 + 1
    assert {p.name for p in (tmp_path / "runs" / "api-demo").iterdir()} >= {"model.safetensors", "adapter", "edit.json", "README.md"}
    bits, nll = map(float, lines[-1].split())
    assert bits > 0 and nll > 0
