"""The history of wide runs: every task run recorded, read a page at a time."""
from __future__ import annotations

import random
import time

import dask
import pytest
from click.testing import CliRunner

from taskflow.cli import cli
from taskflow.history.paging import task_runs_page
from taskflow.history.store import HistoryStore, WriteBatch
from tests import wide_flows as wf


def _row(name, seq, map_index=None, state="SUCCESS", run_id="r" * 32):
    return dict(run_id=run_id, name=name, seq=seq, key="", map_index=map_index, state=state,
                attempts=1, message="", started_at=None, ended_at=None, worker="",
                traceback=None, result_location=None, updated_at=time.time())


def _mixed_run(store):
    """Two maps reporting interleaved with plain tasks, children in no index order."""
    rng = random.Random(7)
    names = ["load"] + [f"sq[{i}]" for i in range(40)] + ["mid"] + [f"inc[{i}]" for i in range(25)]
    names += ["sq", "inc", "end"]
    rng.shuffle(names)
    rows = [_row(n, seq, int(n[n.index("[") + 1:-1]) if "[" in n else None)
            for seq, n in enumerate(names)]
    rows.append(_row("odd[name]x", len(rows)))  # brackets in a plain name stay plain
    store.write(WriteBatch(started=[dict(id="r" * 32, flow_name="mixed", parameters="{}",
                                         state="SUCCESS", started_at=1.0, heartbeat=1.0)],
                           tasks=rows))
    return len(rows)


def test_pages_of_task_runs_are_the_whole_list_cut_in_order(tmp_path):
    with HistoryStore(f"sqlite:///{tmp_path / 'h.db'}") as store:
        n = _mixed_run(store)
        whole = [t.name for t in store.task_runs("r" * 32)]
        assert len(whole) == n
        for limit in (1, 7, 40, 1000):
            paged = []
            for offset in range(0, n, limit):
                page, total = task_runs_page(store, "r" * 32, offset=offset, limit=limit)
                assert total == n
                paged += [t.name for t in page]
            assert paged == whole, limit
        assert task_runs_page(store, "r" * 32, offset=n + 5, limit=3) == ([], n)
        with pytest.raises(ValueError, match="limit must be 1 or more"):
            task_runs_page(store, "r" * 32, limit=0)


def test_show_prints_one_page_and_says_where_the_next_starts(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with HistoryStore(url) as store:
        n = _mixed_run(store)
        whole = [t.name for t in store.task_runs("r" * 32)]
    result = CliRunner().invoke(cli, ["--history", url, "show", "rrrr", "--limit", "5",
                                      "--offset", "3"])
    assert result.exit_code == 0, result.output
    listed = [line.split()[0] for line in result.output.splitlines()
              if line.split() and line.split()[0] in whole]
    assert listed == whole[3:8]
    assert f"task runs 4 to 8 of {n}; next: taskflow show rrrrrrrr --offset 8" in result.output
    bad = CliRunner().invoke(cli, ["--history", url, "show", "rrrr", "--limit", "0"])
    assert bad.exit_code != 0 and "--limit" in bad.output


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_map_of_ten_thousand_children_records_every_task_run(process_executor, tmp_path):
    url = f"sqlite:///{tmp_path / 'wide.db'}"
    with dask.config.set({"taskflow.history.url": url}):  # two windows and a bit
        run = wf.wide.run(n=10_000, executor=process_executor)
    assert run.state.is_successful(), run.state
    with HistoryStore(url) as store:
        counts = store.task_counts(run.run_id)
        page, total = task_runs_page(store, run.run_id, offset=10_000, limit=10)
    assert counts == {"SUCCESS": 10_003}  # numbers, double, its 10,000 children, total
    assert total == 10_003
    assert [t.name for t in page] == ["double[9998]", "double[9999]", "total"]


def _big_run(store, n_children=6000):
    b = "b" * 32
    rows = [_row("load", 0, run_id=b)] + [
        _row(f"sq[{i}]", 1 + i, i, "FAILED" if i == 17 else "SUCCESS", run_id=b)
        for i in range(n_children)]
    rows += [_row("sq", n_children + 1, None, "FAILED", b),
             _row("end", n_children + 2, None, "TRIGGER_FAILED", b)]
    graph = {"nodes": [{"name": "load", "mapped": False}, {"name": "sq", "mapped": True},
                       {"name": "end", "mapped": False}],
             "edges": [["load", "sq", "data"], ["sq", "end", "data"]]}
    import json
    store.write(WriteBatch(started=[dict(id="b" * 32, flow_name="big", parameters="{}",
                                         state="FAILED", started_at=1.0, heartbeat=1.0,
                                         graph=json.dumps(graph))],
                           tasks=rows))
    return len(rows)


def test_the_server_page_of_a_big_run_reads_one_page_and_sums_the_rest(tmp_path):
    from taskflow.server import views

    with HistoryStore(f"sqlite:///{tmp_path / 'h.db'}") as store:
        n = _big_run(store)
        page = views.run_view(store, "b" * 32, task_offset=500, task_limit=500, svg=False)
        assert page["task_total"] == n
        assert [t["name"] for t in page["tasks"]][:2] == ["sq[498]", "sq[499]"]  # load, sq first
        assert page["counts"] == {"SUCCESS": 5999 + 1, "FAILED": 1, "TRIGGER_FAILED": 1}
        sq = next(v for v in page["nodes"] if v["name"] == "sq")
        assert sq["size"] == 6000 and sq["done"] == 6000 and sq["counts"]["FAILED"] == 1
        states = views.run_states(store, "b" * 32, task_offset=5990)
        assert states["task_total"] == n and "end" in states["tasks"]
        whole = views.run_view(store, "b" * 32, task_limit=None, svg=False)  # the API's "all"
        assert [t["name"] for t in whole["tasks"]][500:1000] == [t["name"] for t in page["tasks"]]
        assert whole["counts"] == page["counts"]
        assert [v["state"] for v in whole["nodes"]] == [v["state"] for v in page["nodes"]]


def _book_event(run, name, typ, index=None, t=2.0):
    return {"kind": "state", "run": run, "name": name, "type": typ, "map_index": index,
            "attempt": 1, "started": 1.5, "ended": t if typ != "RUNNING" else None, "time": t}


def test_the_dashboard_book_folds_succeeded_children_past_its_budget_and_keeps_counts():
    from taskflow.dashboard.model import RunBook

    book = RunBook(max_task_runs=50)
    book.add({"kind": "run", "phase": "started", "run": "w", "flow_name": "f", "time": 1.0,
              "client": "c", "nodes": [{"name": "sq", "task": "sq", "mapped": True}],
              "edges": [], "reference": ["sq"], "parameters": {}})
    book.add(_book_event("w", "sq", "RUNNING"))
    for i in range(1000):
        book.add(_book_event("w", f"sq[{i}]", "RUNNING", i))
        book.add(_book_event("w", f"sq[{i}]", "FAILED" if i == 500 else "SUCCESS", i, t=2.0 + i))
    book.add(_book_event("w", "sq[3]", "RUNNING", 3))  # late and stale: 3 was folded away
    live = book.run("w", task_limit=20, task_offset=0)
    (sq,) = live["nodes"]
    assert sq["size"] == 1000 and sq["done"] == 1000
    assert sq["counts"] == {"SUCCESS": 999, "FAILED": 1} and sq["state"] == "FAILED"
    assert sq["duration"] == 2.0 + 999 - 1.5
    assert len(live["tasks"]) == 20 and live["task_total"] <= 52  # records kept: about 50
    assert "sq[500]" in [t["name"] for t in book.run("w")["tasks"]]  # failures are kept
    book.add({"kind": "run", "phase": "finished", "run": "w", "time": 1100.0, "lost": {}})
    assert book.runs()[0]["state"] == "FAILED" and book.runs()[0]["total"] == 1000
