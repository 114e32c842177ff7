"""Concurrency limits by tag, on a real cluster of processes (2 workers x 4 threads).

Tagged tasks return their own start and end times; overlaps are counted from
them.  Limits are set with taskflow.concurrency.limit / the config and travel
with each run.
"""
from __future__ import annotations

import os
import signal
import threading
import time

import dask
import pytest
from distributed import Client, LocalCluster, Semaphore

from taskflow import StateType, concurrency
from taskflow.concurrency import ConcurrencyLimitError, semaphore_name
from taskflow.engine.observers import RunObserver, add_observer, remove_observer
from taskflow.executors import DaskExecutor, LocalExecutor
from taskflow.history import open_history
from tests import hook_flows as hf
from tests.conftest import CLUSTER_KW
from tests.polling import wait_for


@pytest.fixture(scope="module")
def wide_client():
    with LocalCluster(n_workers=2, threads_per_worker=4, processes=True, **CLUSTER_KW) as cluster:
        with Client(cluster) as client:
            yield client


@pytest.fixture
def db_limit():
    concurrency.limit("db", 3)
    yield
    concurrency.clear()


def _max_overlap(spans: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    now = most = 0
    for _, step in events:  # an end sorts before a start at the same instant
        now += step
        most = max(most, now)
    return most


class _Pending(RunObserver):
    def __init__(self) -> None:
        self.messages: list[str] = []

    def event(self, *, event, **kwargs):
        if event.get("kind") == "state" and event.get("type") == "PENDING":
            self.messages.append(event.get("message") or "")


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_at_most_three_tagged_tasks_run_at_once_while_untagged_ones_go_on(wide_client, db_limit):
    watcher = add_observer(_Pending())
    result: list = []
    runner = threading.Thread(target=lambda: result.append(hf.limited.run(
        executor=DaskExecutor(client=wide_client), items=list(range(12)), free=list(range(4)),
        seconds=1.0)))
    try:
        runner.start()
        # what `taskflow show` reads while it runs: waiting task runs, naming the tag
        wait_for(lambda: any(t.state == "PENDING" and "tag 'db'" in t.message
                           for t in _live_task_runs("limited")), 30, "a PENDING task run", interval=0.1)
        runner.join(120)
    finally:
        remove_observer(watcher)
    (run,) = result
    assert run.state.is_successful(), run.state
    spans = run.result()
    assert len(spans["db"]) == 12
    assert _max_overlap(spans["db"]) == 3  # never more; and the slots were used
    # the 9 waiting tasks held no thread (of 8): untagged ones (scheduled after them)
    # started before the first tagged ones were done, and all ran meanwhile
    first_db_end = min(e for _, e in spans["db"])
    assert min(start for start, _ in spans["free"]) < first_db_end
    last_db_start = max(s for s, _ in spans["db"])
    assert all(end < last_db_start for _, end in spans["free"])
    # tasks that waited said so, naming the tag
    assert watcher.messages and all("tag 'db'" in m and "limit 3" in m for m in watcher.messages)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_two_flow_runs_at_once_share_the_same_three_slots(wide_client, db_limit):
    ex = DaskExecutor(client=wide_client)
    runs: list = []

    def one() -> None:
        runs.append(hf.limited.run(executor=ex, items=list(range(6)), free=[], seconds=1.0))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(150)
    assert len(runs) == 2 and all(r.state.is_successful() for r in runs)
    a, b = runs
    # the two runs went on at the same time...
    assert a.state.started_at < b.state.ended_at and b.state.started_at < a.state.ended_at
    spans = a.result()["db"] + b.result()["db"]
    # ...and their 12 tagged tasks shared 3 slots: at most 3 at once, so 4 rounds of 1 s
    # (with 3 slots per run they would have taken 2)
    assert _max_overlap(spans) == 3
    assert max(e for _, e in spans) - min(s for s, _ in spans) >= 4.0


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_tasks_with_two_limited_tags_take_them_in_one_order_and_never_deadlock(wide_client):
    with dask.config.set({"taskflow.concurrency.limits": {"db": 3, "api": 1}}):
        run = hf.two_tags.run(executor=DaskExecutor(client=wide_client), items=list(range(4)),
                              seconds=0.1)
    assert run.state.is_successful(), run.state
    spans = run.result()
    assert _max_overlap(spans["a"] + spans["b"]) == 1  # the tighter limit holds


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_killed_worker_gives_its_slot_back_within_the_lease_timeout(tmp_path, own_cluster):
    # a cluster of its own, with a short lease timeout (workers inherit the config)
    locks = {"distributed.scheduler.locks.lease-timeout": "3s",
             "distributed.scheduler.locks.lease-validation-interval": "500ms"}
    with dask.config.set(locks):
        with own_cluster(n_workers=1, threads=2) as client:
            concurrency.limit("lease", 1)
            try:
                nap = hf.nap.with_options(tags=["lease"])
                # a worker holds the tag's only slot, then dies
                holder = client.submit(_take_and_hold, "lease", 1, pure=False)
                wait_for(lambda: _leases(client, "lease") == 1, 30, "the slot to be taken")
                pid = holder.result(timeout=30)
                holder.release()  # nobody wants it back: Dask will not run it again
                wait_for(lambda: not client.who_has(), 30, "the holder's result to go")
                os.kill(pid, signal.SIGKILL)
                from taskflow import flow

                @flow
                def after_death():
                    return nap(0.1)

                started = time.monotonic()
                run = after_death.run(executor=DaskExecutor(client=client))
                assert run.state.is_successful(), run.state
                assert time.monotonic() - started < 30  # nothing waits forever
            finally:
                concurrency.clear()


def _take_and_hold(tag: str, n: int) -> int:
    """On a worker: take a slot of ``tag`` and keep it (the lease stays refreshed)."""
    sem = Semaphore(max_leases=n, name=semaphore_name(tag))
    assert sem.acquire(timeout=10)
    _held.append(sem)
    return os.getpid()


_held: list = []


def _leases(client: Client, tag: str) -> int:
    def count(dask_scheduler) -> int:
        ext = dask_scheduler.extensions["semaphores"]
        return len(ext.leases.get(semaphore_name(tag), {}))

    return client.run_on_scheduler(count)


def _live_task_runs(flow: str) -> list:
    with open_history() as h:
        running = [r for r in h.runs(flow=flow, limit=None) if r.state == "RUNNING"]
        return [t for r in running for t in h.task_runs(r.id)]



def test_a_limit_of_zero_or_less_or_not_a_number_is_refused_clearly():
    for bad in (0, -1, 1.5, "3", True):
        with pytest.raises(ConcurrencyLimitError, match="must be a whole number >= 1"):
            concurrency.limit("db", bad)  # type: ignore[arg-type]
    with pytest.raises(ConcurrencyLimitError, match="needs a tag name"):
        concurrency.limit("", 2)
    with dask.config.set({"taskflow.concurrency.limits": {"db": 0}}):
        with pytest.raises(ConcurrencyLimitError, match="tag 'db' must be"):
            hf.limited.run(executor=LocalExecutor(), items=[1], free=[])  # before anything runs


def test_limits_come_from_the_environment_through_dask_config(monkeypatch):
    monkeypatch.setenv("DASK_TASKFLOW__CONCURRENCY__LIMITS", '{"db": 2, "api": 1}')
    dask.config.refresh()
    try:
        assert concurrency.limits() == {"db": 2, "api": 1}
    finally:
        monkeypatch.delenv("DASK_TASKFLOW__CONCURRENCY__LIMITS")
        dask.config.refresh()
    assert concurrency.limits() == {}


@pytest.mark.timeout(60)
def test_on_local_executor_runs_in_several_threads_share_one_semaphore_per_tag(db_limit):
    runs: list = []
    with dask.config.set({"taskflow.concurrency.limits": {"db": 1}}):
        threads = [threading.Thread(target=lambda: runs.append(hf.limited.run(
            executor=LocalExecutor(), items=[1, 2], free=[], seconds=0.2))) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert len(runs) == 3 and all(r.state.type is StateType.SUCCESS for r in runs)
    assert _max_overlap([s for r in runs for s in r.result()["db"]]) == 1


def test_the_runner_takes_a_tasks_limited_slots_in_tag_order_around_all_its_attempts():
    import contextlib

    from taskflow import flow, task
    from taskflow.engine.plan import PlannedTask, build_plan
    from taskflow.engine.task_runner import run_task

    calls: list = []

    @task(tags=["zeta", "alpha", "free"], retries=1)
    def twice(box: list) -> int:
        calls.append("attempt")
        box.append(1)
        if len(box) < 2:
            raise ValueError("again")
        return len(box)

    @flow
    def one(box: list):
        return twice(box)

    @contextlib.contextmanager
    def slots(limits, report):
        from taskflow.states import State, StateType

        for tag, n in limits:
            report(State(StateType.PENDING, message=concurrency.waiting_message(tag, n)))
        calls.append(("take", limits))
        yield
        calls.append("give back")

    with dask.config.set({"taskflow.concurrency.limits": {"zeta": 1, "alpha": 2, "other": 1}}):
        plan = build_plan(one.graph, {"box": []}, "run1")
    (planned,) = [s for s in plan.start().steps if isinstance(s, PlannedTask)]
    events: list = []
    assert run_task(planned.spec, [], emit=events.append, slots=slots) == 2
    assert calls == [("take", [("alpha", 2), ("zeta", 1)]), "attempt", "attempt", "give back"]
    assert [(e["type"], e["message"]) for e in events[:2]] == [
        ("PENDING", "waiting for a slot of tag 'alpha' (concurrency limit 2)"),
        ("PENDING", "waiting for a slot of tag 'zeta' (concurrency limit 1)")]
    assert [e["type"] for e in events[2:]] == ["RUNNING", "RETRYING", "RUNNING", "SUCCESS"]
