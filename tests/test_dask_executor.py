"""The Dask executor against real Dask components.

Real LocalClusters (worker processes), real scheduler plugins, real worker
deaths.  Tasks live in ``tests/dask_flows.py`` so worker processes import them
by reference; everything that crosses processes goes through files, and every
wait is a bounded polling loop.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import os
import signal
import socket
import threading
import time

import dask
import psutil
import pytest
from dask.utils import key_split
from distributed import Client

from taskflow import (
    SchedulerUnreachableError,
    StateType,
    TaskflowError,
    UnpicklableTaskError,
    flow,
    task,
)
from taskflow.engine.events import events_of
from taskflow.executors import DaskExecutor, default_executor
from tests import dask_flows as df
from tests import flows
from tests.conftest import CLUSTER_KW
from tests.polling import wait_for

MB = 1_000_000


# -- helpers ----------------------------------------------------------------------


@contextlib.contextmanager
def scheduler_plugin(client: Client, plugin):
    """Register ``plugin`` on the scheduler for the block; yield a reader of its attributes."""
    client.register_plugin(plugin, name=plugin.name)
    try:
        yield lambda attr: client.run_on_scheduler(df.plugin_attr, name=plugin.name, attr=attr)
    finally:
        client.unregister_scheduler_plugin(plugin.name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_in_thread(fn, *args, **kwargs) -> concurrent.futures.Future:
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    fut = pool.submit(fn, *args, **kwargs)
    pool.shutdown(wait=False)
    return fut


# -- keys and submission ----------------------------------------------------------


@pytest.mark.timeout(60)
def test_dask_keys_begin_with_the_task_name_and_differ_between_runs(process_executor):
    first = df.keys_flow.run(executor=process_executor)
    second = df.keys_flow.run(executor=process_executor)
    assert first.state.is_successful(), first.state
    assert second.state.is_successful(), second.state
    k1, k2 = first.result(), second.result()

    assert k1["plain"].startswith("own_key-")
    assert k1["plain"] != k2["plain"]
    assert k1["dashed"] != k2["dashed"]
    # a '-' inside a task name would split the dashboard's grouping; it becomes '_'
    assert k1["dashed"].startswith("load_to_s3-")
    assert key_split(k1["dashed"]) == "load_to_s3"
    assert key_split(k1["plain"]) == "own_key"
    # state names stay the task's own name
    assert "load-to-s3" in first.task_states


@pytest.mark.timeout(60)
def test_a_flow_of_fifty_tasks_is_sent_to_dask_in_one_graph_submission(
    process_client, process_executor
):
    with scheduler_plugin(process_client, df.GraphRecorder()) as read:
        run = df.fifty.run(executor=process_executor)
        graphs = read("graphs")

    assert run.state.is_successful(), run.state
    assert run.result() == sum(i + 1 for i in range(df.FIFTY - 1))
    assert len(run.task_states) == df.FIFTY
    assert len(graphs) == 1, [len(g) for g in graphs]
    assert sorted(key_split(k) for k in graphs[0]) == sorted(["inc"] * 49 + ["total"])


@pytest.mark.timeout(60)
def test_a_task_key_holds_the_raw_output_that_dask_measures(process_client, process_executor):
    nbytes = 8 * MB
    with scheduler_plugin(process_client, df.MemoryRecorder()) as read:
        run = df.array_flow.run(executor=process_executor, nbytes=nbytes)
        seen = read("seen")

    assert run.state.is_successful(), run.state
    assert run.result() == 1.0
    arrays = {k: v for k, v in seen.items() if key_split(k) == "make_array"}
    assert len(arrays) == 1, seen
    ((typename, size),) = arrays.values()
    assert typename == "numpy.ndarray"  # not a wrapper around it
    assert nbytes <= size < nbytes + 10_000


# -- data locality ----------------------------------------------------------------


class PeakRSS:
    """Samples this process's RSS in a thread and keeps the peak."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.peak = max(self.peak, self.proc.memory_info().rss)


def _outgoing_transfers(dask_worker):
    return list(dask_worker.transfer_outgoing_log)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_500_mb_array_moves_between_workers_without_passing_through_the_client(
    process_client, process_executor
):
    nbytes = 500 * MB
    me = psutil.Process()
    workers = set(process_client.scheduler_info()["workers"])
    t0 = time.time()
    rss0 = me.memory_info().rss
    read0 = me.io_counters().read_chars
    with PeakRSS() as rss:
        run = df.big_data.run(executor=process_executor, nbytes=nbytes)
    read = me.io_counters().read_chars - read0

    assert run.state.is_successful(), run.state
    assert run.result() == 2.0
    assert rss.peak - rss0 < 50 * MB, f"client RSS grew by {(rss.peak - rss0) / MB:.0f} MB"
    assert read < 5 * MB, f"client read {read / MB:.1f} MB"
    # socket reads are not in read_chars: ask the workers what they sent to non-workers
    to_clients = sum(
        t["total"]
        for log in process_client.run(_outgoing_transfers).values()
        for t in log
        if t["start"] >= t0 - 1 and t["who"] not in workers
    )
    assert to_clients < 5 * MB, f"workers sent {to_clients / MB:.1f} MB to the client"


# -- worker deaths ----------------------------------------------------------------


_wait_for = wait_for  # poll a condition with a deadline (tests/polling.py)


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_a_task_whose_worker_is_killed_runs_again_elsewhere_and_the_flow_succeeds(tmp_path, own_cluster):
    workdir = str(tmp_path)
    with own_cluster(n_workers=2) as client:
        ex = DaskExecutor(client=client)
        fut = run_in_thread(df.survives_worker_loss.run, executor=ex, workdir=workdir)
        pid_file = tmp_path / "pid-1"
        _wait_for(pid_file.exists, 60, "the task did not start")
        first_pid = int(pid_file.read_text())
        os.kill(first_pid, signal.SIGKILL)
        df.write_atomic(str(tmp_path / "release"), "go")
        run = fut.result(timeout=60)

    assert run.state.is_successful(), run.state
    assert df.read_lines(str(tmp_path / "executions")) == ["x", "x"]  # ran twice
    assert int((tmp_path / "pid-2").read_text()) != first_pid
    assert run.result() == 3  # the second execution's output
    assert run.task_states["hold_until_released"].type is StateType.SUCCESS


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_a_task_dask_gives_up_on_ends_crashed_and_its_dependent_trigger_failed(own_cluster):
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with own_cluster(n_workers=2) as client:
            run = df.gives_up.run(executor=DaskExecutor(client=client), x=1)

    states = run.task_states
    crashed = states["kill_own_worker"]
    assert crashed.type is StateType.CRASHED, crashed
    assert "worker" in crashed.message and "died" in crashed.message, crashed.message
    assert states["add_one"].type is StateType.TRIGGER_FAILED, states["add_one"]
    assert "kill_own_worker" in states["add_one"].message
    assert states["inc"].type is StateType.SUCCESS, states["inc"]
    assert run.state.type is StateType.FAILED
    assert "kill_own_worker" in run.state.message, run.state.message


# -- concurrency ------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_two_runs_of_one_flow_at_once_each_get_their_own_result(process_executor):
    barrier = threading.Barrier(2, timeout=30)

    def go(factor: int):
        barrier.wait()
        return df.scaled_sum.run(executor=process_executor, n=100, factor=factor)

    a = run_in_thread(go, 2)
    b = run_in_thread(go, 3)
    ra, rb = a.result(timeout=50), b.result(timeout=50)
    assert ra.state.is_successful(), ra.state
    assert rb.state.is_successful(), rb.state
    assert (ra.result(), rb.result()) == (2 * 4950, 3 * 4950)
    assert ra.run_id != rb.run_id


@pytest.mark.timeout(120)
def test_a_run_ends_right_when_another_client_of_this_process_closes_meanwhile(process_client):
    from distributed import Event

    # Dask's default client is the latest one made: not the executor's
    other = Client(process_client.scheduler.address)
    running = run_in_thread(df.waits_for_event.run, name="other-client-closes",
                            executor=DaskExecutor(client=process_client))
    wait_for(lambda: any(process_client.processing().values()), 60, "the task to start")
    other.close()
    Event("other-client-closes", client=process_client).set()
    run = running.result(timeout=60)
    assert run.state.is_successful(), run.state
    assert run.result() == "other-client-closes"

@pytest.mark.timeout(60)
def test_two_executors_sharing_one_client_each_see_their_own_runs_states(process_client):
    first = DaskExecutor(client=process_client)
    assert flows.chain.run(executor=first, x=0).result() == 3
    second = DaskExecutor(client=process_client)
    assert flows.chain.run(executor=second, x=10).result() == 13
    # the first executor is still usable after the second one subscribed
    t0 = time.monotonic()
    run = flows.chain.run(executor=first, x=20)
    assert run.state.is_successful(), run.state
    assert run.result() == 23
    assert time.monotonic() - t0 < 4  # no wait for events that never come

    a = run_in_thread(flows.chain.run, executor=first, x=100)
    b = run_in_thread(flows.chain.run, executor=second, x=200)
    assert a.result(timeout=30).result() == 103
    assert b.result(timeout=30).result() == 203


# -- retry delays -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_task_waiting_to_retry_does_not_hold_the_only_worker_thread(tmp_path, own_cluster):
    workdir = str(tmp_path)
    with own_cluster(n_workers=1, threads=1) as client:
        run = df.retry_and_other.run(executor=DaskExecutor(client=client), workdir=workdir)

    assert run.state.is_successful(), run.state
    assert run.result() == ["a", "b"]
    a_starts = [float(x) for x in df.read_lines(str(tmp_path / "attempts"))]
    b_start = float((tmp_path / "b-started").read_text())
    assert len(a_starts) == 2
    assert a_starts[1] - a_starts[0] >= 2.0  # the retry delay was honoured
    # B ran on the single thread while A waited for its retry
    assert a_starts[0] < b_start < a_starts[1]
    assert run.task_states["fails_once_then_waits"].attempts == 2
    b_state = run.task_states["records_start"]
    assert b_state.started_at is not None and b_state.started_at < a_starts[1]


# -- connection and submission errors ---------------------------------------------


def test_an_address_that_is_not_a_string_is_refused_at_once_naming_the_fix(process_client):
    with pytest.raises(TaskflowError, match=r"not Client: a Client goes as DaskExecutor\(client=...\)"):
        DaskExecutor(process_client)
    with pytest.raises(TaskflowError, match="scheduler address .a string., not int"):
        DaskExecutor(8786)
    assert DaskExecutor(client=process_client).client is process_client


@pytest.mark.timeout(30)
def test_an_unreachable_scheduler_raises_an_error_naming_the_address_quickly():
    address = f"tcp://127.0.0.1:{free_port()}"
    ex = DaskExecutor(address=address)
    t0 = time.monotonic()
    with dask.config.set({"taskflow.executor.connect-timeout": "3s"}):
        with pytest.raises(SchedulerUnreachableError) as info:
            flows.chain.run(executor=ex, x=1)
    elapsed = time.monotonic() - t0
    # one connection attempt: the timeout is waited once, not once per retry
    assert elapsed < 3 + 2.5, f"took {elapsed:.1f} s"
    assert address in str(info.value)
    assert info.value.address == address


@pytest.mark.timeout(60)
def test_a_task_that_cannot_be_pickled_is_refused_by_name_before_anything_runs(
    tmp_path, process_client, process_executor
):
    lock = threading.Lock()

    @task
    def guarded(x: int) -> int:
        with lock:
            return x

    @flow
    def with_lock():
        flows.record(str(tmp_path / "marker"), "ran")
        return guarded(1)

    with scheduler_plugin(process_client, df.GraphRecorder()) as read:
        with pytest.raises(UnpicklableTaskError) as info:
            with_lock.run(executor=process_executor)
        graphs = read("graphs")

    assert "guarded" in str(info.value)
    assert info.value.task == "guarded"
    assert graphs == []
    assert not (tmp_path / "marker").exists()


# -- where runs go by default -----------------------------------------------------


@pytest.mark.timeout(60)
def test_the_default_executor_follows_the_configured_scheduler_address(process_client):
    address = process_client.scheduler.address
    with scheduler_plugin(process_client, df.GraphRecorder()) as read:
        with dask.config.set({"taskflow.executor.address": address}):
            try:
                assert flows.etl(n=100) == 4950
                run = flows.etl.run(n=10)
                assert default_executor().address == address
            finally:
                default_executor().close()
        graphs = read("graphs")

    assert run.result() == 45
    assert run.dashboard_link == process_client.dashboard_link
    assert len(graphs) == 2
    assert all(sorted(map(key_split, g)) == ["extract", "total"] for g in graphs)


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_a_cluster_class_given_by_import_path_is_started_with_adaptive_scaling():
    ex = DaskExecutor(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={"n_workers": 0, "threads_per_worker": 1, **CLUSTER_KW},
        adapt_kwargs={"minimum": 0, "maximum": 2},
    )
    try:
        run = flows.chain.run(executor=ex, x=1)
        assert run.state.is_successful(), run.state
        assert run.result() == 4
        assert ex.address is not None and ex.address.startswith("tcp://127.0.0.1:")
        assert run.dashboard_link is not None and "127.0.0.1" in run.dashboard_link
    finally:
        ex.close()


@pytest.mark.timeout(30)
def test_a_cluster_class_that_cannot_be_imported_says_what_to_install():
    ex = DaskExecutor(cluster_class="nonexistent_pkg.Cluster")
    with pytest.raises(TaskflowError) as info:
        flows.chain.run(executor=ex, x=1)
    msg = str(info.value)
    assert "nonexistent_pkg.Cluster" in msg
    assert "pip install nonexistent-pkg" in msg


# -- the end of a run -------------------------------------------------------------


def _emit_then_flush(topic: str, run_id: str, n: int, dask_worker=None) -> bool:
    """On a worker: queue ``n`` events in an outbox that would wait a minute, then flush."""
    from taskflow.executors.dask_worker import _Outbox, flush_events

    box = dask_worker.__dict__.setdefault("_taskflow_outboxes", {}).setdefault(
        topic, _Outbox(dask_worker, topic, 60.0))
    for i in range(n):
        box.put({"kind": "state", "run": run_id, "name": f"t{i}", "type": "SUCCESS",
                 "worker": dask_worker.address})
    return flush_events(topic, run_id, dask_worker=dask_worker)


def test_a_workers_flushed_marker_arrives_after_every_event_it_emitted_before(process_client):
    topic, run_id = f"flush-test-{os.getpid()}", "r1"
    seen: list[tuple[str, str]] = []
    done = threading.Event()
    workers = set(process_client.nthreads())

    def handler(event):
        msgs = events_of(event[1]) if event[1].get("kind") == "batch" else [event[1]]
        for msg in msgs:
            seen.append((msg.get("worker", ""), msg.get("name", msg["kind"])))
        if {w for w, what in seen if what == "flushed"} == workers:
            done.set()

    process_client.subscribe_topic(topic, handler)
    try:
        answers = process_client.run(_emit_then_flush, topic, run_id, 50)
        assert set(answers) == workers and all(answers.values())
        assert done.wait(30), seen
    finally:
        process_client.unsubscribe_topic(topic)
    for worker in workers:  # each worker's 50 events, then its marker
        mine = [what for w, what in seen if w == worker]
        assert mine == [f"t{i}" for i in range(50)] + ["flushed"]


def test_a_quick_tasks_start_and_end_in_one_batch_leave_as_its_end_only():
    from taskflow.executors.dask_worker import _superseded_out

    def ev(name, type_, attempt=1, run="r"):
        return {"kind": "state", "run": run, "name": name, "type": type_, "attempt": attempt}

    log = {"kind": "log", "run": "r", "task": "a", "msg": "hello"}
    batch = [ev("a", "RUNNING"), log, ev("a", "SUCCESS"),                     # quick: end only
             ev("b", "RUNNING"),                                              # still running
             ev("c", "RUNNING", 1), ev("c", "RETRYING", 1), ev("c", "RUNNING", 2),
             ev("c", "FAILED", 2),                                            # retries kept
             ev("a", "RUNNING", run="other")]                                 # another run's a
    assert _superseded_out(batch) == [log, ev("a", "SUCCESS"), ev("b", "RUNNING"),
                                      ev("c", "RUNNING", 1), ev("c", "RETRYING", 1),
                                      ev("c", "FAILED", 2), ev("a", "RUNNING", run="other")]


def test_a_small_flows_terminal_tasks_bring_every_end_with_their_results(process_client,
                                                                         monkeypatch):
    from taskflow.executors import dask_events

    complete: list[bool] = []
    original = dask_events.EndTracker.wait_flushed

    def watched(self, client, topic, run_id, plan, timeout):
        complete.append(not self.not_ended(plan))  # every end there before any round trip
        return original(self, client, topic, run_id, plan, timeout)

    monkeypatch.setattr(dask_events.EndTracker, "wait_flushed", watched)
    ex = DaskExecutor(client=process_client)
    for _ in range(3):
        run = flows.one_task.run(executor=ex, x=1)
        assert run.state.is_successful(), run.state
    assert complete == [True, True, True]


def _outbox_waits(topic: str, dask_worker=None) -> list[float]:
    """On a worker: the wait of each flush an outbox schedules as events keep coming
    every 4 ms for 0.16 s, then after a quiet spell (a clock the test moves; binary
    fractions of a second, so the sums are exact)."""
    from taskflow.executors.dask_worker import _Outbox

    now = [100.0]
    box = _Outbox(dask_worker, topic, 1 / 64, 1 / 16, clock=lambda: now[0])
    waits = []
    for i in range(41):
        if i == 40:
            now[0] += 1.0  # a quiet spell
        box.put({"kind": "state", "run": "r", "name": f"t{i}", "type": "SUCCESS"})
        waits.append(box._delay)
        now[0] += 1 / 256
        box.flush()
    return waits


def test_a_busy_workers_outbox_waits_longer_between_batches_and_a_quiet_one_is_quick_again(
        process_client):
    waits = process_client.run(_outbox_waits, f"waits-test-{os.getpid()}")
    short, longest = 1 / 64, 1 / 16  # after 8 intervals busy, each wait doubles up to longest
    for found in waits.values():
        assert found[:32] == [short] * 32  # the first 8 intervals: as quick as ever
        assert found[32:34] == [2 * short, longest] and set(found[34:40]) == {longest}
        assert found[40] == short  # quick again after the quiet spell
