"""Keys a run keeps on the scheduler, wanted in a keeper's name rather than the client's.

A client that wants a key (:mod:`~taskflow.executors.dask_wants`) is told when it
is in memory: one ``key-in-memory`` message per key, about 480 bytes of the
client's reading a task, 480 MB for a map of a million children that no future
of the client waits on (and bursts of tens of thousands of them decoded at once).
The scheduler tells no one when the wanter has no connection, as with the
pseudo-clients of ``distributed``'s published datasets, queues and variables.
So the keys are wanted by a *keeper*, ``taskflow-keeper-<client id>``.

:func:`keeper_for` adds a scheduler plugin (once per client and scheduler; what it
runs is pickled by value, so a scheduler without taskflow installed takes it
too) that removes a client's keeper when the client goes: its keys are released
then as the client's own would be, so a driver killed mid-run leaves nothing
held.  Where the plugin cannot be added, the client wants the keys itself.

Examples
--------
>>> from distributed import Client, LocalCluster  # doctest: +SKIP
>>> keeper_for(client)  # doctest: +SKIP
'taskflow-keeper-Client-3f2a...'
"""
from __future__ import annotations

import sys
from typing import Any

import cloudpickle

from taskflow.executors.dask_plugins import add_once

__all__ = ["PLUGIN", "keeper_for"]

PLUGIN = "taskflow-keepers"
PREFIX = "taskflow-keeper-"


def add_plugin(dask_scheduler: Any) -> bool:
    """On the scheduler: add the plugin unless there; True when it was added."""
    if PLUGIN in dask_scheduler.plugins:
        return False
    from distributed.diagnostics.plugin import SchedulerPlugin

    class Keepers(SchedulerPlugin):
        name = PLUGIN

        def remove_client(self, scheduler: Any, client: str) -> None:
            keeper = PREFIX + client
            if keeper in scheduler.clients:  # its keys go with the client that made it
                scheduler.remove_client(keeper)

    dask_scheduler.add_plugin(Keepers())
    return True


# the scheduler may not have taskflow installed: what it runs goes by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def keeper_for(client: Any) -> str:
    """The name ``client``'s runs want their kept keys in: its keeper's, once the
    scheduler removes keepers with their clients (one round trip, once per client
    and scheduler), else the client's own."""
    if add_once(client, PLUGIN, add_plugin):
        return PREFIX + str(client.id)
    return str(client.id)
