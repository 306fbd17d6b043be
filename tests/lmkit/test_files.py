"""lmkit.files: what `--force` may replace, the checks on `--out`, and atomic writes under errors, signals and kills."""

from __future__ import annotations

import json
import signal

import pytest

from lmkit.errors import UserError
from lmkit.files import RECORD, atomic_dir, atomic_file, check_replaceable, check_writable_parent, temp_sibling, write_record


def _write(folder, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


def test_force_replaces_an_earlier_output_and_records_what_it_wrote(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out, "t") as tmp:
        _write(tmp, {"a.txt": "1", "sub/b.txt": "2"})
    assert json.loads((out / RECORD).read_text())["files"] == ["a.txt", "sub/b.txt"]
    with pytest.raises(UserError, match="already exists; pass --force"):
        check_replaceable(out, force=False)
    with atomic_dir(out, "t", force=True) as tmp:
        _write(tmp, {"c.txt": "3"})
    assert sorted(p.name for p in out.iterdir()) == [RECORD, "c.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("extra", ["precious.txt", "sub/notes.md"])
def test_force_never_replaces_a_folder_holding_other_files(tmp_path, extra):
    out = tmp_path / "out"
    with atomic_dir(out, "t") as tmp:
        _write(tmp, {"a.txt": "1"})
    _write(out, {extra: "mine"})
    with pytest.raises(UserError, match=f"did not write \\({extra}\\)"):
        with atomic_dir(out, "t", force=True):
            pytest.fail("must not start")
    assert (out / extra).read_text() == "mine" and (out / "a.txt").read_text() == "1"


def test_force_never_replaces_a_folder_without_a_record(tmp_path):
    home = tmp_path / "home"
    _write(home, {".bashrc": "x", "work/notes.md": "y"})
    with pytest.raises(UserError, match="not written by editor"):
        check_replaceable(home, force=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    check_replaceable(empty, force=True)  # nothing to lose


def test_never_the_current_folder_or_above(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for out in (work, tmp_path):
        write_record(out)
        with pytest.raises(UserError, match="current folder or one above it"):
            check_replaceable(out, force=True)


def test_writable_parent(tmp_path):
    (tmp_path / "afile").write_text("x")
    check_writable_parent(tmp_path / "new" / "deeper" / "out")  # missing folders are created later
    with pytest.raises(UserError, match="afile is a file, not a folder"):
        check_writable_parent(tmp_path / "afile" / "out")
    with pytest.raises(UserError, match="MB free on that disk"):
        check_writable_parent(tmp_path / "out", need_bytes=1 << 62)


@pytest.mark.parametrize("error", [RuntimeError("bug"), KeyboardInterrupt(), SystemExit(128 + signal.SIGTERM)])
def test_an_error_or_a_signal_leaves_nothing(tmp_path, error):
    out = tmp_path / "out"
    with pytest.raises(type(error)):
        with atomic_dir(out, "t") as tmp:
            _write(tmp, {"half.bin": "x"})
            raise error
    assert list(tmp_path.iterdir()) == []


def test_a_killed_runs_leftover_is_cleared_by_the_next_run(tmp_path):
    out = tmp_path / "out"
    _write(temp_sibling(out, "t"), {"half.bin": "x"})  # what a SIGKILL leaves
    with atomic_dir(out, "t") as tmp:
        _write(tmp, {"whole.bin": "y"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in out.iterdir()) == [RECORD, "whole.bin"]


def test_a_kill_between_the_renames_gives_the_previous_output_back(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out, "t") as tmp:
        _write(tmp, {"v1.txt": "1"})
    out.rename(out.with_name("out.tmp-old"))  # killed after moving the old output aside, before the new one moved in
    with pytest.raises(UserError, match="already exists"):  # it is back, so replacing it needs --force again
        with atomic_dir(out, "t"):
            pass
    assert (out / "v1.txt").read_text() == "1"
    with atomic_dir(out, "t", force=True) as tmp:
        _write(tmp, {"v2.txt": "2"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_file_clears_a_dead_runs_temporary(tmp_path):
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    path = tmp_path / "report.json"
    dead = tmp_path / f".report.json.tmp-{gone.pid}"  # what a run killed while writing leaves
    dead.write_text("half")
    with atomic_file(path) as tmp:
        tmp.write_text("whole")
    assert path.read_text() == "whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
