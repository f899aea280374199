"""Runs of the real CLI, ``src/train.py`` with Hydra and all, each in its own process, forked from a
server that imported torch, Hydra and the engine once: a run costs its training, not the ten
seconds of imports, and is still a separate process that a test kills for real (kill -9,
SIGTERM) or that dies at a crash point (PROXBIN_CRASH_AT).

    with Zygote(env) as z:
        pid = z.start(["run_name=a", ...], out_dir, PROXBIN_CRASH_AT="last.pt:done#1")
        done = z.wait(pid)          # returncode (negative: killed by that signal), stdout, stderr
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from conftest import ROOT, TRAIN

SERVER = r"""
import json, os, runpy, sys, traceback
sys.path.insert(0, sys.argv[1])
train = sys.argv[2]
import src.train  # noqa: F401  torch, Hydra, the engine: imported once, before any fork
import sklearn.datasets  # noqa: F401  the digits loader's
for line in sys.stdin:
    job = json.loads(line)
    if job["op"] == "wait":
        _, status = os.waitpid(job["pid"], 0)
        print(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}), flush=True)
        continue
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.environ.update(job["env"])
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            for fd, path in ((1, job["stdout"]), (2, job["stderr"])):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
            sys.argv = [train, *job["args"]]
            runpy.run_path(train, run_name="__main__")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    print(json.dumps({"pid": pid}), flush=True)
"""


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


class Zygote:
    def __init__(self, env: dict[str, str], logs: Path):
        self.env, self.logs = env, Path(logs)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.outputs: dict[int, tuple[Path, Path]] = {}
        self.started = 0

    def __enter__(self) -> Zygote:
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(ROOT), str(TRAIN)], cwd=ROOT, env=self.env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)

    def _ask(self, message: dict) -> dict:
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def start(self, args: list[str], **env: str) -> int:
        self.started += 1
        out, err = self.logs / f"{self.started:03d}.out", self.logs / f"{self.started:03d}.err"
        pid = self._ask({"op": "start", "args": args, "env": env, "stdout": str(out), "stderr": str(err)})["pid"]
        self.outputs[pid] = (out, err)
        return pid

    def wait(self, pid: int) -> Done:
        code = self._ask({"op": "wait", "pid": pid})["returncode"]
        out, err = self.outputs.pop(pid)
        return Done(code, out.read_text(), err.read_text())

    def run(self, args: list[str], **env: str) -> Done:
        return self.wait(self.start(args, **env))
