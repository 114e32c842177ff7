"""Wide flows go to Dask in windows (taskflow.dask.submit-window), the same run either way."""
from __future__ import annotations

import threading

import dask
import pytest

from taskflow.engine.observers import RunObserver, add_observer, remove_observer
from taskflow.engine.steps import Batch, Probe
from taskflow.executors.dask_windows import Windows, window_sizes
from taskflow.history import paging
from taskflow.states import StateType
from tests import wide_flows as wf

SMALL = {"taskflow.dask.submit-window": 10, "taskflow.dask.first-window": 3}


def test_a_batch_made_as_it_is_taken_gives_every_step_once_in_order():
    made = []

    def source():
        for i in range(7):
            made.append(i)
            yield Probe(f"p_state-{i}", f"p-{i}")

    w = Windows(size=3, first=2)
    w.add(Batch(source=source()))
    first = w.take()
    assert [s.key for s in first] == ["p_state-0", "p_state-1"]
    # only what was taken is made, and the look-ahead that asked whether the batch
    # would fit one window whole (a window of 3 here: 4 steps made)
    assert len(made) <= 4
    rest = []
    while w.pending:
        rest.append([s.key for s in w.take()])
    assert rest == [["p_state-2", "p_state-3", "p_state-4"], ["p_state-5", "p_state-6"]]


def test_a_batch_of_at_most_four_first_windows_goes_whole_and_a_bigger_one_is_split():
    def probes(n):
        return Batch(source=iter([Probe(f"p_state-{i}", f"p-{i}") for i in range(n)]))

    w = Windows(size=100, first=5)
    w.add(probes(20))
    assert len(w.take()) == 20 and not w.pending
    w = Windows(size=100, first=5)
    w.add(probes(21))
    assert [len(w.take()) for _ in range(2)] == [5, 16]
    w = Windows(size=8, first=5)  # never more than a window at once
    w.add(probes(9))
    assert [len(w.take()) for _ in range(2)] == [5, 4]


def _split_map(n: int, windows: Windows) -> None:
    from taskflow.engine.plan import Length, build_plan
    from tests import sent_flows as sf

    plan = build_plan(sf.alike_counted.graph, {"n": n, "tag": "t"}, "r1")
    (length,) = [s for s in plan.start().steps if isinstance(s, Length)]
    windows.add(plan.add_lengths({length.key: (n, 100)}, lazy=True))


def test_a_split_batchs_second_window_waits_until_its_first_is_heard_from():
    w = Windows(size=10, first=3)
    _split_map(30, w)
    first = w.take()
    w.sending(first)
    # its first tasks are starting: planning and sending more now would compete with them
    assert len(first) == 3 and not w.has_room()
    w.heard("a task run of another window")
    assert not w.has_room()
    w.heard(first[1].spec.name)  # e.g. its Running event
    assert w.has_room()
    assert not w.sending(w.take()).first  # a later window holds none back so


def test_a_first_window_not_heard_from_holds_the_next_one_for_a_bounded_time(monkeypatch):
    from taskflow.executors import dask_windows

    w = Windows(size=10, first=3)
    _split_map(30, w)
    w.sending(w.take())
    assert not w.has_room()
    monkeypatch.setattr(dask_windows, "_FIRST_GRACE", 0.0)  # the grace is over
    assert w.has_room()
    w = Windows(size=100, first=10)  # a batch that goes whole: nothing to wait for
    _split_map(30, w)
    w.sending(w.take())
    assert w.has_room() and not w.pending


def test_window_sizes_come_from_the_config_and_a_bad_one_is_refused():
    assert window_sizes() == (10000, 500)
    with dask.config.set({"taskflow.dask.submit-window": 0}):
        assert window_sizes() == (0, 0)
    with dask.config.set({"taskflow.dask.submit-window": "lots"}), \
            pytest.raises(ValueError, match="taskflow.dask.submit-window must be a whole number"):
        window_sizes()


def test_a_bad_window_setting_is_refused_before_the_run_starts(process_executor):
    class Started(RunObserver):
        runs: list[str] = []

        def run_started(self, *, plan, **kwargs):
            self.runs.append(plan.run.run_id)

    watcher = add_observer(Started())
    try:
        with dask.config.set({"taskflow.dask.first-window": "lots"}), \
                pytest.raises(ValueError, match="taskflow.dask.first-window must be a whole"):
            wf.doubled_total.run(n=3, executor=process_executor)
    finally:
        remove_observer(watcher)
    assert Started.runs == []  # no run started, none recorded as Crashed


def test_a_map_sent_in_windows_runs_every_child_and_its_fan_in(process_executor):
    with dask.config.set(SMALL):
        run = wf.doubled_total.run(n=200, executor=process_executor)
    assert run.state.is_successful(), run.state
    assert run.result() == 2 * sum(range(200))
    children = [s for n, s in run.task_states.items() if n.startswith("double[")]
    assert len(children) == 200 and all(s.type is StateType.SUCCESS for s in children)
    assert run.task_states["double"].type is StateType.SUCCESS


def test_a_map_over_a_map_in_windows_links_child_to_child(process_executor):
    with dask.config.set(SMALL):
        run = wf.doubled_twice.run(n=50, executor=process_executor)
    assert run.result() == [4 * i for i in range(50)]
    assert sum(1 for n in run.task_states if n.startswith("double-2[")) == 50


def test_a_static_fan_out_in_windows_gives_the_same_result(process_executor):
    with dask.config.set(SMALL):
        run = wf.static_fan_out.run(executor=process_executor)
    assert run.result() == 2 * sum(range(120))
    assert sum(1 for s in run.task_states.values() if s.type is StateType.SUCCESS) == 121


def test_a_failing_child_in_a_window_still_fails_the_run(process_executor):
    with dask.config.set(SMALL):
        run = wf.one_bad.run(n=200, bad=137, executor=process_executor)
    assert run.state.type is StateType.FAILED
    assert run.task_states["fails_at[137]"].type is StateType.FAILED
    assert "137 is bad" in run.task_states["fails_at[137]"].message
    others = [s for n, s in run.task_states.items() if n.startswith("fails_at[") and n != "fails_at[137]"]
    assert len(others) == 199 and all(s.type is StateType.SUCCESS for s in others)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_cancelling_mid_map_stops_sending_windows(process_executor):
    started = []

    class CancelAfterSome(RunObserver):
        def event(self, *, event, **kwargs):
            if event.get("type") == "SUCCESS" and str(event.get("name", "")).startswith("nap["):
                started.append(event["name"])
                if len(started) == 5:  # as `taskflow cancel` does: from another thread
                    threading.Thread(target=process_executor.cancel,
                                     args=(event["run"], "enough")).start()

    watcher = add_observer(CancelAfterSome())
    try:
        with dask.config.set(SMALL):
            run = wf.slow_map.run(n=200, seconds=0.05, executor=process_executor)
    finally:
        remove_observer(watcher)
    assert run.state.type is StateType.CANCELLED and run.state.message == "enough"
    children = {n: s for n, s in run.task_states.items() if n.startswith("nap[")}
    assert len(children) == 200  # every child is accounted for, sent or not
    ran = [n for n, s in children.items() if s.type is StateType.SUCCESS]
    cancelled = [n for n, s in children.items() if s.type is StateType.CANCELLED]
    assert len(ran) + len(cancelled) == 200
    assert len(ran) < 60  # two windows of 10 in flight when it stopped, not all 200


def test_a_lazy_plan_knows_a_maps_width_before_its_children_are_made():
    from taskflow.engine.plan import Length, PlannedTask, build_plan

    plan = build_plan(wf.doubled_total.graph, {"n": 5000}, "r1")
    (length,) = [s for s in plan.start().steps if isinstance(s, Length)]
    batch = plan.add_lengths({length.key: (5000, 8 * 5000)}, lazy=True)
    first = batch.take(10)
    assert all(isinstance(s, PlannedTask) for s in first)
    assert len(plan.tasks) < 20  # numbers and the first children only
    assert plan.widths() == {"double": 5000}
    assert plan.task_run_count() == 5002  # numbers, 5,000 children, total
    assert not plan.done
    rest = batch.steps
    assert rest[-1].name == "total" and len(plan.tasks) == 5002 and plan.done


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_cancelling_a_map_of_two_hundred_thousand_plans_no_child_it_did_not_send(
        process_executor, tmp_path):
    from taskflow.history.store import HistoryStore

    n = 200_000
    started = []
    seen = {}

    class CancelEarly(RunObserver):
        def event(self, *, event, **kwargs):
            if event.get("type") == "SUCCESS" and str(event.get("name", "")).startswith("nap["):
                started.append(event["name"])
                if len(started) == 3:
                    threading.Thread(target=process_executor.cancel,
                                     args=(event["run"], "enough")).start()

        def run_finished(self, *, run, plan, **kwargs):
            seen["made"] = len(plan.tasks)

    url = f"sqlite:///{tmp_path / 'history.db'}"
    watcher = add_observer(CancelEarly())
    try:
        with dask.config.set({**SMALL, "taskflow.history.url": url}):
            run = wf.slow_map.run(n=n, seconds=0.05, executor=process_executor)
    finally:
        remove_observer(watcher)
    assert run.state.type is StateType.CANCELLED and run.state.message == "enough"
    assert seen["made"] < 1_000  # the children never sent were never planned
    children = {k: s for k, s in run.task_states.items() if k.startswith("nap[")}
    assert len(children) == n
    ran = [k for k, s in children.items() if s.type is StateType.SUCCESS]
    cancelled = [k for k, s in children.items() if s.type is StateType.CANCELLED]
    assert len(ran) + len(cancelled) == n and len(cancelled) > n - 1_000
    assert run.task_states["nap"].type is StateType.CANCELLED  # stopped, none failed
    with HistoryStore(url) as store:  # recorded as such, every one
        counts = store.task_counts(run.run_id)
    assert sum(counts.values()) == n + 2  # numbers, nap and its children
    assert counts["CANCELLED"] == len(cancelled) + 1  # and the map itself
    with HistoryStore(url) as store:  # children never made are the map's children there too
        own, by_parent = paging.overview(store, run.run_id)
    assert sorted(t.name for t in own) == ["nap", "numbers"]
    assert by_parent == {"nap": {"SUCCESS": len(ran), "CANCELLED": len(cancelled)}}


def test_the_scheduler_says_which_keys_of_a_window_still_run(process_client):
    import time

    from taskflow.executors.dask_windows import still_running

    nap = process_client.submit(time.sleep, 30, key=("nap-abc", 0))
    done = process_client.submit(len, [1], key=("len-abc", 1))
    done.result()
    try:
        keys = [("nap-abc", 0), ("len-abc", 1), ("never-abc", 2)]
        assert still_running(process_client, keys) == {("nap-abc", 0)}  # never: let go
        # a window none of whose keys the scheduler knows yet (its graph is not in): running
        assert still_running(process_client, keys[2:]) == {("never-abc", 2)}
    finally:
        nap.cancel()


def test_a_fan_in_over_a_wide_map_takes_its_children_in_parts_with_the_same_values(
        process_executor, monkeypatch):
    from taskflow.executors import dask_groups

    monkeypatch.setattr(dask_groups, "PART_SIZE", 7)
    values, (parts, widest) = wf.doubled_seen.run(n=50, executor=process_executor).result()
    assert values == [2 * i for i in range(50)]  # every value, in order
    assert parts == 8 and widest <= 8  # while the fan-in ran: 8 parts of at most 7 children
    with dask.config.set(SMALL):  # the fan-in in a window with its last children
        values, (parts, widest) = wf.doubled_seen.run(n=50, executor=process_executor).result()
    assert values == [2 * i for i in range(50)] and parts == 8 and widest <= 8
    run = wf.bad_total.run(n=50, bad=13, executor=process_executor)  # a failed child
    monkeypatch.setattr(dask_groups, "PART_SIZE", 10_000)
    whole = wf.bad_total.run(n=50, bad=13, executor=process_executor)
    assert run.state.type is whole.state.type is StateType.FAILED
    assert {n: s.type for n, s in run.task_states.items()} == {
        n: s.type for n, s in whole.task_states.items()}
    values, (parts, widest) = wf.doubled_seen.run(n=50, executor=process_executor).result()
    assert parts == 0 and widest == 50  # the same flow with its group whole


def test_a_wide_fan_in_s_parts_go_one_at_a_time_each_once_the_scheduler_took_the_one_before(
        own_cluster, monkeypatch):
    """The scheduler handles a client's messages one after the other, reading that
    client again only between them: a million's 100 parts sent at once (one to two
    seconds each there) left its connection unread for 30 s, and the run was lost.
    Here the scheduler takes 50 ms a part: no part is written before the one before it
    was taken in, and none shares a write (a read on the scheduler) with another."""
    import asyncio

    from taskflow.executors import DaskExecutor, dask_groups
    from taskflow.executors.dask_plugins import local_scheduler

    monkeypatch.setattr(dask_groups, "PART_SIZE", 7)
    client = own_cluster(n_workers=1)
    scheduler = local_scheduler(client)
    handle = scheduler.stream_handlers["update-graph"]

    def is_part(msg) -> bool:
        return any("_part" in str(k) for k in msg.get("keys", ()))

    async def slow(**msg):  # a busy scheduler
        if is_part(msg):
            await asyncio.sleep(0.05)
        return await handle(**msg)

    monkeypatch.setitem(scheduler.stream_handlers, "update-graph", slow)
    comm = client.scheduler_comm.comm  # what the client's batched sends write to
    write = comm.write
    writes: list[list] = []  # the parts' keys in each write
    previous_taken_in: list[bool] = []

    def watching(msgs, *args, **kwargs):
        parts = [k for m in msgs if m.get("op") == "update-graph" and is_part(m) for k in m["keys"]]
        if parts and writes:
            previous_taken_in.append(writes[-1][0] in scheduler.tasks)
        if parts:
            writes.append(parts)
        return write(msgs, *args, **kwargs)

    monkeypatch.setattr(comm, "write", watching)
    values, (parts, _) = wf.doubled_seen.run(n=50, executor=DaskExecutor(client=client)).result()
    assert values == [2 * i for i in range(50)] and parts == 8
    assert [len(w) for w in writes] == [1] * 8  # eight writes, each one part
    assert previous_taken_in == [True] * 7
