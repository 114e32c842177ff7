"""The one model of a run: the records and the facts derived from them, without a cluster."""
from __future__ import annotations

from taskflow.dashboard.model import RunBook, TaskRecord
from taskflow.engine.events import StateEvent
from taskflow.history import FlowRunRecord as HistoryFlowRunRecord
from taskflow.history import TaskRunRecord as HistoryTaskRunRecord
from taskflow.records import FlowRunRecord, TaskRunRecord, mapped_state
from taskflow.runs import FlowRun
from taskflow.schematic import node_views
from taskflow.states import State, StateType


def test_the_history_the_dashboard_and_flow_run_share_one_record_type():
    assert HistoryFlowRunRecord is FlowRunRecord
    assert HistoryTaskRunRecord is TaskRunRecord
    assert TaskRecord is TaskRunRecord
    run = FlowRun("etl", "ab" * 16, {"n": 3, "password": "x"},
                  State(StateType.SUCCESS, started_at=1.0, ended_at=3.5),
                  {"load": State(StateType.SUCCESS, attempts=1, started_at=1.0, ended_at=2.0),
                   "sq": State(StateType.FAILED, message="1 of 2 mapped children did not succeed"),
                   "sq[0]": State(StateType.SUCCESS), "sq[1]": State(StateType.FAILED)},
                  None)
    assert isinstance(run.record, FlowRunRecord)
    assert (run.record.state, run.record.duration, run.record.finished) == ("SUCCESS", 2.5, True)
    assert run.record.params == {"n": 3, "password": "********"}
    records = {t.name: t for t in run.task_records}
    assert [(t.name, t.map_index, t.node) for t in records.values()] == [
        ("load", None, "load"), ("sq", None, "sq"), ("sq[0]", 0, "sq"), ("sq[1]", 1, "sq")]
    assert records["load"].duration == 1.0 and records["sq[1]"].failed


def test_the_live_model_keeps_a_task_run_record_updated_from_state_events():
    book = RunBook()
    book.add(StateEvent("r1", "a", "RUNNING", attempt=1, started=1.0, time=1.0).to_msg())
    book.add(StateEvent("r1", "a", "SUCCESS", attempt=1, started=1.0, ended=2.5, time=2.5).to_msg())
    book.add(StateEvent("r1", "a", "RUNNING", attempt=1, started=1.0, time=2.0).to_msg())  # stale
    rec = book._runs["r1"].tasks["a"]
    assert isinstance(rec, TaskRunRecord)
    assert (rec.run_id, rec.state, rec.duration, rec.finished) == ("r1", "SUCCESS", 1.5, True)


def test_a_mapped_task_is_running_until_its_children_end_then_takes_the_one_verdict():
    assert mapped_state(None, "", []) == (StateType.PENDING, "")
    assert mapped_state("RUNNING", "mapped over 2 elements", ["SUCCESS"], size=2)[0] is StateType.RUNNING
    assert mapped_state("RUNNING", "mapped over 1 elements", [])[0] is StateType.RUNNING
    assert mapped_state("RUNNING", "", ["SUCCESS", "SKIPPED"], size=2)[0] is StateType.SUCCESS
    assert mapped_state("RUNNING", "", ["SKIPPED", "SKIPPED"], size=2)[0] is StateType.SKIPPED
    assert mapped_state("TRIGGER_FAILED", "upstream failed", []) == (
        StateType.TRIGGER_FAILED, "upstream failed")


def test_the_server_s_schematic_and_the_dashboard_derive_a_mapped_task_alike():
    kids = [TaskRunRecord("r1", f"sq[{i}]", map_index=i, state="SKIPPED") for i in range(2)]
    own = TaskRunRecord("r1", "sq", state="RUNNING", message="mapped over 2 elements")
    graph = {"nodes": [{"name": "sq", "task": "sq", "mapped": True}]}
    (view,) = node_views(graph, [own, *kids])
    book = RunBook()
    book.add({"kind": "run", "phase": "started", "run": "r1", "flow_name": "f", "time": 1.0,
              "nodes": graph["nodes"], "edges": [], "reference": ["sq"], "parameters": {}})
    book.add(StateEvent("r1", "sq", "RUNNING", message="mapped over 2 elements", time=1.0).to_msg())
    for i in range(2):
        book.add(StateEvent("r1", f"sq[{i}]", "SKIPPED", map_index=i, time=2.0).to_msg())
    live = book.run("r1", now=3.0)["nodes"][0]
    assert view["state"] == live["state"] == "SKIPPED"
    assert view["message"] == live["message"] == "all 2 mapped children were skipped"
