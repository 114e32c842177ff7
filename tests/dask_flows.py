"""Tasks, flows and scheduler plugins used by the Dask executor tests.

They live in an importable module so Dask worker processes (and `dask worker`
subprocesses) load tasks by reference, and so scheduler plugins unpickle on the
scheduler.  Anything that must be seen across processes goes through files;
every wait is a bounded polling loop.
"""
from __future__ import annotations

import os
import signal
import time

from distributed import get_worker
from distributed.diagnostics.plugin import SchedulerPlugin

from taskflow import flow, task
from tests.flows import bump, inc, total

# -- helpers ----------------------------------------------------------------------


def wait_for_file(path: str, timeout: float = 60.0, interval: float = 0.005) -> None:
    """Poll until ``path`` exists; raise TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout} s")
        time.sleep(interval)


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` so a reader polling for ``path`` never sees it half written."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def append_line(path: str, text: str) -> None:
    with open(path, "a") as f:
        f.write(text + "\n")
        f.flush()


def read_lines(path: str) -> list[str]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.rstrip("\n") for line in f if line.strip()]


# -- scheduler plugins -------------------------------------------------------------


class GraphRecorder(SchedulerPlugin):
    """Records the keys of every ``update_graph`` (one per graph submission)."""

    name = "taskflow-test-graphs"

    def __init__(self) -> None:
        self.graphs: list[list[str]] = []

    def update_graph(self, scheduler, *, keys, tasks, **kwargs):  # type: ignore[override]
        self.graphs.append([str(k) for k in tasks])


class MemoryRecorder(SchedulerPlugin):
    """Records ``(type, nbytes)`` of each key when it reaches memory."""

    name = "taskflow-test-memory"

    def __init__(self) -> None:
        self.seen: dict[str, tuple[str | None, int]] = {}
        self.scheduler = None

    async def start(self, scheduler):  # type: ignore[override]
        self.scheduler = scheduler

    def transition(self, key, start, finish, *args, **kwargs):  # type: ignore[override]
        if finish == "memory" and self.scheduler is not None:
            ts = self.scheduler.tasks.get(key)
            if ts is not None:
                self.seen[str(key)] = (ts.type, ts.nbytes)


def plugin_attr(dask_scheduler, name: str, attr: str):  # run with client.run_on_scheduler
    return getattr(dask_scheduler.plugins[name], attr)


# -- keys -------------------------------------------------------------------------


@task
def own_key() -> str:
    """The Dask key this task runs under."""
    return str(get_worker().get_current_task())


@task(name="load-to-s3")
def dashed_key() -> str:
    return str(get_worker().get_current_task())


@flow
def keys_flow():
    return {"plain": own_key(), "dashed": dashed_key()}


FIFTY = 50


@flow
def fifty():
    """50 tasks: 49 independent increments and one total of them."""
    return total([inc(i) for i in range(FIFTY - 1)])


# -- raw outputs and data locality ------------------------------------------------


@task
def make_array(nbytes: int):
    import numpy as np

    return np.ones(nbytes // 8, dtype="float64")


@task
def transform(a):
    a *= 2.0  # in place: the worker holds one array, not two
    return a


@task
def reduce_mean(a) -> float:
    return float(a.mean())


@flow
def array_flow(nbytes: int = 8_000_000):
    return reduce_mean(make_array(nbytes))


@flow
def big_data(nbytes: int = 500_000_000):
    return reduce_mean(transform(make_array(nbytes)))


# -- worker loss ------------------------------------------------------------------


@task
def hold_until_released(workdir: str) -> int:
    """Count the execution, publish this process's pid, wait for the release file."""
    n = bump(os.path.join(workdir, "executions"))
    write_atomic(os.path.join(workdir, f"pid-{n}"), str(os.getpid()))
    wait_for_file(os.path.join(workdir, "release"), timeout=60)
    return n


@flow
def survives_worker_loss(workdir: str):
    return inc(hold_until_released(workdir))


@task
def kill_own_worker() -> int:
    os.kill(os.getpid(), signal.SIGKILL)
    return 0  # never reached


@task
def add_one(x: int) -> int:
    return x + 1


@flow
def gives_up(x: int = 1):
    independent = inc(x)
    crash = kill_own_worker(wait_for=[independent])  # starts once `independent` is done
    return {"dependent": add_one(crash), "independent": independent}


# -- resources --------------------------------------------------------------------


@task(resources={"GPU": 1})
def where_gpu() -> str:
    return get_worker().address


@task
def where_any() -> str:
    return get_worker().address


@flow
def gpu_flow():
    return [where_gpu() for _ in range(3)]


# -- retry delays -----------------------------------------------------------------


@task(retries=1, retry_delay=2, priority=10)
def fails_once_then_waits(workdir: str) -> str:
    """Attempt 1 fails; every attempt appends its start time."""
    path = os.path.join(workdir, "attempts")
    append_line(path, repr(time.time()))
    if len(read_lines(path)) == 1:
        raise RuntimeError("first attempt fails")
    return "a"


@task
def records_start(workdir: str) -> str:
    write_atomic(os.path.join(workdir, "b-started"), repr(time.time()))
    return "b"


@flow
def retry_and_other(workdir: str):
    return [fails_once_then_waits(workdir), records_start(workdir)]


# -- concurrency ------------------------------------------------------------------


@task
def scale(xs: list[int], factor: int) -> list[int]:
    return [x * factor for x in xs]


@task
def listing(n: int) -> list[int]:
    return list(range(n))


@flow
def scaled_sum(n: int = 10, factor: int = 1):
    return total(scale(listing(n), factor))


@task
def until_set(name: str) -> str:
    """Wait (at most 60 s) for the Dask Event ``name``."""
    from distributed import Event

    Event(name).wait(60)
    return name


@flow
def waits_for_event(name: str):
    return until_set(name)
