"""The recorder's writer on an existing SQLite history, without SQLAlchemy (history/lite.py).

It must write exactly what ``HistoryStore.write`` writes, open only files that
``HistoryStore`` would not change, and leave everything else to ``HistoryStore``.
"""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from taskflow.history import lite, schema
from taskflow.history.store import TASK_ROW_KEYS, HistoryStore, WriteBatch


def _url(path) -> str:
    return f"sqlite:///{path}"


def _created(tmp_path, name: str = "h.db") -> str:
    url = _url(tmp_path / name)
    HistoryStore(url).close()
    return url


def _task(run_id: str, name: str, **changes) -> dict:
    row = {k: None for k in TASK_ROW_KEYS}
    row.update(run_id=run_id, name=name, seq=0, key=f"{name}-k", state="RUNNING", attempts=1,
               message="", worker="tcp://w:1", updated_at=1.0, started_at=1.0)
    row.update(changes)
    return row


def _batches(run_id: str) -> list[dict]:
    """Batches as the writer makes them: a start, a task's events, an attempt, logs, the end."""
    started = {"id": run_id, "flow_name": "etl", "parameters": '{"n": 1}', "state": "RUNNING",
               "message": "", "started_at": 1.0, "ended_at": None, "heartbeat": time.time(),
               "executor": "<DaskExecutor>", "address": "tcp://s:1", "dashboard_link": None,
               "host": "here", "pid": 7, "graph": "{}"}
    log = {"run_id": run_id, "task": "a", "level": 20, "logger": "taskflow.task_runs",
           "message": "hello", "created": 2.0, "worker": "tcp://w:1"}
    attempt = {"run_id": run_id, "name": "a", "attempt": 1, "state": "RETRYING",
               "exception_type": "ValueError", "message": "attempt 1 of 2 failed",
               "traceback": "Traceback...", "worker": "tcp://w:1", "failed_at": 2.5}
    return [
        dict(started=[started], tasks=[_task(run_id, "a"), _task(run_id, "b", seq=1)],
             logs=[log], finished=[], heartbeats=[], attempts=[]),
        dict(started=[started], tasks=[_task(run_id, "a", state="RETRYING", started_at=None,
                                             worker="", message="retrying")],
             logs=[], finished=[], heartbeats=[run_id], attempts=[attempt]),
        dict(started=[], tasks=[_task(run_id, "a", state="COMPLETED", attempts=2, ended_at=3.0,
                                      started_at=None, worker="", result_location="file:///r")],
             logs=[log], finished=[], heartbeats=[], attempts=[attempt]),
        dict(started=[], tasks=[], logs=[], heartbeats=[], attempts=[],
             finished=[{"id": run_id, "state": "CRASHED", "message": "it stopped", "ended_at": 4.0,
                        "unfinished_tasks": "CRASHED"}]),
    ]


def _contents(path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        out = {}
        for table in ("taskflow_flow_runs", "taskflow_task_runs", "taskflow_task_attempts",
                      "taskflow_logs"):
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
            keep = [c for c in cols if c not in ("heartbeat", "updated_at", "id")]  # times: now
            rows = conn.execute(f"SELECT {', '.join(keep)} FROM {table} ORDER BY 1, 2").fetchall()
            out[table] = rows
        return out
    finally:
        conn.close()


def test_what_the_light_writer_expects_is_what_the_schema_defines():
    import dataclasses
    import inspect

    # it writes every part of a batch (a part it does not know would go through SQLAlchemy)
    parts = set(inspect.signature(lite.LiteStore._write_rows).parameters) - {"self"}
    assert parts == {f.name for f in dataclasses.fields(WriteBatch)}
    assert lite.SCHEMA_VERSION == str(schema.SCHEMA_VERSION)
    assert set(lite.TABLES) == {t.name for t in schema.metadata.sorted_tables}
    assert set(lite.INDEXES) == {i.name for t in schema.metadata.sorted_tables for i in t.indexes}
    assert set(lite.ADDED) == {(t.name, c) for t, c in schema._ADDED}
    for table in schema.metadata.sorted_tables:
        defaults = {c.name: c.default.arg for c in table.columns
                    if c.default is not None and not callable(c.default.arg)}
        if table.name in lite.DEFAULTS:
            assert lite.DEFAULTS[table.name] == defaults, table.name


def test_the_light_writer_writes_the_same_rows_as_the_history_store(tmp_path):
    full, light = _created(tmp_path, "full.db"), _created(tmp_path, "light.db")
    store, ls = HistoryStore(full), lite.open_lite(light)
    assert ls is not None
    try:
        for parts in _batches("run1"):
            store.write(WriteBatch(**parts))
            ls.write(**parts)
    finally:
        store.close()
        ls.close()
    want, got = _contents(tmp_path / "full.db"), _contents(tmp_path / "light.db")
    assert got == want
    assert want["taskflow_task_runs"][0][:8] == ("run1", "a", 0, "a-k", None, "COMPLETED", 2, "")
    assert len(want["taskflow_logs"]) == 2 and len(want["taskflow_task_attempts"]) == 1


def test_only_complete_sqlite_histories_are_opened_without_sqlalchemy(tmp_path):
    assert lite.open_lite(_url(tmp_path / "missing.db")) is None
    assert lite.open_lite("sqlite://") is None
    assert lite.open_lite("postgresql://taskflow@127.0.0.1:1/taskflow") is None
    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.close()
    assert lite.open_lite(_url(tmp_path / "other.db")) is None

    url = _created(tmp_path)
    conn = sqlite3.connect(tmp_path / "h.db")
    conn.execute("ALTER TABLE taskflow_flow_runs DROP COLUMN graph")  # an older file
    conn.close()
    assert lite.open_lite(url) is None
    HistoryStore(url).close()  # which adds the column back
    store = lite.open_lite(url)
    assert store is not None
    store.close()

    conn = sqlite3.connect(tmp_path / "h.db")
    conn.execute("UPDATE taskflow_meta SET value = '2' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    assert lite.open_lite(url) is None  # HistoryStore refuses it, saying why


def test_opening_marks_stale_runs_crashed_as_the_history_store_does(tmp_path):
    urls = [_created(tmp_path, "full.db"), _created(tmp_path, "light.db")]
    beat = time.time() - 3600
    for url in urls:
        store = HistoryStore(url)
        store.write(WriteBatch(started=[{"id": "old", "flow_name": "etl", "parameters": "{}",
                                         "state": "RUNNING", "started_at": beat, "heartbeat": beat,
                                         "host": "gone", "pid": 1}],
                               tasks=[_task("old", "a")]))
        store.close()
    HistoryStore(urls[0], stale_after=60).close()
    lite.open_lite(urls[1], stale_after=60).close()
    want, got = _contents(tmp_path / "full.db"), _contents(tmp_path / "light.db")
    assert got == want
    assert want["taskflow_flow_runs"][0][2] == "CRASHED"
    assert "no heartbeat since" in want["taskflow_flow_runs"][0][3]


def test_a_write_the_light_writer_cannot_make_goes_through_the_history_store(tmp_path):
    url = _created(tmp_path)
    store = lite.open_lite(url)
    conn = sqlite3.connect(tmp_path / "h.db")
    conn.execute("ALTER TABLE taskflow_flow_runs DROP COLUMN graph")  # changed under it
    conn.close()
    try:
        parts = _batches("run2")[0]
        store.write(**parts)  # fails here, rolled back, then written by HistoryStore (which adds it)
        store.write(**_batches("run2")[2])
    finally:
        store.close()
    with HistoryStore(url) as full:
        assert full.get_run("run2").graph == "{}"
        assert [(t.name, t.state) for t in full.task_runs("run2")] == [("a", "COMPLETED"),
                                                                       ("b", "RUNNING")]


def test_cancel_requests_are_read_and_taken_without_sqlalchemy(tmp_path):
    from taskflow.history import serving

    url = _created(tmp_path)
    with HistoryStore(url) as full:
        assert serving.cancel_run(full, "r1", "stop it") == "run"
    store = lite.open_lite(url)
    try:
        assert store.cancels_for(["r1", "r2"]) == [("r1", "stop it")]
        store.take_cancel("r1")
        assert store.cancels_for(["r1"]) == []
    finally:
        store.close()


@pytest.mark.timeout(60)
def test_a_flow_run_with_an_existing_history_never_imports_sqlalchemy(tmp_path):
    url = _created(tmp_path)
    script = textwrap.dedent(f"""
        import sys
        import dask
        from taskflow.executors import LocalExecutor
        from tests import flows

        with dask.config.set({{"taskflow.history.url": {url!r}}}):
            run = flows.chain.run(executor=LocalExecutor(), x=1)
        assert run.state.is_successful(), run.state
        print(run.run_id, "sqlalchemy" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=50, check=True).stdout.split()
    assert out[1] == "False"
    with HistoryStore(url) as store:
        r = store.get_run(out[0])
        assert r.state == "SUCCESS"
        assert {t.state for t in store.task_runs(r.id)} == {"SUCCESS"}
