"""Tasks and flows of the results tests (importable, so worker processes load them).

Every task counts its executions in files under the ``counts`` folder it is
given (``<counts>/<task name>``), which works across processes.  Flows take the
store from ``taskflow.results.store`` unless they say otherwise, so each test
chooses its own store.
"""
from __future__ import annotations

import hashlib
import os
import signal
import socket
import time

import cloudpickle

from taskflow import flow, task, unmapped
from taskflow.results import task_input_hash
from tests.flows import bump, count

__all__ = ["count"]


def counted(counts: str, name: str) -> None:
    bump(os.path.join(counts, name))


# -- plain tasks and a pipeline that fails late --------------------------------------
@task
def numbers(n: int, counts: str) -> list[int]:
    counted(counts, "numbers")
    return list(range(n))


@task
def plain_total(xs: list[int], counts: str) -> int:
    counted(counts, "plain_total")
    return sum(xs)


@flow
def plain(n: int = 4, counts: str = ""):
    return plain_total(numbers(n, counts), counts)


@task(checkpoint=True)
def load(n: int, counts: str) -> list[int]:
    counted(counts, "load")
    return list(range(n))


@task(checkpoint=True)
def square(xs: list[int], counts: str) -> list[int]:
    counted(counts, "square")
    return [x * x for x in xs]


@task
def late(xs: list[int], counts: str, flag: str) -> int:
    counted(counts, "late")
    if flag and os.path.exists(flag):
        raise RuntimeError("late fails while the flag file exists")
    return sum(xs)


@flow
def pipeline(n: int = 4, counts: str = "", flag: str = ""):
    return late(square(load(n, counts), counts), counts, flag)


# -- flow-level checkpointing, mapping ------------------------------------------------
@task
def inc(x: int, counts: str) -> int:
    counted(counts, "inc")
    return x + 1


@flow(checkpoint=True)
def all_checkpointed(n: int = 3, counts: str = ""):
    xs = numbers(n, counts)
    return plain_total(inc.map(xs, counts=unmapped(counts)), counts)


@task(target="{flow_name}/parts/{n}/{map_index}.json", serializer="json")
def part(x: int, counts: str) -> int:
    counted(counts, "part")
    return 10 * x


@flow
def mapped_targets(n: int = 3, counts: str = ""):
    return plain_total(part.map(numbers(n, counts), counts=unmapped(counts)), counts)


# -- targets, caches --------------------------------------------------------------------
@task(target="{flow_name}/{n}/total.json", serializer="json")
def target_total(xs: list[int], counts: str) -> int:
    counted(counts, "target_total")
    return sum(xs)


@task
def describe(total: int, counts: str) -> str:
    counted(counts, "describe")
    return f"total={total}"


@flow
def targeted(n: int = 4, counts: str = ""):
    return describe(target_total(numbers(n, counts), counts), counts)


@task(cache_key_fn=task_input_hash)
def cached_double(x: int, counts: str) -> int:
    counted(counts, "cached_double")
    return 2 * x


@task(cache_key_fn=task_input_hash, cache_for=1e-6)
def short_lived(x: int, counts: str) -> int:
    counted(counts, "short_lived")
    return 3 * x


@flow
def caching(x: int = 1, counts: str = ""):
    return cached_double(x, counts), short_lived(x, counts)


# -- serializers ------------------------------------------------------------------------
class Unjsonable:
    pass


@task(checkpoint=True, serializer="json")
def bad_json(counts: str) -> object:
    counted(counts, "bad_json")
    return Unjsonable()


@task
def independent(counts: str) -> str:
    counted(counts, "independent")
    return "still ran"


@flow
def unserializable(counts: str = ""):
    return bad_json(counts), independent(counts)


@task(checkpoint=True, serializer="npy")
def array(n: int):
    import numpy as np

    return np.arange(n, dtype="float64")


@task(checkpoint=True, serializer="parquet")
def frame(n: int):
    import pandas as pd

    return pd.DataFrame({"x": range(n), "y": [str(i) for i in range(n)]})


@task
def summary(arr, df) -> tuple[float, int]:
    return float(arr.sum()), len(df)


@flow
def formats(n: int = 5):
    return summary(array(n), frame(n))


# -- lazy loading: a serializer that counts where it loads --------------------------------
class CountingPickle:
    """Pickle that notes, in ``value["counts"]``, each load and the loading process."""

    name = "counting-pickle"
    ext = ".pkl"

    def dumps(self, value: object) -> bytes:
        return cloudpickle.dumps(value)

    def loads(self, data: bytes) -> object:
        value = cloudpickle.loads(data)
        counted(value["counts"], f"loaded-{os.getpid()}")
        return value


@task(target="{flow_name}/{n}/produced.pkl", serializer=CountingPickle())
def produce(n: int, counts: str) -> dict:
    counted(counts, "produce")
    return {"counts": counts, "data": list(range(n))}


@task
def consume(value: dict, counts: str) -> tuple[int, int]:
    counted(counts, f"consume-{os.getpid()}")
    return sum(value["data"]), os.getpid()


@task
def explode(counts: str) -> int:
    raise RuntimeError("explode")


@task
def never(value: dict, other: int) -> int:
    return 0


@flow
def lazy(n: int = 5, counts: str = ""):
    return consume(produce(n, counts), counts)


@flow
def lazy_unneeded(n: int = 5, counts: str = ""):
    return never(produce(n, counts), explode(counts))


# -- faults -------------------------------------------------------------------------------
@task(checkpoint=True)
def before_outage(counts: str) -> int:
    counted(counts, "before_outage")
    return 1


@task
def stop_endpoint(pid: int, port: int, _: int) -> bool:
    """Kill the S3 server process and wait (bounded) until its port refuses connections."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            return True
        time.sleep(0.01)
    raise RuntimeError("the S3 endpoint did not go away")


@task(checkpoint=True, retries=1)
def after_outage(_: bool, counts: str) -> int:
    counted(counts, "after_outage")
    return 2


@task
def downstream_of_outage(x: int) -> int:
    return x


@flow
def outage(pid: int = 0, port: int = 0, counts: str = ""):
    first = before_outage(counts)
    gone = stop_endpoint(pid, port, first)
    return downstream_of_outage(after_outage(gone, counts))


# -- a large checkpoint (crash during write) ----------------------------------------------
@task(target="big/blob.pkl")
def blob(size: int, counts: str) -> bytes:
    counted(counts, "blob")
    return b"0123456789abcdef" * (size // 16)


@task
def digest(data: bytes) -> tuple[int, str]:
    return len(data), hashlib.sha256(data).hexdigest()


@flow
def big(size: int = 2**20, counts: str = ""):
    return digest(blob(size, counts))
