"""Atomic file writes: write to a temporary file in the same folder, fsync, rename, fsync the folder.

A reader (or a run killed mid-write) therefore sees either the old file or the new one, never a
truncated one; a kill between the write and the rename leaves a temporary ``.<name>.*.tmp`` that
:func:`remove_temporaries` clears when the run starts again.

Fault injection (tests only): ``PROXBIN_CRASH_AT=<file name>:<tmp|done>[#n]`` ends the process
with ``os._exit(CRASH_EXIT)`` at the n-th (default first) write of that file, either when its
temporary is complete but not yet renamed (``tmp``) or right after the rename (``done``), e.g.
``last.pt:done#2`` dies between the second epoch's last.pt and everything written after it.
``PROXBIN_FAIL_AT=<same>`` raises an OSError (EIO) there instead, as a failing disk would.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable

CRASH_ENV, FAIL_ENV = "PROXBIN_CRASH_AT", "PROXBIN_FAIL_AT"
CRASH_EXIT = 86
_counts: Counter[tuple[str, str]] = Counter()


def crash_point(point: str) -> None:
    """Die here, without any clean-up, when ``$PROXBIN_CRASH_AT`` names this point; raise an
    OSError when ``$PROXBIN_FAIL_AT`` does (tests)."""
    for env in (CRASH_ENV, FAIL_ENV):
        wanted = os.environ.get(env)
        if not wanted:
            continue
        name, _, nth = wanted.partition("#")
        if name != point:
            continue
        _counts[env, point] += 1
        if _counts[env, point] == int(nth or 1):
            if env == CRASH_ENV:
                os._exit(CRASH_EXIT)
            raise OSError(errno.EIO, f"injected I/O error at {point}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable: the new directory entry reaches the disk (a no-op where the file
    system cannot open or sync a directory)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[io.BufferedWriter], None]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        crash_point(f"{path.name}:tmp")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    crash_point(f"{path.name}:done")
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def write_text_if_changed(path: str | os.PathLike, text: str) -> bool:
    """Atomically write ``text`` unless the file already holds exactly it; True when written."""
    path = Path(path)
    try:
        if path.read_bytes() == text.encode("utf-8"):
            return False
    except OSError:
        pass
    atomic_write_text(path, text)
    return True


def json_text(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"


def atomic_write_json(path: str | os.PathLike, data: Any) -> Path:
    return atomic_write_text(path, json_text(data))


def csv_text(rows: Iterable[dict[str, Any]]) -> str:
    """Dict rows as CSV; the header is the union of keys in first-seen order."""
    rows = list(rows)
    header: list[str] = []
    for row in rows:
        header += [k for k in row if k not in header]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def atomic_write_csv(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> Path:
    return atomic_write_text(path, csv_text(rows))


def remove_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporaries ``.<name>.*.tmp`` that writes killed before their rename left in
    ``folder`` (not recursive). Only for a folder this process holds the lock of (src.core.lock):
    another writer's temporary would otherwise vanish under it. Returns what was removed."""
    removed = []
    for tmp in Path(folder).glob(".*.tmp"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed
