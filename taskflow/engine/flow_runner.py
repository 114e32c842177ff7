"""Run a flow: plan it, hand the plan to an executor, end in a State.

This is the client side.  It knows the executor interface only
(:mod:`taskflow.executors.base`).  While the executor runs the plan, state
events arrive through :meth:`_Recorder.on_event` and log records from workers
are emitted into this process's logging.  When the executor returns, every task
run has reported its final state; keys the executor lost (a worker that kept
dying, a scheduler that went away) become CRASHED, and the tasks that could not
run because of them TRIGGER_FAILED.  The flow run's State follows from its
reference tasks (the terminal ones).
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import dask

from taskflow import config, logs
from taskflow.engine import transitions
from taskflow.engine.events import decode_state
from taskflow.engine.markers import StateMarker
from taskflow.engine.plan import Plan, build_plan, resolve_returns
from taskflow.exceptions import FlowRunError
from taskflow.states import State, StateType

if TYPE_CHECKING:
    from taskflow.executors.base import Executor, Outcome
    from taskflow.flow import Flow

__all__ = ["FlowRun", "run_flow"]

logger = logging.getLogger(logs.FLOW_LOGGER)


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
    task_states : dict
        Task-run name (``total``, ``total-2``...) to its final State.
    dashboard_link : str or None
        Where to watch the run in the Dask dashboard.
    """

    def __init__(
        self,
        flow_name: str,
        run_id: str,
        parameters: dict[str, Any],
        state: State,
        task_states: dict[str, State],
        dashboard_link: str | None,
    ) -> None:
        self.flow_name = flow_name
        self.run_id = run_id
        self.parameters = parameters
        self.state = state
        self.task_states = task_states
        self.dashboard_link = dashboard_link

    @property
    def states(self) -> dict[str, State]:
        """Alias of :attr:`task_states`."""
        return self.task_states

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


class _Recorder:
    """Collects the state events of one run as they arrive (any thread)."""

    def __init__(self, plan: Plan) -> None:
        self.expected = {t.name for t in plan.tasks.values()}
        self.states: dict[str, State] = {}
        self._missing = set(self.expected)
        self._cond = threading.Condition()

    def on_event(self, msg: dict[str, Any]) -> None:
        if msg.get("kind") == "log":
            logs.emit_remote(msg, worker=msg.get("worker", ""))
            return
        name, state = decode_state(msg)
        with self._cond:
            self.states[name] = state
            if state.is_finished():
                self._missing.discard(name)
                if not self._missing:
                    self._cond.notify_all()
            else:
                self._missing.add(name)  # a re-run after a lost worker

    def settle(self, timeout: float) -> None:
        """Wait (bounded) until every task run has reported a final state."""
        with self._cond:
            self._cond.wait_for(lambda: not self._missing, timeout=timeout)


def _final_states(plan: Plan, recorder: _Recorder, outcome: Outcome) -> dict[str, State]:
    """Every task's final State, filling in those the executor lost."""
    states = dict(recorder.states)
    names = plan.names()
    origins = {names[o]: reason for reason, o in outcome.lost.values() if o in names}
    reasons = [reason for reason, _ in outcome.lost.values()]
    for task in plan.tasks.values():  # upstream first
        name = task.name
        if name in states and states[name].is_finished():
            continue
        bad_up = [u for u in task.spec.upstream if states[u].type is StateType.CRASHED
                  or states[u].type is StateType.TRIGGER_FAILED and u in origins]
        if bad_up:
            states[name] = State(
                StateType.TRIGGER_FAILED,
                message=f"upstream task {bad_up[0]!r} crashed",
                ended_at=time.time(),
            )
            continue
        reason = origins.get(name) or (reasons[0] if reasons else "no final state was reported")
        states[name] = transitions.crashed(reason).replace(
            attempts=states[name].attempts if name in states else 0
        )
    return {t.name: states[t.name] for t in plan.tasks.values()}


def run_flow(flow: Flow[..., Any], parameters: dict[str, Any], executor: Executor | None = None) -> FlowRun:
    """Run ``flow`` with ``parameters`` on ``executor`` (default: the shared DaskExecutor)."""
    logs.install_handler()
    graph = flow.graph
    params = flow.bind_parameters(parameters)
    run_id = uuid.uuid4().hex
    plan = build_plan(graph, params, run_id)
    if executor is None:
        from taskflow.executors import default_executor

        executor = default_executor()
    recorder = _Recorder(plan)
    started = time.time()
    link = executor.dashboard_link if plan.steps else None
    extra = {"flow_name": flow.name, "flow_run_id": run_id, "task_run_name": ""}
    logger.info("flow run %s started%s", run_id[:8], f"; dashboard: {link}" if link else "",
                extra=extra)
    if plan.steps:
        outcome = executor.execute(plan, recorder.on_event)
    else:
        from taskflow.executors.base import Outcome

        outcome = Outcome()
    settle = 1.0 if outcome.lost else dask.utils.parse_timedelta(config.get("events.settle-timeout"))
    recorder.settle(settle)
    task_states = _final_states(plan, recorder, outcome)
    names = plan.names()
    reference = {names[k]: task_states[names[k]] for k in plan.reference_keys}
    values = {k: None if isinstance(v, StateMarker) else v for k, v in outcome.values.items()}
    state = transitions.flow_state(reference, started_at=started)
    if state.is_successful():
        state = state.replace(result=resolve_returns(plan, values))
    logger.log(
        logging.INFO if state.is_successful() else logging.ERROR,
        "flow run %s finished in %.2f s: %r", run_id[:8],
        state.ended_at - started if state.ended_at else 0.0, state, extra=extra,
    )
    return FlowRun(flow.name, run_id, params, state, task_states, link)
