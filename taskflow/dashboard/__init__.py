"""The taskflow page on the Dask dashboard.

The scheduler's dashboard serves ``/taskflow``: the flow runs the scheduler has
seen (live and recent) and, per run (``/taskflow/run/<run_id>``), the graph
coloured by state, progress by task, each task run's state, attempts and
duration, parameters (secrets masked) and log records.  ``/taskflow/api/runs``
and ``/taskflow/api/runs/<run_id>`` serve the same data as JSON.  The page is
read-only and is served where Dask's dashboard is (host, port and prefix).

How it gets there:

* **Any cluster reached through a DaskExecutor** (the embedded LocalCluster,
  an address, a cluster class): the executor registers the scheduler plugin
  once per client; nothing to set up.  Many clients may share one scheduler.
  ``taskflow.dashboard.install: false`` turns this off.
* **Operators**: ``dask scheduler --preload taskflow.dashboard`` installs it
  when the scheduler starts (see :func:`dask_setup`).

How it knows: task runs send their state changes as Dask events (see
:mod:`taskflow.engine.events`); the plugin keeps the last
``taskflow.dashboard.max-runs`` runs in scheduler memory.  Each run's keys are
also grouped in a Dask span named ``("flow <name>", <run_id>)``, and keys are
named ``<task>-<token>``, so Dask's own task stream and progress bars show task
names and a run can be found there too.

After a run, ``run.run_page`` is the run's page::

    run = etl.run(n=10)
    run.run_page      # 'http://127.0.0.1:8787/taskflow/run/3f2a...'
"""
from __future__ import annotations

import logging
from typing import Any

from taskflow.dashboard.announce import RunAnnouncer, install, page_link
from taskflow.dashboard.events import mask_parameters
from taskflow.dashboard.handlers import PLUGIN_NAME
from taskflow.dashboard.plugin import TaskflowDashboard

__all__ = [
    "PLUGIN_NAME", "RunAnnouncer", "TaskflowDashboard", "dask_setup", "install",
    "mask_parameters", "page_link",
]

logger = logging.getLogger("taskflow.dashboard")


def dask_setup(scheduler: Any) -> None:
    """Preload hook: ``dask scheduler --preload taskflow.dashboard``.

    Adds the :class:`~taskflow.dashboard.plugin.TaskflowDashboard` plugin; the
    scheduler starts it (and so serves the page) once it is up.

    Parameters
    ----------
    scheduler : distributed.Scheduler
        The scheduler being started (Dask passes it).

    Examples
    --------
    On the command line::

        dask scheduler --preload taskflow.dashboard

    >>> from distributed import Scheduler
    >>> dask_setup(Scheduler())  # doctest: +SKIP
    """
    from distributed import Scheduler

    if not isinstance(scheduler, Scheduler):
        logger.warning("taskflow.dashboard is a scheduler preload; ignored on %r", scheduler)
        return
    scheduler.add_plugin(TaskflowDashboard(), name=PLUGIN_NAME, idempotent=True)
