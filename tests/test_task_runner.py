"""The plan and the worker-side runner, without a cluster: plain calls, plain values."""
from __future__ import annotations

from taskflow import FAIL, flow, task
from taskflow.engine.markers import StateMarker
from taskflow.engine.plan import Length, PlannedTask, build_plan
from taskflow.engine.task_runner import run_task


@task
def inc(x: int) -> int:
    return x + 1


@task
def numbers(n: int) -> list[int]:
    return list(range(n))


@task(retries=2, retry_delay=[3, 7])
def flaky(calls: list[int]) -> int:
    calls.append(1)
    if len(calls) < 3:
        raise ValueError("not yet")
    return len(calls)


@task
def refuse() -> int:
    raise FAIL("no")


@flow
def chain(x: int = 1):
    return inc(inc(x))


@flow
def mapped(n: int = 3):
    return inc.map(numbers(n))


@flow
def retrying(calls: list):
    return flaky(calls)


@flow
def refusing_then_inc():
    return inc(refuse())


def _tasks(batch) -> list[PlannedTask]:
    return [s for s in batch.steps if isinstance(s, PlannedTask)]


def _run(planned: PlannedTask, values: dict, events: list, waits: list | None = None):
    upstream = [values[d] if not isinstance(d, list) else [values[k] for k in d] for d in planned.deps]
    wait = waits.append if waits is not None else (lambda s: None)
    out = run_task(planned.spec, upstream, emit=events.append, wait=wait)
    values[planned.key] = out
    return out


def test_the_plan_of_a_chain_lists_each_task_run_after_its_upstream():
    plan = build_plan(chain.graph, {"x": 1}, "r1")
    tasks = _tasks(plan.start())
    assert [t.name for t in tasks] == ["inc", "inc-2"]
    assert tasks[1].dep_keys() == [tasks[0].key]
    assert plan.done


def test_a_map_over_a_task_output_waits_for_its_length_then_plans_one_run_per_element():
    plan = build_plan(mapped.graph, {"n": 3}, "r1")
    first = plan.start()
    (length,) = [s for s in first.steps if isinstance(s, Length)]
    assert [t.name for t in _tasks(first)] == ["numbers"] and not plan.done
    children = _tasks(plan.add_lengths({length.key: (3, 100)}))
    assert [t.name for t in children] == ["inc[0]", "inc[1]", "inc[2]"]
    assert plan.done


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
