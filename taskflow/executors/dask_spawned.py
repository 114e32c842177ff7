"""What this process knows, without asking, of the workers of a LocalCluster it started.

The embedded LocalCluster's workers are started from this interpreter: the
same executable, and (``distributed.worker.multiprocessing-method`` ``spawn``,
Dask's default, or ``fork``) the ``sys.path`` this process had when each was
started (``multiprocessing.spawn`` sends the parent's ``sys.path`` and working
directory to the child, which replaces its own with them).  So for such a
worker the checks of :mod:`~taskflow.executors.dask_checks` are known in
advance, and need no round trip and no import on the worker before the graph:

* its versions are this process's (the same executable, the same ``sys.path``:
  the same distribution metadata);
* a module this process loaded from a file that the same name finds, by the
  standard path finder, on the ``sys.path`` the worker was started with, is
  importable there.

What is not known that way is asked as before: workers started later (adaptive
scaling, a restarted worker: another server id), workers that joined from
elsewhere, a cluster started with another start method (``forkserver`` forks
from a server started earlier) or executable, modules found by other finders
or under entries added to ``sys.path`` after the start, and every module once
``sys.path`` has gained entries since (a module found under the start's path
may import one that is not).

Examples
--------
>>> import sys
>>> spawned = Spawned(sys.path, sys.path, ids=frozenset(), scheduler=None)
>>> spawned.importable("taskflow.executors.dask_spawned")
True
>>> spawned.importable("no_such_module_here")
False
"""
from __future__ import annotations

import importlib.machinery
import multiprocessing.spawn
import os
import sys
from collections.abc import Sequence
from typing import Any

import dask

__all__ = ["Spawned", "spawned_by", "start_path"]

_TRUSTED_METHODS = ("spawn", "fork")


def start_path() -> list[str]:
    """``sys.path`` now: what workers started from here get (taken around a cluster's start)."""
    return list(sys.path)


def spawned_by(cluster: Any, before: Sequence[str]) -> Spawned | None:
    """What is known of ``cluster``'s workers, just started from this process, or None.

    ``before`` is :func:`start_path` just before the cluster was created; its
    servers add their scratch folders to ``sys.path`` while it starts, so the
    workers got a ``sys.path`` between ``before`` and now.  None when nothing is
    known: not a LocalCluster, another start method or executable, or an entry
    of ``sys.path`` removed meanwhile.
    """
    from distributed import LocalCluster, Nanny, Worker

    after = start_path()
    if not isinstance(cluster, LocalCluster) or not set(before) <= set(after):
        return None
    scheduler = getattr(cluster, "scheduler", None)
    kinds = {type(w) for w in getattr(cluster, "workers", {}).values()}
    if scheduler is None or not kinds or not all(issubclass(k, (Nanny, Worker)) for k in kinds):
        return None
    if any(issubclass(k, Nanny) for k in kinds):  # worker processes: how they were started
        method = dask.config.get("distributed.worker.multiprocessing-method", "spawn")
        if method not in _TRUSTED_METHODS:
            return None
        executable = os.fsdecode(multiprocessing.spawn.get_executable() or "")
        if method == "spawn" and executable not in (sys.executable, getattr(sys, "_base_executable", None)):
            return None
    ids = _worker_ids(scheduler)
    if not ids:
        return None
    return Spawned(before, after, ids=frozenset(ids.values()), scheduler=scheduler)


def _worker_ids(scheduler: Any) -> dict[str, str] | None:
    """``{address: server id}`` of the in-process scheduler's workers, or None."""
    try:  # one C-level copy of the dict, atomic under the GIL (the scheduler's loop owns it)
        states = dict.values(scheduler.workers)
        return {ws.address: ws.server_id for ws in list(states)}
    except Exception:
        return None


class Spawned:
    """The workers of a LocalCluster started from this process, and their ``sys.path``.

    ``before`` and ``after`` are ``sys.path`` just before and just after the
    cluster started; ``ids`` the server ids of the workers it started then.
    """

    def __init__(self, before: Sequence[str], after: Sequence[str], *, ids: frozenset[str],
                 scheduler: Any) -> None:
        self.before, self.after = list(before), list(after)
        self._after = set(after)
        self.ids = ids
        self._scheduler = scheduler
        self._importable: dict[tuple[str, str], bool] = {}

    def workers(self) -> dict[str, bool] | None:
        """``{address: started then}`` of the cluster's workers now, read in this
        process (its scheduler runs here); None when they cannot be read."""
        ids = _worker_ids(self._scheduler)
        if ids is None:
            return None
        return {address: sid in self.ids for address, sid in ids.items()}

    def path_grew(self) -> bool:
        """Whether ``sys.path`` has entries now that the workers were not started with."""
        return any(p not in self._after for p in sys.path)

    def importable(self, name: str) -> bool:
        """Whether the workers started then import module ``name`` as this process did:
        the file it was loaded from is what the name finds on their ``sys.path``."""
        origin = _origin(sys.modules.get(name))
        if origin is None:
            return False
        key = (name, origin)
        known = self._importable.get(key)
        if known is None:
            known = self._importable[key] = all(
                _found(name, path) == origin for path in (self.before, self.after)
            )
        return known


def _origin(module: Any) -> str | None:
    spec = getattr(module, "__spec__", None)
    origin = getattr(spec, "origin", None)
    if not isinstance(origin, str) or not os.path.isabs(origin):
        return None  # built in, frozen, made at run time, or a namespace package
    return origin


def _found(name: str, path: list[str]) -> str | None:
    """The file the standard path finder finds for ``name`` on ``path`` (no import)."""
    parts = name.split(".")
    search: list[str] | None = path
    spec = None
    for i in range(len(parts)):
        if search is None:
            return None
        try:
            spec = importlib.machinery.PathFinder.find_spec(".".join(parts[: i + 1]), search)
        except Exception:
            return None
        if spec is None:
            return None
        locations = spec.submodule_search_locations
        search = list(locations) if locations is not None else None
    return spec.origin if spec is not None else None
