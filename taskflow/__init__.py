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
from taskflow import config as _config  # registers the `taskflow` dask.config section
from taskflow import operators as _operators  # the tasks `h + 1`, `h[0]`... add to a graph
from taskflow import triggers
from taskflow.conditional import case, merge
from taskflow.deploy.schedules import CronSchedule, IntervalSchedule, Schedule
from taskflow.deploy.serve import Deployment, serve
from taskflow.engine.flow_runner import FlowRun
from taskflow.exceptions import (
    FAIL,
    SKIP,
    FlowDefinitionError,
    FlowRunError,
    ParameterError,
    SchedulerUnreachableError,
    TaskflowError,
    UnpicklableTaskError,
    WorkerMismatchError,
)
from taskflow.executors.dask import get_dask_client
from taskflow.flow import Flow, Parameter, flow
from taskflow.graph import flatten, unmapped
from taskflow.history.recorder import install as _install_history
from taskflow.logs import get_run_logger
from taskflow.states import State, StateType
from taskflow.task import Task, task

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
    "Parameter",
    "ParameterError",
    "Schedule",
    "SchedulerUnreachableError",
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

_install_history()  # record every flow run (taskflow.history.enabled)

del _config, _install_history, _operators
