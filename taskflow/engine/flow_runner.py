"""Run a flow: plan it, hand the plan to an executor, end in a State.

This is the client side.  It knows the executor interface only
(:mod:`taskflow.executors.base`).  While the executor runs the plan, state
events arrive through :meth:`StateCollector.on_event` and log records from workers
are emitted into this process's logging.  When the executor returns, every task
run has reported its final state; keys the executor lost (a worker that kept
dying) become CRASHED, and the tasks that could not run because of them
TRIGGER_FAILED.  When the run's infrastructure went away (the scheduler was
lost: :attr:`~taskflow.executors.base.Outcome.crashed`), every unfinished task run and the flow run end
CRASHED with that reason.  Otherwise the flow run's State follows from its
reference tasks (the terminal ones).
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from taskflow import hooks, logs
from taskflow.engine import observers, transitions
from taskflow.engine.events import StateEvent
from taskflow.engine.plan import Group, Plan, build_plan, node_of
from taskflow.engine.setup import begin_run, decide_persistence, prepare_run
from taskflow.records import mapped_parent_counts
from taskflow.results.manifests import load_refs
from taskflow.runs import FlowRun, RunnableFlow
from taskflow.secrets import mask_secrets
from taskflow.state_columns import NameSet, RunStates, TaskStates
from taskflow.states import FINISHED_TYPES, State, StateType

if TYPE_CHECKING:
    from taskflow.executors.base import Executor, Outcome

__all__ = ["FlowRun", "run_flow"]

logger = logging.getLogger(logs.FLOW_LOGGER)


class StateCollector:
    """Collects the state events of one run as they arrive (any thread).

    Executors return only once every event of the plan was delivered (or a
    bounded wait for it ran out), so the states are complete when read.  A
    mapped task's children are kept in columns (:class:`~taskflow.state_columns.RunStates`):
    a few bytes each, not a State and a name.
    """

    def __init__(self, watchers: list[observers.RunObserver]) -> None:
        self.states = RunStates()
        self._lock = threading.Lock()
        self._watchers = watchers

    def on_event(self, msg: dict[str, Any]) -> None:
        if self._watchers:
            observers.notify(self._watchers, "event", event=msg)
        if msg.get("kind") == "log":
            logs.emit_remote(msg, worker=msg.get("worker", ""))
            return
        ev = StateEvent.from_msg(msg)
        state = ev.state()
        with self._lock:
            self.states.set(ev.name, state)


def _final_states(plan: Plan, recorder: StateCollector, outcome: Outcome) -> TaskStates:
    """Every task run's final State, filling in those the executor lost.

    One pass over the plan's task runs, upstream first; a mapped child is read
    from its task's column by index (no name or State made for one that ended).
    """
    states = recorder.states  # the run is over: filled in place
    names = plan.names() if outcome.lost else {}
    origins = {names[o]: reason for reason, o in outcome.lost.values() if o in names}
    reasons = [reason for reason, _ in outcome.lost.values()]
    filled = NameSet()  # task runs whose end we had to infer: they never reported one
    widths = plan.widths()
    order: list[tuple[str, int | None]] = []  # the task runs in plan order, a map as one
    placed: set[str] = set()
    for task in plan.tasks.values():  # upstream first
        index = task.spec.map_index
        if index is None:
            name = task.name
            order.append((name, None))
            before = states.own.get(name)
            if before is not None and before.is_finished():
                continue
        else:
            parent = node_of(task)
            if parent not in placed:
                placed.add(parent)
                order.append((parent, widths.get(parent, 0)))
            kind = states.kind(parent, index)
            if kind is not None and kind in FINISHED_TYPES:
                continue
            name = task.name
            before = states.child(parent, index)
        if outcome.cancelled:
            states.set(name, transitions.cancelled(outcome.cancelled))
            continue
        if outcome.crashed:  # the scheduler went away: nothing unfinished got to run
            states.set(name, transitions.crashed(outcome.crashed).replace(
                attempts=before.attempts if before is not None else 0))
            continue
        ups = (n for u in task.spec.upstream for n in (u.names() if isinstance(u, Group) else [u]))
        lost_up = next((u for u in ups if u in filled), None)
        if lost_up is not None:
            states.set(name, State(
                StateType.TRIGGER_FAILED,
                message=f"upstream task {lost_up!r} crashed",
                ended_at=time.time(),
            ))
        else:
            reason = origins.get(name) or (reasons[0] if reasons else "no final state was reported")
            states.set(name, transitions.crashed(reason).replace(
                attempts=before.attempts if before is not None else 0))
        filled.add(name)
    # children a stopped run never made (Plan.abandon): one State for all, no step each
    unmade_state = None
    for parent, start, stop in plan.unmade_ranges():
        if unmade_state is None:
            unmade_state = (transitions.cancelled(outcome.cancelled) if outcome.cancelled
                            else transitions.crashed(outcome.crashed or "the run stopped"))
        if parent not in placed:
            placed.add(parent)
            order.append((parent, widths.get(parent, stop)))
        states.fill(parent, start, stop, unmade_state)
    finals: dict[str, State] = {}
    for parent, state in plan.parents.items():
        if parent not in placed:  # it could not expand, or has no children
            placed.add(parent)
            order.append((parent, 0))
        finals[parent] = _parent_state(state, states, parent, widths.get(parent, 0))
    for name, width in order:  # a mapped task whose width is known stands for its children
        if width is not None and name not in finals:
            finals[name] = _parent_state(State(StateType.RUNNING), states, name, width)
    return TaskStates(states, order, finals)


class _Reference(Mapping[str, State]):
    """The reference task runs' States, read from the run's as asked (a terminal map of
    a million children makes no list of names or dict of States at once)."""

    def __init__(self, states: Mapping[str, State], nodes: dict[str, Sequence[str]]) -> None:
        self._states, self._nodes = states, nodes

    def __iter__(self) -> Iterator[str]:
        for node, names in self._nodes.items():
            yield from names or [node]  # an empty map stands for itself

    def __len__(self) -> int:
        return sum(len(names) or 1 for names in self._nodes.values())

    def __getitem__(self, name: str) -> State:
        return self._states[name]


def _parent_state(at_expansion: State, states: RunStates, parent: str, width: int) -> State:
    """A mapped task's own State: how it expanded, then how its children ended."""
    if at_expansion.is_finished():
        return at_expansion  # it could not expand (an upstream failed, lengths differ...)
    counts = {kind: states.count(parent, kind, width) for kind in StateType}
    kind, message = mapped_parent_counts(width, counts)
    return State(kind, message=message, ended_at=time.time())


def run_flow(
    flow: RunnableFlow,
    parameters: dict[str, Any],
    executor: Executor,
    resume: str | None = None,
    run_id: str | None = None,
) -> FlowRun:
    """Run ``flow`` with ``parameters`` on ``executor``.

    The runner is handed its executor; :func:`taskflow.engine.launch.start_run`
    (behind ``flow.run()``) supplies the process's defaults.

    With ``resume``, re-run that finished run's flow with its parameters, its
    persisted results standing in for their tasks (read from the result store).
    ``run_id`` names the run (default: a new random hex id); a caller that may
    cancel the run (``executor.cancel(run_id)``) chooses it up front.
    """
    logs.install_handler()
    executor.prepare()  # work it can do while the flow is traced and planned
    graph = flow.graph
    params, results = prepare_run(flow, parameters, resume)
    results = decide_persistence(graph, results)  # once per node; the plan asks the nodes
    run_id = run_id or uuid.uuid4().hex
    plan = build_plan(graph, params, run_id, results)
    begin_run(graph, params, run_id, results)  # store checked before any task runs
    watchers = observers.observers()
    observers.notify(watchers, "run_preparing", flow=flow, plan=plan)  # while we connect
    recorder = StateCollector(watchers)
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
        # the run ends as the history records it: CANCELLED (an interrupt) or CRASHED
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            aborted = transitions.cancelled(f"interrupted ({type(exc).__name__})")
        else:
            aborted = transitions.crashed(f"the run stopped: {type(exc).__name__}: {exc}")
        _call_flow_hooks(flow, run_id, params, aborted.replace(started_at=started))
        observers.notify(watchers, "run_aborted", plan=plan, error=exc)
        raise
    task_states = _final_states(plan, recorder, outcome)
    reference = _Reference(task_states, plan.reference())
    state = transitions.flow_state(reference, started_at=started, crashed=outcome.crashed)
    if outcome.cancelled and any(s.type is StateType.CANCELLED for s in task_states.values()):
        state = transitions.cancelled(outcome.cancelled).replace(started_at=started)
    if state.is_successful():
        try:
            state = state.replace(result=plan.resolve_returns(load_refs(outcome.values)))
        except Exception as e:  # a CACHED return value that cannot be read back
            state = State(StateType.FAILED, message=f"the flow's return value could not be "
                          f"loaded: {type(e).__name__}: {e}", exception=e,
                          started_at=started, ended_at=time.time())
    logger.log(
        logging.INFO if state.is_successful() else logging.ERROR,
        "flow run %s finished in %.2f s: %s", run_id[:8],
        state.duration if state.duration is not None else time.time() - started,
        repr(state), extra=extra,  # a kept log record must not keep the result alive
    )
    _call_flow_hooks(flow, run_id, params, state)  # before the end is recorded: their logs go with it
    run = FlowRun(flow.name, run_id, params, state, task_states, link)
    observers.notify(watchers, "run_finished", run=run, plan=plan, outcome=outcome)
    return run


def _call_flow_hooks(flow: RunnableFlow, run_id: str, params: dict[str, Any], state: State) -> None:
    option = hooks.hooks_for_flow(state)
    found = getattr(flow, option, ()) if option else ()
    if not found:
        return
    assert option is not None
    info = hooks.FlowRunInfo(flow.name, run_id, mask_secrets(params))
    hooks.call_hooks(found, (flow, info, state), option=option,
                     what=f"flow run {run_id[:8]} of flow {flow.name!r}",
                     extra={"flow_name": flow.name, "flow_run_id": run_id, "task_run_name": ""})


def _empty() -> Outcome:
    from taskflow.executors.base import Outcome

    return Outcome()
