"""Writing outputs safely, and where results came from.

`atomic_dir` is the one way a command writes an output folder: everything goes to a temporary sibling
(`<out>.tmp-<tag>`) that becomes the folder only when complete, so an error, Ctrl-C or SIGTERM leaves
nothing behind and a SIGKILL's leftover is cleared by the next run with the same `--out`. Each
finished folder records what it holds in `.editor-output`; replacing a folder (`--force`) is allowed
only when it holds nothing else, so a typo in `--out` can never delete a user's files. Commands run
`check_replaceable` and `check_writable_parent` on their `--out` before any heavy work.

`provenance` is the one record of library versions and content hashes that manifests carry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from lmkit.errors import UserError

RECORD = ".editor-output"


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def write_record(folder: Path) -> None:
    """Record every file now in `folder` as this tool's own (what `--force` may later replace)."""
    (folder / RECORD).write_text(json.dumps({"files": [f for f in _listing(folder) if f != RECORD]}, indent=0) + "\n", encoding="utf-8")


def foreign_files(folder: Path) -> list[str]:
    """Files in `folder` that this tool did not write there (all of them if it holds no record)."""
    record = folder / RECORD
    try:
        ours = set(json.loads(record.read_text(encoding="utf-8"))["files"])
    except (OSError, ValueError, KeyError, TypeError):
        ours = set()
    return [f for f in _listing(folder) if f != RECORD and f not in ours]


def check_replaceable(out: Path, force: bool, option: str = "--out") -> None:
    """Refuse, with one message, to write over `out` unless `force` and it holds only this tool's own files."""
    out = Path(out)
    if not out.exists() and not out.is_symlink():
        return
    if out.is_symlink():
        raise UserError(f"{option} {out} is a symbolic link; it is left alone: choose another path")
    if not out.is_dir():
        raise UserError(f"{option} {out} exists and is not a folder; choose another path")
    here = Path.cwd().resolve()
    if out.resolve() in (here, *here.parents):
        raise UserError(f"{option} {out} is the current folder or one above it; it is left alone: choose a new folder")
    if not force:
        raise UserError(f"{option} {out} already exists; pass --force to replace it, or choose another path")
    if not (out / RECORD).is_file():
        if not any(out.iterdir()):
            return  # an empty folder holds nothing to lose
        raise UserError(f"{option} {out} was not written by editor (no {RECORD} record); it is left alone: choose another path")
    foreign = foreign_files(out)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise UserError(f"{option} {out} holds files editor did not write ({shown}); it is left alone: move them or choose another path")


def check_replaceable_file(path: Path, force: bool, ours: bool, what: str, option: str = "--out") -> None:
    """Refuse to write over an existing file unless `force` and it is one this tool wrote (`ours`: e.g. it parses as `what`)."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    if path.is_dir():
        raise UserError(f"{option} {path} is a folder; give a file name such as {path / 'report.json'}")
    if not ours:
        raise UserError(f"{option}: {path} exists and is not {what}; it is left alone: choose another name")
    if not force:
        raise UserError(f"{option} {path} already exists; pass --force to replace it, or choose another name")


def check_writable_parent(out: Path, option: str = "--out", need_bytes: int = 0) -> None:
    """The folder `out` will be created in exists (or can be created), is a folder, can be written to and has room."""
    out = Path(out)
    probe = out.parent if str(out.parent) else Path(".")
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"{option} {out}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"{option} {out}: {probe} is not writable")
    free = shutil.disk_usage(probe).free
    if free < need_bytes:
        raise UserError(f"{option} {out}: {free / 1e6:,.0f} MB free on that disk, the output needs about {need_bytes / 1e6:,.0f} MB")


def temp_sibling(out: Path, tag: str) -> Path:
    return out.with_name(f"{out.name}.tmp-{tag}")


def _previous(out: Path) -> Path:
    return out.with_name(f"{out.name}.tmp-old")


@contextmanager
def atomic_dir(out: Path | str, tag: str, *, force: bool = False, option: str = "--out") -> Iterator[Path]:
    """Yield an empty temporary folder beside `out`; on success it replaces `out`, on any exception it is removed.

    An existing `out` is replaced only with `force` and only when it holds nothing but this tool's
    files (see `check_replaceable`); the old one is deleted only once the new one is in place."""
    out = Path(out)
    if _previous(out).is_dir() and not out.exists():
        _previous(out).rename(out)  # a kill between the two renames of _replace: the previous output comes back
    check_replaceable(out, force, option)
    check_writable_parent(out, option)
    tmp = temp_sibling(out, tag)
    if tmp.exists():  # left by a killed run (its name is ours)
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        write_record(tmp)
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def atomic_file(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write one file to; it becomes `path` (readable, 0644) only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.tmp-*"):  # left by a killed run
        if not _alive(stale.name.rpartition("-")[2]):
            stale.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _replace(new: Path, out: Path) -> None:
    if not out.exists():
        new.rename(out)
        return
    old = _previous(out)
    if old.exists():
        shutil.rmtree(old)
    out.rename(old)
    try:
        new.rename(out)
    except BaseException:
        old.rename(out)  # put the previous folder back rather than leave nothing
        raise
    shutil.rmtree(old, ignore_errors=True)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def texts_sha256(texts: Iterable[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8") + b"\x00")
    return h.hexdigest()


def versions(packages: Iterable[str] = ("editor", "torch", "transformers", "peft")) -> dict[str, str]:
    out = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def provenance(files: dict[str, Path] | None = None, texts: dict[str, list[str]] | None = None) -> dict:
    """{"versions": installed versions of the libraries that made a result, "sha256": hashes of its inputs}."""
    hashes = {k: file_sha256(p) for k, p in (files or {}).items()}
    hashes.update({k: texts_sha256(v) for k, v in (texts or {}).items()})
    return {"versions": versions(), "sha256": hashes}
