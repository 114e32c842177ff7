"""Flow graphs: what is drawn, colours by state, real PNG/SVG/PDF files from graphviz's dot."""
from __future__ import annotations

import re

import dask
import pytest

from taskflow.executors import LocalExecutor
from taskflow.visualize import STATE_COLORS, GraphvizMissingError
from tests import flows, history_flows


def node_line(source: str, label: str) -> str:
    """The DOT statement (maybe several lines) of the node whose label starts with ``label``."""
    match = re.search(rf'^\t(\w+) \[label="?{re.escape(label)}.*?\]$', source, re.M | re.S)
    assert match, f"no node labelled {label!r} in\n{source}"
    return match.group(0).strip()


def node_id(source: str, label: str) -> str:
    return node_line(source, label).split()[0]


def test_parameters_tasks_data_edges_and_wait_for_edges_are_drawn():
    src = history_flows.shapes.visualize().source
    n, offset = node_id(src, "n = 3"), node_id(src, "offset = 1")
    extract, boom, total = (node_id(src, x) for x in ("extract", "boom", "total"))
    inc, add = node_id(src, "inc ["), node_id(src, "add [")
    assert "shape=ellipse" in node_line(src, "n = 3")
    assert f"{n} -> {extract}" in src and f"{offset} -> {add}" in src
    assert re.search(rf"{extract} -> {inc} \[label=map\]", src)
    assert re.search(rf"{inc} -> {add} \[label=map\]", src)
    assert re.search(rf"{add} -> {total}\n", src)
    assert re.search(rf"{add} -> {boom} \[style=dashed\]", src)


def test_a_mapped_task_is_drawn_once_with_its_child_count():
    src = history_flows.fixed_map.visualize().source
    assert node_line(src, "inc [4]") and "peripheries=2" in node_line(src, "inc [4]")
    assert src.count("label=inc") + src.count('label="inc') == 1
    unknown = history_flows.shapes.visualize().source
    assert node_line(unknown, "inc [?]")  # a run-time length is known only from a run


def test_a_run_colours_each_task_by_its_final_state_and_counts_children():
    run = history_flows.shapes.run(n=5, executor=LocalExecutor())
    dot = history_flows.shapes.visualize(run=run)
    src = dot.source
    assert f'fillcolor="{STATE_COLORS["SUCCESS"]}"' in node_line(src, "extract")
    assert f'fillcolor="{STATE_COLORS["FAILED"]}"' in node_line(src, "boom")
    assert "5 Success" in node_line(src, "inc [5]")
    assert "boom: attempt 1 of 1 failed" in node_line(src, "boom")  # the tooltip
    assert f"run {run.run_id[:8]}: FAILED" in src


def test_a_run_id_from_the_history_colours_the_graph(tmp_path):
    with dask.config.set({"taskflow.history.url": f"sqlite:///{tmp_path / 'h.db'}"}):
        run = history_flows.partly_failing.run(executor=LocalExecutor())
        src = history_flows.partly_failing.visualize(run=run.run_id[:10]).source
    assert f'fillcolor="{STATE_COLORS["TRIGGER_FAILED"]}"' in node_line(src, "inc-2")
    assert f'fillcolor="{STATE_COLORS["SUCCESS"]}"' in node_line(src, "inc ")


def test_subflow_tasks_are_drawn_inside_a_box_named_after_the_subflow():
    src = history_flows.outer.visualize().source
    cluster = src[src.index("subgraph cluster_inner"):]
    cluster = cluster[: cluster.index("}")]
    assert "label=inner" in cluster and "label=inc" in cluster and 'label="inc-2"' in cluster


@pytest.mark.parametrize("ext, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml"),
                                        (".pdf", b"%PDF"), (".dot", b"digraph")])
def test_the_file_format_follows_the_extension(tmp_path, ext, magic):
    path = tmp_path / f"etl{ext}"
    flows.etl.visualize(str(path))
    data = path.read_bytes()
    assert data.startswith(magic)
    if ext == ".svg":
        assert b"<svg" in data and b"extract" in data


def test_missing_graphviz_programs_say_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` here
    with pytest.raises(GraphvizMissingError, match="apt-get install graphviz"):
        flows.etl.visualize(str(tmp_path / "etl.png"))
    assert not (tmp_path / "etl.png").exists()
    assert flows.etl.visualize().source.startswith("digraph")  # drawing needs no programs


def test_secret_parameter_defaults_are_not_drawn():
    src = history_flows.with_secret.visualize().source
    assert "api_token = '********'" in src
