"""Run history: what a run leaves in the store, on SQLite files and a real PostgreSQL."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import dask
import pytest
import sqlalchemy as sa

from taskflow import flow, task
from taskflow.executors import DaskExecutor, LocalExecutor
from taskflow.history import HistoryError, UnknownRunError, open_history
from taskflow.history.store import WriteBatch
from tests import flows, history_flows
from tests.fixtures_postgres import postgres_server, postgres_url  # noqa: F401
from tests.polling import wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _sqlite(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'history.db'}"


@pytest.fixture
def sqlite_url(tmp_path):
    """Runs in this test are recorded into a SQLite file of its own."""
    url = _sqlite(tmp_path)
    with dask.config.set({"taskflow.history.url": url}):
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def history_url(request, tmp_path):
    """The same test on a SQLite file and on a database of a real PostgreSQL server."""
    url = _sqlite(tmp_path) if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    with dask.config.set({"taskflow.history.url": url}):
        yield url


def wait_until(condition, timeout=20.0, what="condition"):
    """Poll ``condition`` until it is true; fail after ``timeout`` seconds."""
    return wait_for(condition, timeout, what)


# -- what a run leaves --------------------------------------------------------------------
def test_a_run_is_recorded_with_its_task_runs_and_their_logs(history_url):
    run = flows.etl.run(n=5, executor=LocalExecutor())
    with open_history() as history:
        record = history.get_run(run.run_id)
        tasks = history.task_runs(run.run_id)
        logs = history.logs(run.run_id)
    assert record.flow_name == "etl" and record.state == "SUCCESS"
    assert record.params == {"n": 5} and record.message == run.state.message
    assert record.started_at <= record.ended_at and record.executor == "LocalExecutor()"
    assert record.pid == os.getpid() and record.heartbeat >= record.started_at
    assert [(t.name, t.state, t.attempts, t.worker) for t in tasks] == [
        ("extract", "SUCCESS", 1, "local"), ("total", "SUCCESS", 1, "local")]
    assert tasks[0].key.startswith("extract-") and tasks[0].duration >= 0
    assert [(rec.task, rec.level, rec.message) for rec in logs] == [
        ("total", logging.INFO, "summing 5 numbers")]


def test_failures_keep_their_message_traceback_and_downstream_trigger_failures(history_url):
    run = history_flows.partly_failing.run(x=1, executor=LocalExecutor())
    with open_history() as history:
        record = history.get_run(run.run_id)
        tasks = {t.name: t for t in history.task_runs(run.run_id)}
    assert record.state == "FAILED" and "'inc-2'" in record.message
    assert tasks["boom"].state == "FAILED" and "boom 2" in tasks["boom"].message
    assert "ValueError" in tasks["boom"].traceback
    assert tasks["inc-2"].state == "TRIGGER_FAILED" and tasks["inc-2"].attempts == 0


def test_retries_are_counted_as_attempts_of_one_task_run(sqlite_url, tmp_path):
    run = history_flows.retried.run(path=str(tmp_path / "count"), fail_times=2,
                                    executor=LocalExecutor())
    with open_history() as history:
        (t,) = history.task_runs(run.run_id)
    assert (t.name, t.state, t.attempts, t.traceback) == ("flaky", "SUCCESS", 3, None)


def test_mapped_parents_get_the_state_the_flow_runner_decided(history_url):
    run = history_flows.mapped.run(n=4, executor=LocalExecutor())
    with open_history() as history:
        tasks = {t.name: t for t in history.task_runs(run.run_id)}
        child_logs = history.logs(run.run_id, task="noisy")
        one_child = history.task_runs(run.run_id, task="noisy[2]")
    assert tasks["noisy"].state == "SUCCESS" and tasks["noisy"].message == "4 mapped children"
    assert [tasks[f"noisy[{i}]"].map_index for i in range(4)] == [0, 1, 2, 3]
    assert sorted(rec.message for rec in child_logs) == [f"child sees {i}" for i in range(4)]
    assert [t.name for t in one_child] == ["noisy[2]"]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_run_of_ten_thousand_tasks_loses_no_event(sqlite_url, executor2):
    # on the processes cluster: 20,000 state events from two worker processes,
    # twenty times the scheduler's buffer of 1,000 per topic
    run = history_flows.many.run(n=10_000, executor=executor2)
    assert run.state.is_successful()
    with open_history() as history:
        tasks = history.task_runs(run.run_id)
        record = history.get_run(run.run_id)
    assert record.state == "SUCCESS"
    assert len(tasks) == 10_002  # extract, the mapped parent, 10,000 children
    assert {t.state for t in tasks} == {"SUCCESS"}
    assert all(t.attempts == 1 for t in tasks if t.name != "inc")
    assert {t.name for t in tasks} >= {f"inc[{i}]" for i in range(10_000)}


@pytest.mark.slow
def test_a_dask_run_records_every_event_past_the_schedulers_buffer_of_1000(sqlite_url,
                                                                          process_client):
    # 1,200 children send 2,400 state events and 1,200 log records from worker processes.
    run = history_flows.mapped.run(n=1200, executor=DaskExecutor(client=process_client))
    assert run.state.is_successful()
    with open_history() as history:
        record = history.get_run(run.run_id)
        tasks = history.task_runs(run.run_id)
        logs = history.logs(run.run_id)
    assert record.address == process_client.scheduler.address
    assert record.dashboard_link == run.dashboard_link
    assert len(tasks) == 1203 and {t.state for t in tasks} == {"SUCCESS"}
    workers = set(process_client.scheduler_info()["workers"])
    assert {t.worker for t in tasks if t.name.startswith("noisy[")} <= workers
    assert len([rec for rec in logs if rec.message.startswith("child sees")]) == 1200


def test_secret_parameters_are_not_stored(sqlite_url):
    run = history_flows.with_secret.run(n=2, api_token="s3cr3t",
                                        options={"password": "pw", "user": "me"},
                                        executor=LocalExecutor())
    with open_history() as history:
        record = history.get_run(run.run_id)
    assert "s3cr3t" not in record.parameters and "pw" not in json.loads(record.parameters).values()
    assert record.params == {"n": 2, "api_token": "********",
                             "options": {"password": "********", "user": "me"}}


def test_parameters_are_stored_as_json_a_reader_can_take_back(sqlite_url):
    # a date as pydantic writes it (what the server's form and schema check read), not its repr
    run = history_flows.dated.run(day="2026-11-01", tags=["b"], executor=LocalExecutor())
    with open_history() as history:
        record = history.get_run(run.run_id)
    assert record.params == {"day": "2026-11-01", "tags": ["b"]}


def test_history_can_be_turned_off(tmp_path):
    url = _sqlite(tmp_path)
    with dask.config.set({"taskflow.history.url": url, "taskflow.history.enabled": False}):
        run = flows.etl.run(n=3, executor=LocalExecutor())
    assert run.state.is_successful()
    assert not (tmp_path / "history.db").exists()


def test_an_unreachable_database_never_fails_a_run(tmp_path, caplog):
    url = "postgresql://nobody@127.0.0.1:1/none"
    with dask.config.set({"taskflow.history.url": url}), caplog.at_level(logging.ERROR):
        run = flows.etl.run(n=3, executor=LocalExecutor())
    assert run.result() == 3
    assert any("run history is off" in r.getMessage() and "127.0.0.1" in r.getMessage()
               for r in caplog.records)


# -- runs that do not end normally -----------------------------------------------------------
def test_a_run_whose_executor_raises_ends_crashed_not_running(sqlite_url, process_client):
    lock = threading.Lock()

    @task
    def locked() -> int:
        with lock:
            return 1

    @flow
    def cannot_pickle():
        return locked()

    with pytest.raises(TypeError, match="cannot be sent to Dask workers"):
        cannot_pickle.run(executor=DaskExecutor(client=process_client))
    with open_history() as history:
        (record,) = history.runs(flow="cannot_pickle")
    assert record.state == "CRASHED" and "UnpicklableTaskError" in record.message


def test_an_interrupted_run_ends_cancelled(sqlite_url):
    class Interrupted(LocalExecutor):
        def execute(self, plan, on_event):
            on_event({  # a task run starts, then Ctrl-C
                "kind": "state", "run": plan.run.run_id, "name": "extract", "key": "k",
                "map_index": None, "type": "RUNNING", "message": "", "attempt": 1,
                "started": time.time(), "ended": None, "time": time.time(), "worker": "local",
                "exc": None, "exc_repr": None, "tb": None})
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        flows.etl.run(n=3, executor=Interrupted())
    with open_history() as history:
        (record,) = history.runs(flow="etl")
        (extract,) = history.task_runs(record.id)
    assert record.state == "CANCELLED" and "KeyboardInterrupt" in record.message
    assert extract.state == "CANCELLED"


@contextlib.contextmanager
def _held_run() -> Iterator[dict]:
    """The ``holding`` flow running in a thread until the block ends; then its FlowRun
    is in the dict yielded, under ``"run"``."""
    history_flows.release.clear()
    result: dict = {}
    runner = threading.Thread(target=lambda: result.setdefault(
        "run", history_flows.holding.run(executor=LocalExecutor())))
    runner.start()
    try:
        yield result
    finally:
        history_flows.release.set()
        runner.join(30)


def test_the_heartbeat_is_refreshed_while_a_run_goes_on(sqlite_url):
    with dask.config.set({"taskflow.history.heartbeat-interval": "50ms",
                          "taskflow.history.flush-interval": "10ms"}):
        with _held_run() as result, open_history() as history:
            first = wait_until(lambda: history.runs(flow="holding"), what="the run's row")[0]
            assert first.state == "RUNNING"
            wait_until(lambda: history.get_run(first.id).heartbeat > first.heartbeat,
                       what="a newer heartbeat")
            assert history.get_run(first.id).state == "RUNNING"
    assert result["run"].state.is_successful()


def test_the_history_writer_does_not_spin_while_a_run_waits_without_events(sqlite_url):
    # a long task (a persisted collection computing, say) sends no event for a while:
    # the writer must sleep between its looks, not loop (it took a core from the workers).
    # Counted in looks at its queue, not in CPU seconds: a full garbage collection of the
    # suite's heap may run in the writer's thread and is no spin.
    from taskflow.history.recorder import default_recorder

    with _held_run() as result:
        with open_history() as history:
            (record,) = wait_until(lambda: history.runs(flow="holding"), what="the run's row")
        recorder = default_recorder()
        assert recorder is not None
        writer = recorder._runs[record.id]
        time.sleep(0.5)  # a measuring window, not a wait: past the first flush interval
        before, start = writer.looks, time.monotonic()
        time.sleep(2.0)
        looks, elapsed = writer.looks - before, time.monotonic() - start
    assert result["run"].state.is_successful()
    # one look per flush interval (500 ms) and per cancel check (1 s): about 6 in 2 s
    assert looks <= 4 * elapsed + 4, f"the history writer looked {looks} times in {elapsed:.2f} s"


@pytest.mark.slow
def test_a_run_whose_process_was_killed_is_marked_crashed_when_the_history_is_opened(tmp_path):
    url = _sqlite(tmp_path)
    started, never = tmp_path / "started", tmp_path / "never"
    code = (
        "from taskflow.executors import LocalExecutor\n"
        "from tests import history_flows\n"
        f"history_flows.waits.run(path={str(never)!r}, started={str(started)!r}, "
        "executor=LocalExecutor())\n"
    )
    env = {**os.environ, "DASK_TASKFLOW__HISTORY__URL": url,
           "DASK_TASKFLOW__HISTORY__FLUSH_INTERVAL": "10ms", "PYTHONPATH": ROOT}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT)
    try:
        wait_until(started.exists, timeout=60, what="the task to start")
        with open_history(url) as history:
            def task_running():
                runs = history.runs(flow="waits")
                return runs and any(t.state == "RUNNING" for t in history.task_runs(runs[0].id))
            wait_until(task_running, what="the task run's RUNNING row")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    with open_history(url) as history:  # default stale-after (60 s): the heartbeat is fresh
        (record,) = history.runs(flow="waits")
        assert record.state == "RUNNING"
    with open_history(url, stale_after=0) as history:
        record = history.get_run(record.id)
        (t,) = history.task_runs(record.id)
    assert record.state == "CRASHED" and f"pid {proc.pid}" in record.message
    assert record.ended_at is not None
    assert (t.name, t.state, t.message) == ("wait_for_file", "CRASHED", "its flow run crashed")


# -- the store itself ----------------------------------------------------------------------
def _add_run(history, run_id, flow_name="f", state="SUCCESS", started=None):
    now = started or time.time()
    history.write(WriteBatch(started=[dict(
        id=run_id, flow_name=flow_name, parameters="{}", state=state, message="",
        started_at=now, ended_at=now + 1, heartbeat=now)]))


def test_run_ids_may_be_shortened_to_a_unique_prefix(history_url):
    with open_history() as history:
        _add_run(history, "abc1" + "0" * 28)
        _add_run(history, "abc2" + "0" * 28)
        assert history.get_run("abc1").id == "abc1" + "0" * 28
        assert history.get_run("ABC2").id.startswith("abc2")
        with pytest.raises(UnknownRunError, match="ambiguous"):
            history.get_run("abc")
        with pytest.raises(UnknownRunError, match="no flow run with id 'ffff'.*taskflow runs"):
            history.get_run("ffff")
        with pytest.raises(UnknownRunError):
            history.get_run("a_c%")  # LIKE wildcards are taken literally


def test_runs_are_listed_newest_first_and_filtered_by_flow_and_state(history_url):
    with open_history() as history:
        for i, (name, state) in enumerate([("a", "SUCCESS"), ("b", "FAILED"), ("a", "FAILED")]):
            _add_run(history, f"{i:032x}", name, state, started=1000.0 + i)
        assert [r.id[-1] for r in history.runs()] == ["2", "1", "0"]
        assert [r.id[-1] for r in history.runs(flow="a")] == ["2", "0"]
        assert [r.id[-1] for r in history.runs(state="failed", limit=1)] == ["2"]


def test_stale_running_runs_are_crashed_but_fresh_and_finished_ones_are_kept(history_url):
    with open_history() as history:
        _add_run(history, "old" + "0" * 29, state="RUNNING", started=time.time() - 600)
        _add_run(history, "new" + "0" * 29, state="RUNNING")
        _add_run(history, "done" + "0" * 28, state="SUCCESS", started=time.time() - 600)
    with open_history(stale_after="60s") as history:
        states = {r.id[:3]: r.state for r in history.runs()}
    assert states == {"old": "CRASHED", "new": "RUNNING", "don": "SUCCESS"}


def test_a_fresh_postgresql_database_gets_its_tables_on_first_use(request):
    url = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        assert not sa.inspect(engine).get_table_names()
        with open_history(url):
            pass
        assert {"taskflow_flow_runs", "taskflow_task_runs", "taskflow_logs",
                "taskflow_meta"} <= set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_a_history_written_by_a_newer_taskflow_is_refused(tmp_path):
    url = _sqlite(tmp_path)
    with open_history(url) as history, history.engine.begin() as conn:
        conn.execute(sa.text("UPDATE taskflow_meta SET value = '99' WHERE key = 'schema_version'"))
    with pytest.raises(HistoryError, match="schema version 99.*upgrade taskflow"):
        open_history(url)


def test_a_bad_history_url_is_reported_with_what_to_set():
    with pytest.raises(HistoryError, match="not a database URL.*sqlite:"):
        open_history("not a url")


@pytest.mark.parametrize("module", ["taskflow", "taskflow.cli"])
def test_importing_taskflow_does_not_import_sqlalchemy(module):
    # `taskflow run FILE.py:FLOW` imports it in the background while the cluster starts
    code = f"import sys, {module}; print('sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert out.stdout.strip() == "False", out.stderr


def test_a_flow_run_imports_the_history_recorder_and_not_the_readers_records(tmp_path):
    url = _sqlite(tmp_path)
    open_history(url).close()  # an existing history, as after a machine's first run
    code = (
        "import sys\n"
        "from taskflow.executors import LocalExecutor\n"
        "from tests import flows\n"
        "assert flows.chain.run(x=1, executor=LocalExecutor()).result() == 4\n"
        "print(sorted(m for m in ('taskflow.history.records', 'taskflow.history.store', "
        "'sqlalchemy') if m in sys.modules))\n"
    )
    env = {**os.environ, "DASK_TASKFLOW__HISTORY__URL": url, "PYTHONPATH": ROOT}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout
    with open_history(url) as history:  # ... and the run is recorded, whole, when it returns
        (record,) = history.runs(flow="chain")
        tasks = history.task_runs(record.id)
    assert record.state == "SUCCESS" and record.ended_at is not None
    assert sorted(t.state for t in tasks) == ["SUCCESS"] * len(tasks) and len(tasks) == 3


def test_the_history_package_gives_its_names_when_asked():
    import taskflow.history as history
    from taskflow.history import FlowRunRecord, HistoryRecorder, install, resolve_url
    from taskflow.history.recorder import HistoryRecorder as Recorder
    from taskflow.records import FlowRunRecord as Record

    assert HistoryRecorder is Recorder and FlowRunRecord is Record
    assert callable(install) and callable(resolve_url)
    assert set(history.__all__) <= set(dir(history)) | set(history._LAZY) | {"open_history"}
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        history.nothing_here  # noqa: B018


def test_the_default_history_is_a_sqlite_file_in_the_users_data_directory(monkeypatch, tmp_path):
    from taskflow.history import default_url, resolve_url

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_url() == f"sqlite:///{tmp_path}/taskflow/history.db"
    with dask.config.set({"taskflow.history.url": None}):
        assert resolve_url() == default_url()


class _SlowToConnect(LocalExecutor):
    """A LocalExecutor whose connection (its dashboard link) waits for the database."""

    def __init__(self, db_file) -> None:
        super().__init__()
        self.db_file = db_file
        self.opened_before_connected = False

    @property
    def dashboard_link(self):
        deadline = time.monotonic() + 20
        while not self.db_file.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        self.opened_before_connected = self.db_file.exists()
        return None


def test_the_history_database_is_opened_while_the_executor_connects(tmp_path):
    with dask.config.set({"taskflow.history.url": _sqlite(tmp_path)}):
        executor = _SlowToConnect(tmp_path / "history.db")
        run = flows.etl.run(n=3, executor=executor)
        assert run.state.is_successful()
        assert executor.opened_before_connected
        with open_history() as history:
            assert history.get_run(run.run_id).state == "SUCCESS"


def test_observers_hear_a_run_is_preparing_before_its_executor_connects():
    from taskflow.engine.observers import RunObserver, add_observer, remove_observer

    heard = []

    class Order(RunObserver):
        def run_preparing(self, *, flow, plan, **kwargs):
            heard.append(("preparing", plan.run.run_id))

        def run_started(self, *, plan, **kwargs):
            heard.append(("started", plan.run.run_id))

    class Connecting(LocalExecutor):
        @property
        def dashboard_link(self):
            heard.append(("connecting", None))
            return None

    watcher = add_observer(Order())
    try:
        run = flows.etl.run(n=3, executor=Connecting())
    finally:
        remove_observer(watcher)
    assert heard == [("preparing", run.run_id), ("connecting", None), ("started", run.run_id)]
