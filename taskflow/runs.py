"""A flow run's outcome: plain data, importable without the engine.

:class:`FlowRun` is what ``flow.run()`` returns; observers, the history and the
dashboard read it, and it gives its facts as the one model of a run
(:attr:`FlowRun.record`, :attr:`FlowRun.task_records`, from :mod:`taskflow.records`).  It is made by :func:`taskflow.engine.flow_runner.run_flow`
but knows nothing of it; :class:`RunnableFlow` is what every layer above the
graph needs of a flow.  :func:`page_link` is the one place a run's page on
the Dask dashboard is spelled.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from taskflow.config import run_url
from taskflow.exceptions import FlowRunError
from taskflow.parameters import json_default
from taskflow.records import FlowRunRecord, TaskRunRecord
from taskflow.secrets import mask_secrets
from taskflow.state_columns import child_of
from taskflow.states import State

if TYPE_CHECKING:
    from taskflow.graph import FlowGraph

__all__ = ["FlowRun", "RunnableFlow", "page_link"]


class RunnableFlow(Protocol):
    """What the engine, observers and deployments need of a flow.

    :class:`taskflow.Flow` is one; naming the protocol here lets the layers
    above the graph take a flow without importing :mod:`taskflow.flow` (which
    reaches up to them for ``run``, ``serve`` and ``visualize``).
    """

    name: str
    result_store: Any
    checkpoint: bool | None

    @property
    def graph(self) -> FlowGraph: ...

    def bind_parameters(self, given: dict[str, Any]) -> dict[str, Any]: ...

    def check_parameters(self, given: dict[str, Any]) -> dict[str, Any]: ...


def page_link(dashboard_link: str | None, run_id: str | None = None) -> str | None:
    """The taskflow page next to a Dask dashboard link (``.../status``).

    Parameters
    ----------
    dashboard_link : str or None
        Dask's dashboard link, e.g. ``client.dashboard_link``.
    run_id : str, optional
        A flow run: its page rather than the list of runs.

    Examples
    --------
    >>> page_link("http://127.0.0.1:8787/status", "abc")
    'http://127.0.0.1:8787/taskflow/run/abc'
    >>> page_link("http://127.0.0.1:8787/status")
    'http://127.0.0.1:8787/taskflow'
    """
    if not dashboard_link:
        return None
    root = dashboard_link[: -len("status")] if dashboard_link.endswith("/status") else (
        dashboard_link.rstrip("/") + "/")
    return f"{root}taskflow/run/{run_id}" if run_id else f"{root}taskflow"


class FlowRun:
    """The record of one flow run: its id, final State, and each task's State.

    Attributes
    ----------
    run_id : str
        Unique id of the run (also inside every Dask key of the run).
    flow_name : str
    parameters : dict
        The parameter values the run used.
    state : State
        The flow run's final State.
    task_states : Mapping
        Task-run name (``total``, ``total-2``, ``square[3]``...) to its final State, in
        the plan's order (a mapped task's own State, then its children's).  A read-only
        mapping: a mapped task's children are kept in a few bytes each and their States
        made as they are read (:class:`~taskflow.state_columns.TaskStates`).
    dashboard_link : str or None
        Where to watch the run in the Dask dashboard (Dask's status page); see
        also :attr:`run_page`.

    Examples
    --------
    >>> run = etl.run(n=100)  # doctest: +SKIP
    >>> run.state, run.result()  # doctest: +SKIP
    (Success(message='1 reference task finished'), 4950)
    >>> run.task_states["extract"].attempts  # doctest: +SKIP
    1
    """

    def __init__(
        self,
        flow_name: str,
        run_id: str,
        parameters: dict[str, Any],
        state: State,
        task_states: Mapping[str, State],
        dashboard_link: str | None,
    ) -> None:
        self.flow_name = flow_name
        self.run_id = run_id
        self.parameters = parameters
        self.state = state
        self.task_states = task_states
        self.dashboard_link = dashboard_link

    @property
    def states(self) -> Mapping[str, State]:
        """Alias of :attr:`task_states`."""
        return self.task_states

    @property
    def record(self) -> FlowRunRecord:
        """The run as the one model of a run has it (as the history keeps it: the state
        as its type's value, the parameters as JSON with secrets masked).

        Examples
        --------
        >>> run = etl.run(n=100)  # doctest: +SKIP
        >>> run.record.state, run.record.duration  # doctest: +SKIP
        ('SUCCESS', 0.41)
        """
        return FlowRunRecord(
            id=self.run_id, flow_name=self.flow_name,
            parameters=json.dumps(mask_secrets(self.parameters), default=json_default),
            state=self.state.type.value, message=self.state.message,
            started_at=self.state.started_at, ended_at=self.state.ended_at,
            dashboard_link=self.dashboard_link,
        )

    @property
    def task_records(self) -> list[TaskRunRecord]:
        """Each task run's final State as a :class:`~taskflow.records.TaskRunRecord`
        (a mapped task's own record, then its children's, as in :attr:`task_states`)."""
        return [
            TaskRunRecord(run_id=self.run_id, name=name, map_index=_map_index(name),
                          state=s.type.value, attempts=s.attempts, message=s.message,
                          started_at=s.started_at, ended_at=s.ended_at)
            for name, s in self.task_states.items()
        ]

    @property
    def run_page(self) -> str | None:
        """This run's page: on the taskflow server when ``taskflow.server.url`` is set
        (``<url>/runs/<run_id>``, there as long as the history is), else on the Dask
        dashboard (``.../taskflow/run/<run_id>``).

        None when neither is known (LocalExecutor, no server).  The dashboard page is
        there while the scheduler runs, when it has the taskflow plugin, which
        DaskExecutor installs.
        """
        return run_url(self.run_id) or page_link(self.dashboard_link, self.run_id)

    def result(self) -> Any:
        """The flow's return value; raises :class:`FlowRunError` if the run did not succeed."""
        if self.state.is_successful():
            return self.state.result
        err = FlowRunError(
            f"flow run {self.run_id} of flow {self.flow_name!r} ended "
            f"{self.state.type.value}: {self.state.message}",
            state=self.state,
            run_id=self.run_id,
            flow=self.flow_name,
        )
        if isinstance(self.state.exception, BaseException):
            raise err from self.state.exception
        raise err

    def __repr__(self) -> str:
        return f"<FlowRun {self.flow_name!r} {self.run_id[:8]} {self.state!r}>"


def _map_index(name: str) -> int | None:
    """``3`` for a mapped child's name ``load[3]``; None for any other task run."""
    found = child_of(name)
    return found[1] if found is not None else None
