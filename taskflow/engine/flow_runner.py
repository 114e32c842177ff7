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

from taskflow import logs
from taskflow.engine import observers, transitions
from taskflow.engine.events import decode_state
from taskflow.engine.plan import Group, Plan, build_plan
from taskflow.exceptions import FlowRunError
from taskflow.results import runs
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
        Where to watch the run in the Dask dashboard (Dask's status page); see
        also :attr:`run_page`.
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

    @property
    def run_page(self) -> str | None:
        """This run's taskflow page on the Dask dashboard (``.../taskflow/run/<run_id>``).

        None when the run had no dashboard (LocalExecutor).  The page is there when
        the scheduler has the taskflow plugin, which DaskExecutor installs.
        """
        link = self.dashboard_link
        if not link:
            return None
        root = link[: -len("status")] if link.endswith("/status") else link.rstrip("/") + "/"
        return f"{root}taskflow/run/{self.run_id}"

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
    """Collects the state events of one run as they arrive (any thread).

    Executors return only once every event of the plan was delivered (or a
    bounded wait for it ran out), so the states are complete when read.
    """

    def __init__(self, watchers: list[observers.RunObserver]) -> None:
        self.states: dict[str, State] = {}
        self._lock = threading.Lock()
        self._watchers = watchers

    def on_event(self, msg: dict[str, Any]) -> None:
        if self._watchers:
            observers.notify(self._watchers, "event", event=msg)
        if msg.get("kind") == "log":
            logs.emit_remote(msg, worker=msg.get("worker", ""))
            return
        name, state = decode_state(msg)
        with self._lock:
            self.states[name] = state


def _final_states(plan: Plan, recorder: _Recorder, outcome: Outcome) -> dict[str, State]:
    """Every task run's final State, filling in those the executor lost."""
    states = dict(recorder.states)
    names = plan.names()
    origins = {names[o]: reason for reason, o in outcome.lost.values() if o in names}
    reasons = [reason for reason, _ in outcome.lost.values()]
    filled: set[str] = set()  # task runs whose end we had to infer: they never reported one
    for task in plan.tasks.values():  # upstream first
        name = task.name
        if name in states and states[name].is_finished():
            continue
        ups = [n for u in task.spec.upstream for n in (u.names() if isinstance(u, Group) else [u])]
        lost_up = [u for u in ups if u in filled]
        if outcome.cancelled:
            states[name] = transitions.cancelled(outcome.cancelled)
        elif lost_up:
            states[name] = State(
                StateType.TRIGGER_FAILED,
                message=f"upstream task {lost_up[0]!r} crashed",
                ended_at=time.time(),
            )
        else:
            reason = origins.get(name) or (reasons[0] if reasons else "no final state was reported")
            states[name] = transitions.crashed(reason).replace(
                attempts=states[name].attempts if name in states else 0
            )
        filled.add(name)
    final: dict[str, State] = {}
    children: dict[str, list[str]] = {}
    for t in plan.tasks.values():
        parent = t.name.rpartition("[")[0] if t.spec.map_index is not None else None
        if parent is not None and parent not in final:
            final[parent] = plan.parents[parent]
            children[parent] = []
        if parent is not None:
            children[parent].append(t.name)
        final[t.name] = states[t.name]
    for parent, state in plan.parents.items():
        final[parent] = _parent_state(state, [final[c] for c in children.get(parent, [])])
    return final


def _parent_state(at_expansion: State, children: list[State]) -> State:
    """A mapped task's own State: how it expanded, then how its children ended."""
    if at_expansion.is_finished():
        return at_expansion  # it could not expand (an upstream failed, lengths differ...)
    n = len(children)
    bad = [c for c in children if not (c.is_successful() or c.is_skipped())]
    if bad:
        return State(StateType.FAILED, message=f"{len(bad)} of {n} mapped children did not succeed",
                     ended_at=time.time())
    skipped = sum(1 for c in children if c.is_skipped())
    if n and skipped == n:  # nothing ran: as Prefect 1, the mapped task is Skipped too
        return State(StateType.SKIPPED, message=f"all {n} mapped children were skipped",
                     ended_at=time.time())
    also = f", {skipped} skipped" if skipped else ""
    return State(StateType.SUCCESS, message=f"{n} mapped children{also}", ended_at=time.time())


def run_flow(
    flow: Flow[..., Any],
    parameters: dict[str, Any],
    executor: Executor | None = None,
    resume: str | None = None,
    run_id: str | None = None,
) -> FlowRun:
    """Run ``flow`` with ``parameters`` on ``executor`` (default: the shared DaskExecutor).

    With ``resume``, re-run that finished run's flow with its parameters, its
    persisted results standing in for their tasks (read from the result store).
    ``run_id`` names the run (default: a new random hex id); a caller that may
    cancel the run (``executor.cancel(run_id)``) chooses it up front.
    """
    logs.install_handler()
    graph = flow.graph
    params, results = runs.prepare_run(flow, parameters, resume)
    run_id = run_id or uuid.uuid4().hex
    plan = build_plan(graph, params, run_id, results)
    runs.begin_run(graph, params, run_id, results)  # store checked before any task runs
    if executor is None:
        from taskflow.executors import default_executor

        executor = default_executor()
    watchers = observers.observers()
    recorder = _Recorder(watchers)
    link = executor.dashboard_link  # may start the embedded cluster: not part of the run
    # A run's duration, everywhere it is shown (this log, the history, the dashboard
    # page), is from here, handed to its executor, to the moment its State is decided.
    started = time.time()
    extra = {"flow_name": flow.name, "flow_run_id": run_id, "task_run_name": ""}
    logger.info("flow run %s started%s", run_id[:8], f"; dashboard: {link}" if link else "",
                extra=extra)
    observers.notify(watchers, "run_started", flow=flow, plan=plan, executor=executor,
                     dashboard_link=link, started_at=started)
    try:
        outcome = executor.execute(plan, recorder.on_event) if graph.nodes else _empty()
    except BaseException as exc:
        observers.notify(watchers, "run_aborted", plan=plan, error=exc)
        raise
    task_states = _final_states(plan, recorder, outcome)
    reference = {
        name: task_states[name]
        for node_name, names in plan.reference().items()
        for name in names or [node_name]  # an empty map stands for itself
    }
    state = transitions.flow_state(reference, started_at=started)
    if outcome.cancelled and any(s.type is StateType.CANCELLED for s in task_states.values()):
        state = transitions.cancelled(outcome.cancelled).replace(started_at=started)
    if state.is_successful():
        try:
            state = state.replace(result=plan.resolve_returns(runs.load_refs(outcome.values)))
        except Exception as e:  # a CACHED return value that cannot be read back
            state = State(StateType.FAILED, message=f"the flow's return value could not be "
                          f"loaded: {type(e).__name__}: {e}", exception=e,
                          started_at=started, ended_at=time.time())
    logger.log(
        logging.INFO if state.is_successful() else logging.ERROR,
        "flow run %s finished in %.2f s: %r", run_id[:8],
        state.duration if state.duration is not None else time.time() - started, state, extra=extra,
    )
    run = FlowRun(flow.name, run_id, params, state, task_states, link)
    observers.notify(watchers, "run_finished", run=run, plan=plan)
    return run


def _empty() -> Outcome:
    from taskflow.executors.base import Outcome

    return Outcome()
