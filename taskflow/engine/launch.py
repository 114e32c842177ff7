"""Start a flow run with the process's defaults: where ``flow.run()`` begins.

:func:`start_run` is the one place the defaults are put together: the shared
:class:`~taskflow.executors.DaskExecutor` when no executor is given, and the
process's :class:`~taskflow.history.recorder.HistoryRecorder` and the dashboard
page's :class:`~taskflow.dashboard.announce.PageObserver`, installed as
observers when the first run starts (so ``import taskflow`` stays light and
every run is still recorded; ``taskflow.history.enabled: false`` turns it off).
The runner itself (:func:`taskflow.engine.flow_runner.run_flow`) is handed
its executor and knows only the executor interface.

Examples
--------
>>> from taskflow import flow, task
>>> from taskflow.executors import LocalExecutor
>>> @task
... def inc(x: int) -> int:
...     return x + 1
>>> @flow
... def f(x: int = 1):
...     return inc(x)
>>> start_run(f, {"x": 2}, executor=LocalExecutor()).result()  # doctest: +SKIP
3
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from taskflow import settings
from taskflow.engine.flow_runner import run_flow

if TYPE_CHECKING:
    from taskflow.executors.base import Executor
    from taskflow.runs import FlowRun, RunnableFlow

__all__ = ["install_default_observers", "start_run"]

_lock = threading.Lock()
_installed = False


def install_default_observers() -> None:
    """Install the history recorder and the page observer, once per process (cheap after)."""
    global _installed
    if _installed:
        return
    with _lock:
        if not _installed:
            from taskflow.dashboard.announce import PageObserver
            from taskflow.engine.observers import add_observer
            from taskflow.history.recorder import install

            install()
            add_observer(PageObserver())  # the run's page on the Dask dashboard
            _installed = True


def start_run(
    flow: RunnableFlow,
    parameters: dict[str, Any],
    executor: Executor | None = None,
    resume: str | None = None,
    run_id: str | None = None,
) -> FlowRun:
    """Run ``flow`` on ``executor`` (default: the shared DaskExecutor), recorded in the history.

    Arguments as :func:`~taskflow.engine.flow_runner.run_flow`.  Every ``taskflow``
    setting is checked first (:func:`taskflow.settings.check`): a bad one is refused
    before anything of the run starts or is recorded.
    """
    settings.check()
    if executor is None:
        from taskflow.executors import default_executor

        executor = default_executor()
    executor.prepare()  # first: what it starts in the background overlaps what follows
    install_default_observers()
    return run_flow(flow, parameters, executor, resume=resume, run_id=run_id)
