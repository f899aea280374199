"""An exclusive lock on a run directory: one process at a time trains, resumes or repairs a run.

The lock is a POSIX record lock (``fcntl``) on ``<run dir>/.lock``. The kernel holds it for the
process and drops it when the process ends, however it ends (exit, exception, kill -9), so a lock
left by a dead process never blocks anyone and nothing has to guess whether a holder is still
alive: the next process simply gets the lock. The file records the holder's pid, host and start
time only to name it in the message of a process that finds the lock taken.

On NFS the same lock goes through the server's lock service (built into NFSv4; lockd/statd on
NFSv3): a holder that dies releases it at once; a holder's machine that crashes releases it when
the server's lease ends (NFSv4, typically 90 s) or when statd reports the reboot (NFSv3). A mount
with ``nolock`` or ``local_lock=all`` keeps locks on one machine and cannot protect a directory that
several machines write; use the lock service there.

The holder removes the file when it releases the lock (``RunLock.release``); a process that waited
on the removed file notices (its inode is no longer the path's) and tries again on the new one.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import struct
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from src.core.errors import UserError

LOCK_NAME = ".lock"
# POSIX locks belong to the process: a second lock on a file this process holds would "succeed",
# and closing it would drop the first. Directories held here are refused instead.
_held: dict[Path, dict[str, Any]] = {}


class RunBusy(UserError):
    """The run directory is held by another process (and the caller asked not to wait)."""

    def __init__(self, run_dir: Path, holder: dict[str, Any] | None):
        self.holder = holder
        super().__init__(f"'{run_dir}' is in use by {describe(holder)}; it was not touched. Wait until that "
                         f"process ends (or pass wait_for_lock=true to wait for it), or give this run its own "
                         f"directory with run_name=<name>")


def describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another process"
    return f"pid {holder.get('pid')} on host {holder.get('host')} (since {holder.get('since')})"


def _read_holder(fd: int) -> dict[str, Any] | None:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "null")
    except (OSError, ValueError):
        return None


def _unwritable(run_dir: Path, exc: OSError) -> UserError:
    return UserError(f"the run directory '{run_dir}' cannot be written ({exc.strerror}); nothing was changed. "
                     f"Free space or fix its permissions, or choose another output_root")


def _conflict(exc: OSError) -> bool:
    return exc.errno in (errno.EACCES, errno.EAGAIN)


class RunLock:
    """``with RunLock(run_dir):`` holds the run directory exclusively. ``wait``: block until the
    holder ends (``on_wait(holder)`` is called once, ``should_stop()`` polled, e.g. for a stop
    signal), else raise :class:`RunBusy` at once. A run directory that does not exist is created,
    and removed again on release if it is still empty."""

    def __init__(self, run_dir: str | os.PathLike, wait: bool = True, poll_s: float = 0.5,
                 on_wait: Callable[[dict[str, Any] | None], None] | None = None,
                 should_stop: Callable[[], bool] | None = None):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.wait, self.poll_s = wait, poll_s
        self.on_wait, self.should_stop = on_wait, should_stop
        self.fd: int | None = None
        self.created_dir = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        key = self.run_dir.resolve()
        if key in _held:
            raise RuntimeError(f"'{self.run_dir}' is already locked by this process")
        waited = False
        try:
            while True:
                try:
                    if not self.run_dir.is_dir():
                        self.run_dir.mkdir(parents=True, exist_ok=True)
                        self.created_dir = True
                    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                except FileNotFoundError:
                    continue  # the holder we waited for removed the directory it had created: create it again
                except OSError as exc:
                    raise _unwritable(self.run_dir, exc) from None
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    holder = _read_holder(fd)
                    os.close(fd)
                    if not _conflict(exc):
                        raise
                    if not self.wait:
                        raise RunBusy(self.run_dir, holder) from None
                    if not waited and self.on_wait is not None:
                        self.on_wait(holder)
                    waited = True
                    if self.should_stop is not None and self.should_stop():
                        raise RunBusy(self.run_dir, holder) from None
                    time.sleep(self.poll_s)
                    continue
                if self._is_current(fd):
                    break
                os.close(fd)  # the holder removed the file we waited on: lock the new one
            holder = {"pid": os.getpid(), "host": socket.gethostname(),
                      "since": datetime.now(timezone.utc).isoformat(timespec="seconds"), "argv": sys.argv[:8]}
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(holder).encode(), 0)
            except OSError as exc:
                os.close(fd)
                raise _unwritable(self.run_dir, exc) from None
            self.fd = fd
            _held[key] = holder
        except BaseException:
            self._remove_created_dir()
            raise

    def _is_current(self, fd: int) -> bool:
        try:
            return os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # still holding the lock: nobody can take it in between
        finally:
            os.close(self.fd)
            self.fd = None
            _held.pop(self.run_dir.resolve(), None)
            self._remove_created_dir()

    def _remove_created_dir(self) -> None:
        if self.created_dir:
            try:
                self.run_dir.rmdir()  # only if empty: a refused new run leaves no trace
            except OSError:
                pass
            self.created_dir = False


def holder_of(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """Who holds ``run_dir`` now: the holder's record ({} if unreadable), or None when nobody does.
    Only looks (F_GETLK on Linux): never takes the lock, so it cannot turn away a process starting
    at the same moment (nor drops a lock this process holds: that one is answered from memory)."""
    if Path(run_dir).resolve() in _held:
        return _held[Path(run_dir).resolve()]
    path = Path(run_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        if sys.platform.startswith("linux"):
            query = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
            answer = struct.unpack("hhqqi", fcntl.fcntl(fd, fcntl.F_GETLK, query))
            held = answer[0] != fcntl.F_UNLCK
        else:  # elsewhere: try the lock for an instant
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = False
            except OSError as exc:
                if not _conflict(exc):
                    raise
                held = True
        return (_read_holder(fd) or {}) if held else None
    finally:
        os.close(fd)
