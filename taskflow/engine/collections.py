"""Dask collections returned by tasks: computed once, kept on the cluster.

A task that returns a Dask collection (DataFrame, Series, Array, Bag,
Delayed: anything :func:`dask.is_dask_collection` accepts) returns a *graph*.
Handed over as it is, every consumer would compute it again from its source.
So by default the worker-side runner asks the executor's :class:`Collections`
to **persist** it: its partitions are computed once, on the workers of the
cluster the task runs on, and the task's Dask key holds the persisted
collection (a small object whose graph points at the partitions' futures).
Every consumer receives that same collection, so they share the work.

Who keeps the partitions alive: the futures inside the persisted collection.
The copy in the task's key lives as long as Dask keeps that key (until its
last consumer is done, or the end of the run for the tasks the flow keeps);
each consumer's copy lives while it runs.  When the last copy goes, Dask
releases the partitions, as it releases any other output.

``@task(persist=False)`` keeps the lazy hand-over (for fusing a graph across
tasks).  Writing a collection to a result store is
:mod:`taskflow.results.datasets`; it computes through the same
:class:`Collections`, on the workers.
"""
from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Collections", "LocalCollections", "is_collection"]


def is_collection(value: Any) -> bool:
    """True for a Dask collection (cheap for every other value: no import of dask).

    Examples
    --------
    >>> is_collection(3), is_collection([1, 2])
    (False, False)
    """
    if not hasattr(value, "__dask_graph__"):
        return False
    import dask

    return bool(dask.is_dask_collection(value))


class Collections(Protocol):
    """How the runner persists and computes collections where it runs."""

    def persist(self, value: Any) -> Any:
        """``value`` with its partitions computed and kept; raises what computing raised."""

    def compute(self, *values: Any) -> tuple[Any, ...]:
        """Compute ``values`` (small results: write tasks, counts) and return them."""


class LocalCollections:
    """In-process: Dask's default scheduler (``LocalExecutor``, or outside a flow)."""

    def persist(self, value: Any) -> Any:
        import dask

        (out,) = dask.persist(value)
        return out

    def compute(self, *values: Any) -> tuple[Any, ...]:
        import dask

        return tuple(dask.compute(*values))
