"""The run directory's lock: one holder at a time, named to the others; a dead holder's lock is
free at once; waiting, refusing, and leaving no trace behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import ROOT
from src.core.errors import UserError
from src.core.lock import LOCK_NAME, RunBusy, RunLock, holder_of


def python(code: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **kwargs)


def test_a_second_process_is_refused_naming_the_holder(tmp_path):
    with RunLock(tmp_path / "run"):
        assert holder_of(tmp_path / "run")["pid"] == os.getpid()
        other = python(f"""
            from src.core.lock import RunBusy, RunLock
            try:
                RunLock({str(tmp_path / 'run')!r}, wait=False).acquire()
            except RunBusy as exc:
                print(exc)
            """)
        out, err = other.communicate(timeout=60)
        assert f"is in use by pid {os.getpid()} on host" in out, err
    assert holder_of(tmp_path / "run") is None


def test_a_waiting_process_gets_the_lock_when_the_holder_ends(tmp_path):
    lock = RunLock(tmp_path / "run")
    lock.acquire()
    waiter = python(f"""
        from src.core.lock import RunLock
        with RunLock({str(tmp_path / 'run')!r}, poll_s=0.05, on_wait=lambda h: print("waiting for", h["pid"], flush=True)):
            print("got it", flush=True)
        """)
    assert waiter.stdout.readline().strip() == f"waiting for {os.getpid()}"
    time.sleep(0.3)
    assert waiter.poll() is None  # still waiting
    lock.release()
    assert waiter.stdout.readline().strip() == "got it"
    assert waiter.wait(timeout=60) == 0


def test_the_lock_of_a_killed_process_is_free_at_once(tmp_path):
    run_dir = tmp_path / "run"
    dead = python(f"""
        import os
        from src.core.lock import RunLock
        RunLock({str(run_dir)!r}).acquire()
        os._exit(9)  # no release: the lock file stays, with this process's record in it
        """)
    assert dead.wait(timeout=60) == 9
    assert json.loads((run_dir / LOCK_NAME).read_text())["pid"] == dead.pid
    assert holder_of(run_dir) is None
    with RunLock(run_dir, wait=False):
        assert holder_of(run_dir)["pid"] == os.getpid()
    assert not (run_dir / LOCK_NAME).exists()


def test_release_leaves_the_directory_as_it_was(tmp_path):
    (tmp_path / "kept").mkdir()
    with RunLock(tmp_path / "kept"):
        pass
    assert list((tmp_path / "kept").iterdir()) == []
    with RunLock(tmp_path / "new"):  # created for the lock and empty again: removed
        assert (tmp_path / "new" / LOCK_NAME).exists()
    assert not (tmp_path / "new").exists()


def test_refused_in_this_process_too_and_unwritable_places_are_user_errors(tmp_path):
    with RunLock(tmp_path / "run"):
        with pytest.raises(RuntimeError, match="already locked by this process"):
            RunLock(tmp_path / "run").acquire()
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(UserError, match="cannot be written"):
        RunLock(tmp_path / "file" / "run").acquire()


def test_busy_is_a_user_error():
    assert issubclass(RunBusy, UserError)
