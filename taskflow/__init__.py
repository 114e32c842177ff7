"""taskflow: workflows of plain Python tasks, run on Dask.

>>> from taskflow import flow, task
>>> @task
... def extract(n: int) -> list[int]:
...     return list(range(n))
>>> @task
... def total(xs: list[int]) -> int:
...     return sum(xs)
>>> @flow
... def etl(n: int = 10):
...     return total(extract(n))
>>> run = etl.run(n=100)            # doctest: +SKIP
>>> run.state, run.result()         # doctest: +SKIP
(Success(...), 4950)
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from taskflow import concurrency as concurrency  # modules users reach as taskflow.X
from taskflow import config as _config  # registers the `taskflow` dask.config section
from taskflow import notify as notify
from taskflow import operators as _operators  # the tasks `h + 1`, `h[0]`... add to a graph
from taskflow import triggers
from taskflow.conditional import case, merge
from taskflow.exceptions import (
    FAIL,
    SKIP,
    FlowDefinitionError,
    FlowRunError,
    LocalStoreWarning,
    ParameterError,
    ResourcesUnavailableError,
    SchedulerUnreachableError,
    SettingError,
    TaskflowError,
    UnpicklableTaskError,
    WorkerMismatchError,
)
from taskflow.flow import Flow, Parameter, flow
from taskflow.graph import flatten, unmapped
from taskflow.logs import get_run_logger
from taskflow.runs import FlowRun
from taskflow.states import State, StateType
from taskflow.task import Task, task

if TYPE_CHECKING:
    from taskflow.deploy.schedules import CronSchedule, IntervalSchedule, Schedule
    from taskflow.deploy.serve import Deployment, serve
    from taskflow.executors.dask import get_dask_client

__version__ = "0.1.0"

__all__ = [
    "FAIL",
    "SKIP",
    "CronSchedule",
    "Deployment",
    "Flow",
    "FlowDefinitionError",
    "FlowRun",
    "FlowRunError",
    "IntervalSchedule",
    "LocalStoreWarning",
    "Parameter",
    "ParameterError",
    "ResourcesUnavailableError",
    "Schedule",
    "SchedulerUnreachableError",
    "SettingError",
    "State",
    "StateType",
    "Task",
    "TaskflowError",
    "UnpicklableTaskError",
    "WorkerMismatchError",
    "case",
    "flatten",
    "flow",
    "get_dask_client",
    "get_run_logger",
    "merge",
    "serve",
    "task",
    "triggers",
    "unmapped",
]

# Names whose modules pull in distributed, croniter or the deployment server:
# imported when first used, so ``import taskflow`` stays light.  (The history
# recorder is installed when the first run starts: taskflow.engine.launch.)
_LAZY = {
    "CronSchedule": "taskflow.deploy.schedules",
    "IntervalSchedule": "taskflow.deploy.schedules",
    "Schedule": "taskflow.deploy.schedules",
    "Deployment": "taskflow.deploy.serve",
    "serve": "taskflow.deploy.serve",
    "get_dask_client": "taskflow.executors.dask",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'taskflow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


del _config, _operators
