"""Scheduler plugins taskflow adds from the client: once per client and scheduler.

The plugins (:mod:`~taskflow.executors.dask_spans`,
:mod:`~taskflow.executors.dask_keepers`) are added by a function run on the
scheduler (sent by value: the scheduler need not have taskflow installed).
:func:`add_once` runs it once per client and scheduler address (a client that
reconnects to another scheduler adds it there too), and says whether the plugin
is there.
"""
from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["add_once"]

_added: dict[str, weakref.WeakKeyDictionary[Any, str]] = {}


def add_once(client: Any, name: str, add_plugin: Callable[..., Any]) -> bool:
    """Run ``add_plugin`` on ``client``'s scheduler unless done for this client and
    scheduler (one round trip the first time); False when it could not be run."""
    added = _added.setdefault(name, weakref.WeakKeyDictionary())
    try:
        where = client.scheduler.address
        if added.get(client) == where:
            return True
        client.run_on_scheduler(add_plugin)
    except Exception:  # noqa: BLE001 - an old scheduler, a closed client
        return False
    added[client] = where
    return True
