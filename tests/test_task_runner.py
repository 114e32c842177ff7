"""The worker-side runner (engine/task_runner.py), without a cluster: plain calls,
plain values, the steps a plan made."""
from __future__ import annotations

import uuid

from taskflow.engine.markers import StateMarker
from taskflow.engine.plan import Length, PlannedTask, build_plan
from taskflow.engine.setup import decide_persistence
from taskflow.engine.task_runner import run_task
from taskflow.results.policy import PersistSettings
from taskflow.results.store import ResultStore
from tests.plan_flows import (
    chain,
    failing,
    mapped_kept,
    refusing_then_inc,
    retrying,
    skipping_then_inc,
)
from tests.plan_flows import planned_tasks as _tasks


def _run(planned: PlannedTask, values: dict, events: list, waits: list | None = None):
    upstream = [values[d] if not isinstance(d, list) else [values[k] for k in d] for d in planned.deps]
    wait = waits.append if waits is not None else (lambda s: None)
    out = run_task(planned.spec, upstream, emit=events.append, wait=wait)
    values[planned.key] = out
    return out


def test_run_task_reports_running_then_success_and_returns_the_output():
    plan = build_plan(chain.graph, {"x": 1}, "r1")
    values: dict = {}
    events: list = []
    outs = [_run(t, values, events) for t in _tasks(plan.start())]
    assert outs == [2, 3]
    assert [(e["name"], e["type"]) for e in events] == [
        ("inc", "RUNNING"), ("inc", "SUCCESS"), ("inc-2", "RUNNING"), ("inc-2", "SUCCESS")]
    assert {e["run"] for e in events} == {"r1"}


def test_run_task_retries_after_the_policy_s_delays_then_succeeds():
    calls: list[int] = []
    plan = build_plan(retrying.graph, {"calls": calls}, "r1")
    (planned,) = _tasks(plan.start())
    events: list = []
    waits: list = []
    assert _run(planned, {}, events, waits) == 3
    assert waits == [3.0, 7.0]
    assert [e["type"] for e in events] == ["RUNNING", "RETRYING", "RUNNING", "RETRYING",
                                           "RUNNING", "SUCCESS"]
    assert [e["attempt"] for e in events][-1] == 3


def test_a_downstream_of_a_failed_run_ends_trigger_failed_without_running():
    plan = build_plan(refusing_then_inc.graph, {}, "r1")
    values: dict = {}
    events: list = []
    first, second = _tasks(plan.start())
    marker = _run(first, values, events)
    assert isinstance(marker, StateMarker) and marker.state.type.value == "FAILED"
    events.clear()
    out = _run(second, values, events)
    assert isinstance(out, StateMarker)
    assert [e["type"] for e in events] == ["TRIGGER_FAILED"]
    assert "refuse" in events[0]["message"]


def test_a_task_raising_skip_ends_skipped_and_its_downstream_is_skipped_without_running():
    plan = build_plan(skipping_then_inc.graph, {}, "r1")
    values: dict = {}
    events: list = []
    first, second = _tasks(plan.start())
    marker = _run(first, values, events)
    assert isinstance(marker, StateMarker) and marker.state.type.value == "SKIPPED"
    assert [(e["type"], e["message"]) for e in events][-1] == ("SKIPPED", "nothing to do today")
    events.clear()
    assert isinstance(_run(second, values, events), StateMarker)
    assert [e["type"] for e in events] == ["SKIPPED"]


def test_a_task_failing_every_attempt_ends_failed_after_its_retries_with_the_error():
    (planned,) = _tasks(build_plan(failing.graph, {}, "r1").start())
    events: list = []
    waits: list = []
    marker = _run(planned, {}, events, waits)
    assert isinstance(marker, StateMarker) and marker.state.type.value == "FAILED"
    assert waits == [0.5]
    assert [(e["type"], e["attempt"]) for e in events] == [
        ("RUNNING", 1), ("RETRYING", 1), ("RUNNING", 2), ("FAILED", 2)]
    assert "still broken" in events[-1]["message"]
    assert "ValueError" in (events[-1].get("tb") or "")


def test_run_task_writes_a_checkpoint_where_the_plan_said():
    store = ResultStore(f"memory://plans-{uuid.uuid4().hex}")
    results = decide_persistence(mapped_kept.graph, PersistSettings(store=store))
    plan = build_plan(mapped_kept.graph, {"n": 2}, "r1", results)
    values: dict = {}
    events: list = []
    first = plan.start()
    (numbers_run,) = _tasks(first)
    (length,) = [s for s in first.steps if isinstance(s, Length)]
    assert _run(numbers_run, values, events) == [0, 1]
    children = _tasks(plan.add_lengths({length.key: (2, 100)}))
    child = children[1]
    assert _run(child, values, events) == 10  # it picks element 1 of the list upstream
    assert store.load(child.spec.persist.write) == 10
    assert [e["type"] for e in events][-1] == "SUCCESS"
    assert events[-1]["location"]
