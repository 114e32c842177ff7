"""One span annotation per flow run on the scheduler, not one per task.

A flow run's tasks are sent under the run's span (``distributed.span``), so the
dashboard groups a run's work.  The scheduler's spans extension then gives
every task of a span an annotation of its own: ``ts.annotations`` is a fresh
``{"span": {"name": (...), "ids": (...)}}`` per task, its inner dict and tuple
rebuilt for each one (``Span.annotation``), about 400 bytes a task that stay
while the task is in memory: 400 MB for a map of a million children, where
``client.map``'s tasks (no span) hold an empty dict.

:func:`install` adds a scheduler plugin (once per scheduler; what it runs is
pickled by value, so a scheduler without taskflow installed takes it too) whose
``update_graph`` hook, called right after the spans extension annotated a new
graph's tasks, gives every task whose only annotation is a taskflow span the
same annotations object as the other tasks of that span.  Nothing else
changes: the same span, the same values sent to the workers with each task
(where ``distributed`` reads them, and taskflow's ``get_dask_client``), the
same grouping on the dashboard.  Annotations with anything besides the span
(resources, priorities, retries) are left as the scheduler made them.

Examples
--------
>>> from distributed import Client, LocalCluster  # doctest: +SKIP
>>> install(client)  # doctest: +SKIP
True
"""
from __future__ import annotations

import sys
from typing import Any

import cloudpickle

from taskflow.executors.dask_plugins import add_once

__all__ = ["PLUGIN", "install"]

PLUGIN = "taskflow-shared-spans"
_KEEP = 256  # spans remembered (the latest runs'); an older one's new tasks get a fresh copy


def add_plugin(dask_scheduler: Any) -> bool:
    """On the scheduler: add the plugin unless there; True when it was added."""
    if PLUGIN in dask_scheduler.plugins:
        return False
    from distributed.diagnostics.plugin import SchedulerPlugin

    class SharedSpans(SchedulerPlugin):
        name = PLUGIN

        def __init__(self) -> None:
            self.shared: dict[tuple[Any, Any], dict[str, Any]] = {}

        def update_graph(self, scheduler: Any, *args: Any, annotations: Any = None,
                         **kwargs: Any) -> None:
            spans = (annotations or {}).get("span")
            if not spans:
                return
            tasks, shared = scheduler.tasks, self.shared
            for key, ann in spans.items():
                ts = tasks.get(key)
                if ts is None:
                    continue
                own = ts.annotations
                if own is None or len(own) != 1 or own.get("span") is not ann:
                    continue  # something besides the span, or already shared
                try:
                    name, ids = ann["name"], ann["ids"]
                    one = shared.get((name, ids))
                except (KeyError, TypeError):  # not the annotation distributed makes
                    continue
                if one is None:
                    if not any(isinstance(t, str) and t.startswith("flow ") for t in name):
                        continue  # not a flow run's: leave other users' graphs alone
                    if len(shared) >= _KEEP:
                        del shared[next(iter(shared))]
                    one = shared[(name, ids)] = {"span": ann}
                ts.annotations = one

    dask_scheduler.add_plugin(SharedSpans())
    return True


# the scheduler may not have taskflow installed: what it runs goes by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def install(client: Any) -> bool:
    """Add the plugin on ``client``'s scheduler (one round trip, once per client and
    scheduler); False when it could not be (the tasks keep an annotation each)."""
    return add_once(client, PLUGIN, add_plugin)
