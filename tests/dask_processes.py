"""Real Dask processes for tests: ``dask scheduler`` and ``dask worker`` subprocesses.

Each process gets its own session (process group), so stopping it takes its
nanny's worker process along, and its output goes to a log file that test
failures print.  Workers see this repository on ``PYTHONPATH`` so they import
the test flows by reference, like an operator's cluster with the package installed.

Examples
--------
>>> cluster = DaskProcesses(tmp_dir)                                    # doctest: +SKIP
>>> address = cluster.scheduler("--port", "0")                          # doctest: +SKIP
>>> cluster.worker(address, "--nthreads", "1"); cluster.wait_for_workers(1)  # doctest: +SKIP
>>> cluster.stop()                                                      # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_TIMEOUT = 60


def spawn(args: list[str], log_path: str, env: Mapping[str, str] | None = None,
          pythonpath: list[str] | None = None, cwd: str = ROOT,
          hostname: str | None = None) -> subprocess.Popen:
    """Start ``python -m dask ARGS`` in its own process group, output to ``log_path``.

    ``python -m`` puts ``cwd`` first on ``sys.path``, before ``pythonpath``.
    With ``hostname`` (as root), the process runs in its own UTS namespace
    under that host name: a worker that looks like another machine while it
    shares this one's filesystem.
    """
    full = dict(os.environ)
    full.update(env or {})
    paths = [*(pythonpath or []), ROOT, full.get("PYTHONPATH", "")]
    full["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    command = [sys.executable, "-m", "dask", *args]
    if hostname is not None:
        command = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', hostname,
                   *command]
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full,
            cwd=cwd,
            start_new_session=True,  # its own process group: the nanny's worker goes with it
        )


def stop(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL whatever is left of its process group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # leftovers of the group, if any
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(timeout=timeout)


def read_logs(paths: list[str]) -> str:
    """The last lines of each log, for a failure message."""
    out = []
    for p in paths:
        if os.path.exists(p):
            with open(p, errors="replace") as f:
                out.append(f"--- {os.path.basename(p)}\n{f.read()[-3000:]}")
    return "\n".join(out)


class DaskProcesses:
    """A scheduler and workers started with the ``dask`` command line, in ``directory``."""

    def __init__(self, directory: Any) -> None:
        self.directory = str(directory)
        self.procs: list[subprocess.Popen] = []
        self.logs: list[str] = []
        self.info: dict[str, Any] = {}

    def _log(self, name: str) -> str:
        path = os.path.join(self.directory, f"{name}-{len(self.logs)}.log")
        self.logs.append(path)
        return path

    def scheduler(self, *args: str, env: Mapping[str, str] | None = None,
                  dashboard: bool = False) -> str:
        """Start ``dask scheduler`` on 127.0.0.1 and return its address once it listens.

        ``self.info`` is then its scheduler file (``services`` has the dashboard
        port when ``dashboard``).
        """
        sched_file = os.path.join(self.directory, f"scheduler-{len(self.logs)}.json")
        board = ["--dashboard-address", "127.0.0.1:0"] if dashboard else ["--no-dashboard"]
        proc = spawn(["scheduler", "--host", "127.0.0.1", *board,
                      "--scheduler-file", sched_file, *args], self._log("scheduler"), env,
                     cwd=self.directory)
        self.procs.append(proc)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dask scheduler did not start\n{read_logs(self.logs)}")
            try:
                with open(sched_file) as f:
                    self.info = json.load(f)
                return str(self.info["address"])
            except (FileNotFoundError, json.JSONDecodeError, KeyError):
                time.sleep(0.02)

    def worker(self, address: str, *args: str, env: Mapping[str, str] | None = None,
               pythonpath: list[str] | None = None,
               hostname: str | None = None) -> subprocess.Popen:
        """Start ``dask worker ADDRESS`` on 127.0.0.1 (no dashboard), under ``hostname`` if given."""
        proc = spawn(["worker", "--host", "127.0.0.1", "--no-dashboard", *args, address],
                     self._log("worker"), env, pythonpath, cwd=self.directory, hostname=hostname)
        self.procs.append(proc)
        return proc

    def wait_for_workers(self, client: Any, n: int) -> None:
        try:
            client.wait_for_workers(n, timeout=START_TIMEOUT)
        except TimeoutError:
            pytest.fail(f"dask workers did not join\n{read_logs(self.logs)}")

    def stop(self) -> None:
        for p in reversed(self.procs):  # workers first, then the scheduler
            stop(p)
        self.procs.clear()
