"""Graph descriptions: a wide flow's graph is stored grouped and read back whole."""
from __future__ import annotations

import json

import dask
import pytest

from taskflow.dashboard.model import RunBook
from taskflow.description import GROUP_ABOVE, describe, expand
from taskflow.history.store import HistoryStore
from taskflow.schematic import graph_data
from taskflow.server.views import run_view
from tests import description_flows as df
from tests import wide_flows as wf


@pytest.mark.parametrize("shape", df.SHAPES, ids=lambda f: f.name)
def test_a_grouped_description_expands_to_exactly_the_plain_one(shape):
    plain = describe(shape.graph, group_above=None)
    grouped = json.loads(json.dumps(describe(shape.graph, group_above=0)))  # as stored
    assert "groups" in grouped and "nodes" not in grouped
    assert expand(grouped) == plain
    assert expand(plain) == plain
    assert [n["name"] for n in plain["nodes"]] == [n.name for n in shape.graph.nodes]


def test_random_graphs_read_back_whole_from_their_grouped_description():
    for seed in range(150):
        graph = df.random_flow(seed).graph
        grouped = json.loads(json.dumps(describe(graph, group_above=0)))
        assert expand(grouped) == describe(graph, group_above=None), seed


def test_a_fan_out_is_described_by_one_group_per_task_whatever_its_width():
    for shape in (df.fan_out_and_in, df.pipelines, df.zipped_pairs, df.fan_out_alone):
        grouped = describe(shape.graph, group_above=0)
        assert len(grouped["groups"]) <= 4, shape.name  # a group per series, whatever its width
        assert len(json.dumps(grouped)) < 800, shape.name
        assert len(grouped["reference"]) == 1, shape.name  # one run of terminal tasks


def test_a_chain_of_one_task_is_not_grouped_yet_reads_back_whole():
    grouped = describe(df.chain.graph, group_above=0)
    assert sum(len(g["templates"]) * g["count"] for g in grouped["groups"]) == len(df.chain.graph.nodes)
    assert expand(grouped) == describe(df.chain.graph, group_above=None)


def test_a_flow_that_changes_shape_midway_reads_back_whole():
    for shape in (df.one_source_many_readers, df.maps_and_subflows, df.ordered_waits,
                  df.with_a_case, df.shifted_pairs):
        grouped = describe(shape.graph, group_above=0)
        assert expand(grouped) == describe(shape.graph, group_above=None), shape.name


def test_small_graphs_keep_the_plain_description_and_wide_ones_are_grouped():
    small = graph_data(df.fan_out_and_in.graph)
    assert set(small) == {"nodes", "edges", "reference"} and len(small["nodes"]) == df.WIDTH + 1
    wide = graph_data(wf.wide_static_fan_out.graph)
    assert wf.WIDE_STATIC_WIDTH > GROUP_ABOVE and set(wide) == {"groups", "reference"}
    assert len(json.dumps(wide)) < 500
    assert len(expand(wide)["nodes"]) == wf.WIDE_STATIC_WIDTH + 1


def test_malformed_descriptions_read_as_empty_graphs():
    empty = {"nodes": [], "edges": [], "reference": []}
    assert expand({}) == empty
    assert expand({"groups": [{"templates": [{"name": "a"}], "count": 1}]}) == empty
    a = {"name": "a", "task": "a", "mapped": False, "from": 1, "in": [[5, 0, "data", 0, 1, 1]]}
    assert expand({"groups": [{"templates": [a], "count": 2}]}) == empty
    assert expand({"groups": [{"templates": [{**a, "in": []}], "count": 2}],
                   "reference": [[0, 1, 3]]}) == empty


def test_the_dashboard_page_reads_a_grouped_graph_whole():
    book = RunBook()
    book.add({"kind": "run", "phase": "started", "run": "r1", "flow_name": "wide", "time": 1.0,
              **graph_data(wf.wide_static_fan_out.graph), "parameters": {}})
    run = book.run("r1")
    assert len(run["nodes"]) == wf.WIDE_STATIC_WIDTH + 1
    assert len(run["edges"]) == wf.WIDE_STATIC_WIDTH and run["total"] == wf.WIDE_STATIC_WIDTH + 1


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_run_page_of_a_wide_static_flow_shows_every_node_from_its_grouped_graph(
        process_executor, tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with dask.config.set({"taskflow.history.url": url}):
        run = wf.wide_static_fan_out.run(executor=process_executor)
    assert run.result() == sum(2 * i for i in range(wf.WIDE_STATIC_WIDTH))
    with HistoryStore(url) as store:
        stored = json.loads(store.get_run(run.run_id).graph)
        assert "groups" in stored and [g["count"] for g in stored["groups"]] == [
            wf.WIDE_STATIC_WIDTH, 1]
        view = run_view(store, run.run_id)
    names = [n["name"] for n in view["nodes"]]
    assert names[0] == "double" and names[-2:] == [f"double-{wf.WIDE_STATIC_WIDTH}", "total"]
    assert {n["state"] for n in view["nodes"]} == {"SUCCESS"}
    assert len(view["edges"]) == wf.WIDE_STATIC_WIDTH
    assert f"The graph has {wf.WIDE_STATIC_WIDTH + 1} nodes" in view["svg"]


def test_a_graph_asked_for_by_two_threads_at_once_is_described_once(monkeypatch):
    import threading

    from taskflow import schematic

    graph = wf.wide_static_fan_out.graph
    graph.__dict__.pop("_taskflow_drawn", None)  # described afresh here
    calls: list[int] = []
    start = threading.Barrier(2)

    def counting(g):
        calls.append(1)
        return describe(g)

    monkeypatch.setattr(schematic, "describe", counting)

    def ask(out: list) -> None:
        start.wait(10)
        out.append(graph_data(graph))

    got: list = []
    threads = [threading.Thread(target=ask, args=(got,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(got) == 2 and got[0] is got[1] and calls == [1]
    assert expand(got[0]) == describe(graph, group_above=None)
