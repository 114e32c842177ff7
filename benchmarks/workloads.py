"""The benchmark workloads, each written three ways: a Dask graph, submits, a flow.

Every function here lives at module level so Dask worker processes import it by
reference instead of receiving its code.  Plain Dask runs the plain functions;
taskflow runs the ``@task`` versions (named like the plain functions, so the
keys of both share a prefix on the dashboard), which only call the plain ones.

A :class:`Workload` bundles the three spellings of one computation and the
answer all three must give:

* ``graph(uid)`` returns a graph dict and the key to ask for, for
  ``client.get(dsk, keys, sync=False)``;
* ``submit(client, uid)`` calls ``client.submit`` once per task, passing
  futures as arguments, and returns the future of the final task;
* ``flow()`` returns a freshly defined :class:`taskflow.Flow` (traced on its
  first run, so tracing is part of the timed run).

``uid`` goes into every plain-Dask key, so no repetition can be served from a
result still held by the scheduler.  taskflow puts its run id into its keys.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from distributed import Client, Future

from taskflow import Flow, flow, task

__all__ = ["MAP_NAMES", "WORKLOAD_NAMES", "Workload", "make_map_workloads", "make_workloads"]

Graph = dict[str, Any]


# -- plain functions (what every task runs) -----------------------------------------
def noop(i: int) -> int:
    """A no-op task: hand back its argument."""
    return i


def collect(xs: list[int]) -> int:
    """The fan-in task: one task that takes a whole list of outputs."""
    return sum(xs)


def inc(x: int) -> int:
    """One link of the chain."""
    return x + 1


def join(a: int, b: int) -> int:
    """A diamond node: combine two outputs of the previous layer."""
    return a + b


def make_array(nbytes: int) -> np.ndarray:
    """A float64 array of ``nbytes`` bytes, all ones (memory really touched)."""
    return np.ones(nbytes // 8, dtype=np.float64)


def transform(x: np.ndarray) -> np.ndarray:
    """A new array as large as ``x``."""
    return x * 2.0


def reduce_sum(x: np.ndarray) -> float:
    """The array reduced to one float: the only thing the client receives."""
    return float(x.sum())


# -- the same functions as taskflow tasks -----------------------------------------
@task(name="noop")
def noop_task(i: int) -> int:
    return noop(i)


@task(name="collect")
def collect_task(xs: list[int]) -> int:
    return collect(xs)


@task(name="inc")
def inc_task(x: int) -> int:
    return inc(x)


@task(name="join")
def join_task(a: int, b: int) -> int:
    return join(a, b)


@task(name="make_array")
def make_array_task(nbytes: int) -> np.ndarray:
    return make_array(nbytes)


@task(name="transform")
def transform_task(x: np.ndarray) -> np.ndarray:
    return transform(x)


@task(name="reduce_sum")
def reduce_sum_task(x: np.ndarray) -> float:
    return reduce_sum(x)


# -- workloads --------------------------------------------------------------------
@dataclass(frozen=True)
class Workload:
    """One computation, spelled three ways, and the answer each must give.

    Attributes
    ----------
    name : str
        Stable name (also in ``--quick`` mode, where sizes shrink).
    shape : str
        What it is, with its size, for the table.
    n_tasks : int
        Number of tasks (Dask keys) one run computes.
    expected : object
        The final task's output.
    graph : callable
        ``graph(uid) -> (dsk, [final_key])`` for one ``client.get``.
    submit : callable
        ``submit(client, uid) -> Future`` of the final task, one submit per task.
    flow : callable
        ``flow() -> Flow``: a new flow object each call.
    min_reps : int
        Timed repetitions to make at least, whatever ``--reps`` says.
    """

    name: str
    shape: str
    n_tasks: int
    expected: Any
    graph: Callable[[str], tuple[Graph, list[str]]]
    submit: Callable[[Client, str], Future]
    flow: Callable[[], Flow[..., Any]]
    min_reps: int = 1


def _fan_graph(n: int) -> Callable[[str], tuple[Graph, list[str]]]:
    """The plain-Dask graph of ``n`` no-ops and one fan-in (also what a map is)."""

    def graph(uid: str) -> tuple[Graph, list[str]]:
        keys = [f"noop-{uid}-{i}" for i in range(n)]
        dsk: Graph = {k: (noop, i) for i, k in enumerate(keys)}
        dsk[f"collect-{uid}"] = (collect, keys)
        return dsk, [f"collect-{uid}"]

    return graph


def fan(name: str, n: int) -> Workload:
    """``n`` no-op tasks, then one task taking the list of their outputs."""

    graph = _fan_graph(n)

    def submit(client: Client, uid: str) -> Future:
        parts = [client.submit(noop, i, key=f"noop-{uid}-{i}") for i in range(n)]
        return client.submit(collect, parts, key=f"collect-{uid}")

    def make_flow() -> Flow[..., Any]:
        @flow(name=name)
        def fan_flow() -> Any:
            return collect_task([noop_task(i) for i in range(n)])

        return fan_flow

    return Workload(name, f"{n} no-ops -> 1 fan-in", n + 1, sum(range(n)),
                    graph, submit, make_flow)


def chain(name: str, n: int) -> Workload:
    """``n`` tasks in a row, each taking the previous one's output."""

    def graph(uid: str) -> tuple[Graph, list[str]]:
        dsk: Graph = {f"inc-{uid}-0": (inc, 0)}
        for i in range(1, n):
            dsk[f"inc-{uid}-{i}"] = (inc, f"inc-{uid}-{i - 1}")
        return dsk, [f"inc-{uid}-{n - 1}"]

    def submit(client: Client, uid: str) -> Future:
        fut = client.submit(inc, 0, key=f"inc-{uid}-0")
        for i in range(1, n):
            fut = client.submit(inc, fut, key=f"inc-{uid}-{i}")
        return fut

    def make_flow() -> Flow[..., Any]:
        @flow(name=name)
        def chain_flow() -> Any:
            x = inc_task(0)
            for _ in range(n - 1):
                x = inc_task(x)
            return x

        return chain_flow

    return Workload(name, f"{n} tasks in a row", n, n, graph, submit, make_flow)


def _diamond_parents(j: int, width: int) -> tuple[int, int]:
    """Positions in the previous layer that node ``j`` of a layer depends on."""
    return j, (j + 1) % width


def _diamond_answer(layers: int, width: int) -> int:
    row = [noop(j) for j in range(width)]
    for _ in range(layers - 1):
        row = [join(*(row[p] for p in _diamond_parents(j, width))) for j in range(width)]
    return collect(row)


def diamond(name: str, layers: int, width: int) -> Workload:
    """``layers`` layers of ``width`` tasks; each depends on 2 of the layer above.

    Layer 0 is ``width`` no-ops; node ``j`` of every later layer joins nodes
    ``j`` and ``(j + 1) % width`` of the previous layer; one fan-in task takes
    the last layer.
    """

    def graph(uid: str) -> tuple[Graph, list[str]]:
        dsk: Graph = {f"noop-{uid}-0-{j}": (noop, j) for j in range(width)}
        for i in range(1, layers):
            for j in range(width):
                a, b = (f"{'noop' if i == 1 else 'join'}-{uid}-{i - 1}-{p}"
                        for p in _diamond_parents(j, width))
                dsk[f"join-{uid}-{i}-{j}"] = (join, a, b)
        last = f"{'noop' if layers == 1 else 'join'}-{uid}-{layers - 1}"
        dsk[f"collect-{uid}"] = (collect, [f"{last}-{j}" for j in range(width)])
        return dsk, [f"collect-{uid}"]

    def submit(client: Client, uid: str) -> Future:
        row = [client.submit(noop, j, key=f"noop-{uid}-0-{j}") for j in range(width)]
        for i in range(1, layers):
            row = [client.submit(join, *(row[p] for p in _diamond_parents(j, width)),
                                 key=f"join-{uid}-{i}-{j}") for j in range(width)]
        return client.submit(collect, row, key=f"collect-{uid}")

    def make_flow() -> Flow[..., Any]:
        @flow(name=name)
        def diamond_flow() -> Any:
            row = [noop_task(j) for j in range(width)]
            for _ in range(layers - 1):
                row = [join_task(*(row[p] for p in _diamond_parents(j, width)))
                       for j in range(width)]
            return collect_task(row)

        return diamond_flow

    return Workload(name, f"{layers} layers x {width}, 2 deps each -> 1 fan-in",
                    layers * width + 1, _diamond_answer(layers, width), graph, submit, make_flow)


def big_array(name: str, nbytes: int, min_reps: int = 1) -> Workload:
    """Make an ``nbytes`` array on a worker, transform it, reduce it to a float.

    Its time is mostly the kernel giving the workers 2 GB of fresh pages, which
    varies several-fold from run to run on a VM (0.3 to 1.8 s here, with the
    same worker code): ``min_reps`` lets it make more runs than the others.
    """

    def graph(uid: str) -> tuple[Graph, list[str]]:
        dsk: Graph = {
            f"make_array-{uid}": (make_array, nbytes),
            f"transform-{uid}": (transform, f"make_array-{uid}"),
            f"reduce_sum-{uid}": (reduce_sum, f"transform-{uid}"),
        }
        return dsk, [f"reduce_sum-{uid}"]

    def submit(client: Client, uid: str) -> Future:
        a = client.submit(make_array, nbytes, key=f"make_array-{uid}")
        b = client.submit(transform, a, key=f"transform-{uid}")
        return client.submit(reduce_sum, b, key=f"reduce_sum-{uid}")

    def make_flow() -> Flow[..., Any]:
        @flow(name=name)
        def array_flow() -> Any:
            return reduce_sum_task(transform_task(make_array_task(nbytes)))

        return array_flow

    size = f"{nbytes / 1e9:g} GB" if nbytes >= 1e8 else f"{nbytes / 1e6:g} MB"
    return Workload(name, f"{size} array: make -> transform -> float", 3,
                    2.0 * (nbytes // 8), graph, submit, make_flow, min_reps)


def numbers(n: int) -> list[int]:
    return list(range(n))


@task(name="numbers")
def numbers_task(n: int) -> list[int]:
    return numbers(n)


def mapped(name: str, n: int, runtime: bool, min_reps: int = 1) -> Workload:
    """A no-op mapped over ``n`` elements, then one task taking the list.

    Plain Dask is ``client.map`` over ``range(n)`` (submit) or a graph of ``n``
    keys.  taskflow maps over a constant list, or (``runtime``) over the output
    of a task, whose length only the workers know: then only the length travels
    to the client and the map expands after it arrives.
    """

    graph = _fan_graph(n)

    def submit(client: Client, uid: str) -> Future:
        parts = client.map(noop, range(n), key=[f"noop-{uid}-{i}" for i in range(n)])
        return client.submit(collect, parts, key=f"collect-{uid}")

    def make_flow() -> Flow[..., Any]:
        if runtime:
            @flow(name=name)
            def runtime_map() -> Any:
                return collect_task(noop_task.map(numbers_task(n)))

            return runtime_map

        @flow(name=name)
        def constant_map() -> Any:
            return collect_task(noop_task.map(list(range(n))))

        return constant_map

    kind = "a task's output (run-time length)" if runtime else "a constant list"
    return Workload(name, f"map of {n} no-ops over {kind} -> 1 fan-in",
                    n + 1 + (2 if runtime else 0), sum(range(n)), graph, submit, make_flow,
                    min_reps)


def map_chain(name: str, n: int) -> Workload:
    """Two maps in a row over ``n`` elements (child i of the second needs child i of
    the first only), then one fan-in."""

    def graph(uid: str) -> tuple[Graph, list[str]]:
        dsk: Graph = {f"noop-{uid}-{i}": (noop, i) for i in range(n)}
        dsk.update({f"inc-{uid}-{i}": (inc, f"noop-{uid}-{i}") for i in range(n)})
        dsk[f"collect-{uid}"] = (collect, [f"inc-{uid}-{i}" for i in range(n)])
        return dsk, [f"collect-{uid}"]

    def submit(client: Client, uid: str) -> Future:
        first = client.map(noop, range(n), key=[f"noop-{uid}-{i}" for i in range(n)])
        second = client.map(inc, first, key=[f"inc-{uid}-{i}" for i in range(n)])
        return client.submit(collect, second, key=f"collect-{uid}")

    def make_flow() -> Flow[..., Any]:
        @flow(name=name)
        def chain_of_maps() -> Any:
            return collect_task(inc_task.map(noop_task.map(numbers_task(n))))

        return chain_of_maps

    return Workload(name, f"map of {n} no-ops -> map of {n} incs -> 1 fan-in", 2 * n + 1 + 2,
                    sum(range(n)) + n, graph, submit, make_flow)


# every core workload issue 14 names: fan-out 100 (repeated: the same process and
# cluster as the other runs; its first run is benchmarks/first_run.py), 1,000 and 5,000;
# chains of 100 and 500 (and 200, as measured before); the diamond; 1 GB through 3 tasks
WORKLOAD_NAMES = ("fan_100", "fan_1k", "fan_5k", "chain_100", "chain", "chain_500", "diamond",
                  "big_array")
# maps over a constant list and over a task's output (run-time length), 1,000 and 10,000
MAP_NAMES = ("map_1k", "map_runtime_1k", "map_10k", "map_runtime_10k", "map_100k",
             "map_chain_5k")


def make_map_workloads(quick: bool = False) -> list[Workload]:
    """The mapping workloads (``python -m benchmarks.mapping``)."""
    if quick:
        return [
            mapped("map_1k", 100, runtime=False),
            mapped("map_runtime_1k", 100, runtime=True),
            mapped("map_10k", 200, runtime=False),
            mapped("map_runtime_10k", 200, runtime=True),
            mapped("map_100k", 500, runtime=True),
            map_chain("map_chain_5k", 100),
        ]
    return [
        mapped("map_1k", 1_000, runtime=False),
        mapped("map_runtime_1k", 1_000, runtime=True),
        mapped("map_10k", 10_000, runtime=False),
        mapped("map_runtime_10k", 10_000, runtime=True),
        mapped("map_100k", 100_000, runtime=True),
        map_chain("map_chain_5k", 5_000),
    ]


def make_workloads(quick: bool = False) -> list[Workload]:
    """The workloads at full size, or scaled down for a smoke test (``quick``).

    Names stay the same in both modes; ``shape`` gives the actual size.
    """
    if quick:
        return [
            fan("fan_100", 20),
            fan("fan_1k", 100),
            fan("fan_5k", 300),
            chain("chain_100", 10),
            chain("chain", 20),
            chain("chain_500", 50),
            diamond("diamond", 5, 10),
            big_array("big_array", 10_000_000),
        ]
    return [
        fan("fan_100", 100),
        fan("fan_1k", 1_000),
        fan("fan_5k", 5_000),
        chain("chain_100", 100),
        chain("chain", 200),
        chain("chain_500", 500),
        diamond("diamond", 50, 10),
        big_array("big_array", 1_000_000_000, min_reps=7),
    ]
