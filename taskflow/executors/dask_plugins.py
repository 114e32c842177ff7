"""Scheduler plugins taskflow adds from the client: once per client and scheduler.

The plugins (:mod:`~taskflow.executors.dask_spans`,
:mod:`~taskflow.executors.dask_keepers`) are added by a function run on the
scheduler (sent by value: the scheduler need not have taskflow installed).
:func:`add_once` runs it once per client and scheduler address (a client that
reconnects to another scheduler adds it there too), and says whether the plugin
is there.

The scheduler of a LocalCluster started in this process (the embedded one) is an
object here: :func:`local_scheduler` finds it, and :func:`on_scheduler` calls the
function on it on the event loop they share, without a round trip or pickling.
"""
from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["add_once", "local_scheduler", "on_scheduler"]

_added: dict[str, weakref.WeakKeyDictionary[Any, str]] = {}


def local_scheduler(client: Any) -> Any:
    """The ``distributed.Scheduler`` object ``client`` talks to, when it lives in this
    process on the client's own event loop (a LocalCluster started here); else None."""
    cluster = getattr(client, "cluster", None)
    scheduler = getattr(cluster, "scheduler", None)
    if scheduler is None or getattr(cluster, "loop", None) is not client.loop:
        return None
    from distributed import Scheduler

    try:
        same = isinstance(scheduler, Scheduler) and scheduler.address == client.scheduler.address
    except Exception:  # noqa: BLE001 - not started, closed
        return None
    return scheduler if same else None


def on_scheduler(client: Any, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args, dask_scheduler=...)`` on ``client``'s scheduler, as
    ``client.run_on_scheduler`` does (a coroutine function is awaited there); called
    directly, on the shared event loop, when that scheduler is in this process."""
    scheduler = local_scheduler(client)
    if scheduler is None:
        return client.run_on_scheduler(fn, *args)

    async def call() -> Any:
        out = fn(*args, dask_scheduler=scheduler)
        return await out if inspect.isawaitable(out) else out

    return client.sync(call)


def add_once(client: Any, name: str, add_plugin: Callable[..., Any]) -> bool:
    """Run ``add_plugin`` on ``client``'s scheduler unless done for this client and
    scheduler (one round trip the first time, none for a scheduler in this process);
    False when it could not be run."""
    added = _added.setdefault(name, weakref.WeakKeyDictionary())
    try:
        where = client.scheduler.address
        if added.get(client) == where:
            return True
        on_scheduler(client, add_plugin)
    except Exception:  # noqa: BLE001 - an old scheduler, a closed client
        return False
    added[client] = where
    return True
