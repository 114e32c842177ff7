"""Clusters of a test's own, in the style of ``distributed.utils_test.gen_cluster``.

A test that needs a cluster to itself (it kills workers, sets config the workers
must inherit, or needs a given number of workers or threads) takes the
``own_cluster`` fixture (tests/conftest.py) and starts one or more clusters with
it::

    def test_something(own_cluster):
        client = own_cluster(n_workers=1, threads=2)
        ...

Every cluster started so is closed when the test ends, and then :func:`no_leaks`
checks, as distributed's ``check_thread_leak``, ``check_process_leak`` and
``check_instances`` do, that the test left nothing behind: no threads, no child
processes, no open clients, no running in-process schedulers or workers.
distributed's own checks are not reused as they are: they terminate every child
process of the test process when they begin (the session's shared clusters'
workers among them) and clear the registries of clients the session's clusters
are in.

Threads and processes that live as long as the process once started are not
leaks: the history recorder's writer thread, Dask's offload thread and the
``multiprocessing`` resource tracker.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest
from distributed import Client, LocalCluster, Nanny, Scheduler, Worker

__all__ = ["CLUSTER_KW", "no_leaks", "start_cluster"]

CLUSTER_KW = dict(host="127.0.0.1", dashboard_address="127.0.0.1:0", silence_logs=40)

#: Threads that, once started, live as long as the process (not leaks).
LIFELONG_THREADS = ("taskflow-history", "Dask-Offload", "watch message queue",
                    "Dask-Callback-Thread")  # distributed's pool for Future callbacks


def _threads() -> set[threading.Thread]:
    return set(threading.enumerate())


def _children() -> dict[int, psutil.Process]:
    out = {}
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() == psutil.STATUS_ZOMBIE or "resource_tracker" in " ".join(p.cmdline()):
                continue
        except psutil.Error:
            continue  # gone meanwhile
        out[p.pid] = p
    return out


_UP = ("starting", "running", "paused", "closing_gracefully")


def _running(instances: Any) -> list[Any]:
    return [i for i in list(instances) if getattr(getattr(i, "status", None), "name", "") in _UP]


@contextlib.contextmanager
def no_leaks(timeout: float = 15) -> Iterator[None]:
    """Fail the test when, ``timeout`` seconds after the block, it left threads, child
    processes, open clients or running in-process schedulers, nannies or workers."""
    threads, children = _threads(), _children()
    clients = set(Client._instances)
    servers = {cls: set(cls._instances) for cls in (Scheduler, Worker, Nanny)}
    yield
    multiprocessing.active_children()  # reap the children that ended

    def leaks() -> list[str]:
        out = [f"thread {t.name!r}" for t in _threads() - threads
               if t.is_alive() and not t.name.startswith(LIFELONG_THREADS)]
        out += [f"child process {pid} ({' '.join(p.cmdline()[-3:])})"
                for pid, p in _children().items() if pid not in children and _alive(p)]
        out += [f"open client {c!r}" for c in set(Client._instances) - clients
                if c.status not in ("closed", "closing")]
        for cls, before in servers.items():
            out += [f"running {cls.__name__} {s!r}" for s in _running(set(cls._instances) - before)]
        return out

    deadline = time.monotonic() + timeout
    found = leaks()
    while found and time.monotonic() < deadline:
        time.sleep(0.05)
        found = leaks()
    if found:
        pytest.fail("the test left behind: " + "; ".join(found), pytrace=False)


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def start_cluster(stack: contextlib.ExitStack) -> Callable[..., Client]:
    """A function that starts a LocalCluster and its Client, closed when ``stack`` closes."""

    def start(n_workers: int = 1, threads: int = 1, processes: bool = True, **kw: Any) -> Client:
        options = {**CLUSTER_KW, **({} if processes else {"host": None}), **kw}
        cluster = stack.enter_context(LocalCluster(
            n_workers=n_workers, threads_per_worker=threads, processes=processes, **options))
        client = Client(cluster)
        stack.callback(client.close)  # not its __exit__: a test may use it in a with block
        return client

    return start
