"""Where and when flows run: schedules, and the serve process that starts due runs.

* :mod:`~taskflow.deploy.schedules` -- :class:`IntervalSchedule`, :class:`CronSchedule`;
* :mod:`~taskflow.deploy.serve` -- :class:`Deployment`, :class:`Server`, :func:`serve`
  (and ``taskflow serve`` on the command line).

Where runs go (an address, a cluster class with kwargs and adaptive scaling, TLS)
is the :class:`~taskflow.executors.DaskExecutor`'s business, set in code, in the
``taskflow.executor`` config or with ``--address`` / ``--cluster-class``.  The
top-level ``deploy/`` folder of the repository holds the operator recipes.
"""
from taskflow.deploy.schedules import (
    CronSchedule,
    IntervalSchedule,
    Schedule,
    ScheduleError,
    parse_schedule,
)
from taskflow.deploy.serve import Deployment, Server, serve

__all__ = [
    "CronSchedule",
    "Deployment",
    "IntervalSchedule",
    "Schedule",
    "ScheduleError",
    "Server",
    "parse_schedule",
    "serve",
]
