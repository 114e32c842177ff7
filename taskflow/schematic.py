"""The schematic: a flow's graph coloured by state, and the one colour table of states.

Every picture of a run uses this module: the server's run page, the ``/taskflow``
page on the Dask dashboard (inline SVG from :func:`graph_svg`) and
:func:`taskflow.Flow.visualize` (graphviz files, filled from :data:`COLOURS` with
:func:`ink` for the text).  What is drawn comes from one description of the graph,
:func:`graph_data` (nodes, edges, reference tasks), which the history keeps with
each run, so a schematic can be drawn long after the run's cluster is gone.

Layout: nodes go in columns by their longest path from a source (data flows left to
right); inside a column they are ordered by the mean position of their upstreams (two
sweeps), which keeps most edges short and uncrossed for the graphs flows have.  Each
node is a box coloured by its state; a mapped task is drawn once, as a stack, with its
children's progress.  Ordering edges (``wait_for``) are dashed.

Examples
--------
>>> svg = graph_svg([{"name": "a", "state": "SUCCESS"}, {"name": "b", "state": "RUNNING"}],
...                 [("a", "b", "data")])
>>> svg.startswith("<svg") and "a" in svg and "RUNNING" in svg
True
>>> ink("PENDING"), ink("FAILED")
('#1d232b', '#ffffff')
"""
from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from taskflow.description import describe
from taskflow.records import mapped_state
from taskflow.states import FINISHED_TYPES

if TYPE_CHECKING:
    from taskflow.graph import FlowGraph

__all__ = ["COLOURS", "DARK_INK", "colour", "graph_data", "graph_svg", "ink", "layers",
           "node_views"]

#: Fill colour of each state: graph nodes, badges and bars everywhere.
COLOURS = {
    "PENDING": "#d9dde3", "RUNNING": "#4a90d9", "RETRYING": "#f0a43a", "SUCCESS": "#3fae5a",
    "CACHED": "#2aa198", "SKIPPED": "#b7a6d9", "FAILED": "#d9534f", "TRIGGER_FAILED": "#e0823d",
    "TIMED_OUT": "#c0392b", "CRASHED": "#8e1b1b", "CANCELLED": "#8d949c",
}
#: States light enough to need dark text.
DARK_INK = {"PENDING", "SKIPPED", "RETRYING"}
_UNKNOWN = "#8d949c"
_FINISHED = frozenset(t.value for t in FINISHED_TYPES)


def colour(state: str) -> str:
    """The fill colour of ``state`` (grey for anything unknown)."""
    return COLOURS.get(state, _UNKNOWN)


def ink(state: str) -> str:
    """The text colour that reads on :func:`colour` of ``state``."""
    return "#1d232b" if state in DARK_INK else "#ffffff"


def graph_data(graph: FlowGraph) -> dict[str, Any]:
    """What a schematic needs of a traced flow, as the history keeps it with each run.

    Up to :data:`taskflow.description.GROUP_ABOVE` nodes: ``nodes``
    (``{"name", "task", "mapped"}``), ``edges`` (``[upstream, downstream, "data" |
    "order"]``) and ``reference`` (the names of the terminal tasks).  A wider graph
    is described grouped (a series of calls of one task is one entry): read any
    description with :func:`taskflow.description.expand`.  Made once per traced
    graph (the history and the dashboard page both ask, as a run starts): do not
    change it.
    """
    made = getattr(graph, "_taskflow_drawn", None)
    if made is not None:
        return made
    # the history's writer and the page ask at once: one describes, the other waits for
    # it; a lock per graph (another run's graph is described meanwhile), kept off the
    # graph itself (a graph pickles and copies)
    with _guard:
        lock = _describing.setdefault(id(graph), threading.Lock())
    try:
        with lock:
            made = getattr(graph, "_taskflow_drawn", None)
            if made is None:
                made = describe(graph)
                try:
                    graph._taskflow_drawn = made  # type: ignore[attr-defined]
                except AttributeError:  # a graph-like object without a __dict__
                    pass
    finally:
        with _guard:
            _describing.pop(id(graph), None)
    return made


_guard = threading.Lock()
_describing: dict[int, threading.Lock] = {}  # id of a graph being described -> its lock


def node_views(graph: dict[str, Any], task_runs: Iterable[Any],
               child_counts: dict[str, dict[str, int]] | None = None) -> list[dict[str, Any]]:
    """Graph nodes with their states, from task runs (objects with ``name``, ``state``,
    ``map_index``, ``message``, ``attempts``), e.g. the history's records.

    A mapped node's children are counted by state; its own state is
    :func:`taskflow.records.mapped_state` of theirs (RUNNING while any is unfinished).
    Without a recorded graph, the nodes are the task runs that are not mapped
    children.  ``child_counts`` (mapped task name to its children's counts by
    state) stands for children not among ``task_runs``: a run of a million task
    runs is summed by the database, not read row by row.
    """
    own: dict[str, Any] = {}
    kids: dict[str, dict[str, int]] = {p: dict(c) for p, c in (child_counts or {}).items()}
    for t in task_runs:
        if t.map_index is not None:
            counted = kids.setdefault(t.name.rpartition("[")[0], {})
            counted[t.state] = counted.get(t.state, 0) + 1
        else:
            own[t.name] = t
    nodes = graph.get("nodes") or [{"name": n, "mapped": n in kids} for n in own]
    views = []
    for n in nodes:
        name, mapped = n["name"], bool(n.get("mapped"))
        mine = own.get(name)
        counts = kids.get(name, {})
        size = sum(counts.values())
        state = mine.state if mine is not None else "PENDING"
        message = mine.message if mine is not None else ""
        if mapped and size:
            states = [st for st, c in counts.items() for _ in range(c)]
            kind, message = mapped_state(mine.state if mine is not None else None, message, states)
            state = kind.value
        done = sum(c for s, c in counts.items() if s in _FINISHED) if mapped else int(state in _FINISHED)
        views.append({"name": name, "mapped": mapped, "state": state, "message": message,
                      "size": size if mapped else 1, "done": done, "counts": dict(counts),
                      "attempts": mine.attempts if mine is not None else 0})
    return views


_W, _H, _GAP_X, _GAP_Y, _PAD = 168, 44, 64, 18, 16
_MAX_NODES = 400


def layers(names: Sequence[str], edges: Sequence[tuple[str, str, str]]) -> list[list[str]]:
    """Columns of node names: each node right of all its upstreams, ordered to cut crossings.

    Examples
    --------
    >>> layers(["a", "b", "c", "d"], [("a", "c", "data"), ("b", "c", "data"), ("c", "d", "data")])
    [['a', 'b'], ['c'], ['d']]
    """
    known = set(names)
    ups: dict[str, list[str]] = {n: [] for n in names}
    downs: dict[str, list[str]] = {n: [] for n in names}
    for a, b, _ in edges:
        if a in known and b in known and a != b:
            ups[b].append(a)
            downs[a].append(b)
    depth: dict[str, int] = {}
    indeg = {n: len(set(ups[n])) for n in names}
    ready = [n for n in names if indeg[n] == 0]
    seen: set[str] = set()
    while ready:
        n = ready.pop(0)
        seen.add(n)
        depth[n] = max((depth[u] + 1 for u in ups[n] if u in depth), default=0)
        for d in dict.fromkeys(downs[n]):
            indeg[d] -= 1
            if indeg[d] == 0:
                ready.append(d)
    for n in names:  # a cycle cannot happen in a flow; be safe anyway
        depth.setdefault(n, 0)
    cols: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for n in names:
        cols[depth[n]].append(n)
    for _ in range(2):
        pos = {n: i for col in cols for i, n in enumerate(col)}
        for col in cols[1:]:
            col.sort(key=lambda n: sum(pos[u] for u in ups[n]) / len(ups[n]) if ups[n] else pos[n])
            pos.update({n: i for i, n in enumerate(col)})
    return cols


def _label(text: str, limit: int = 22) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def graph_svg(nodes: Sequence[dict[str, Any]], edges: Sequence[tuple[str, str, str]]) -> str:
    """The graph as an ``<svg>`` element; ``nodes`` are the run's node views.

    Each node dict needs ``name`` and ``state``; ``mapped``, ``done`` and
    ``size`` show a mapped task's progress.  Graphs above 400 nodes are not
    drawn (a note says so).
    """
    if not nodes:
        return '<p class="muted">No tasks.</p>'
    if len(nodes) > _MAX_NODES:
        return f'<p class="muted">The graph has {len(nodes)} nodes; it is drawn up to {_MAX_NODES}.</p>'
    by_name = {n["name"]: n for n in nodes}
    cols = layers(list(by_name), edges)
    tallest = max(len(c) for c in cols)
    height = 2 * _PAD + tallest * _H + (tallest - 1) * _GAP_Y + 6
    width = 2 * _PAD + len(cols) * _W + (len(cols) - 1) * _GAP_X + 6
    at: dict[str, tuple[float, float]] = {}
    for ci, col in enumerate(cols):
        offset = (tallest - len(col)) * (_H + _GAP_Y) / 2
        for ri, name in enumerate(col):
            at[name] = (_PAD + ci * (_W + _GAP_X), _PAD + offset + ri * (_H + _GAP_Y))
    out = [
        f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="flow graph">',
        '<defs><marker id="tf-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#7a828c"/></marker></defs>',
    ]
    for a, b, kind in edges:
        if a not in at or b not in at:
            continue
        (x1, y1), (x2, y2) = at[a], at[b]
        x1, y1, y2 = x1 + _W, y1 + _H / 2, y2 + _H / 2
        mid = (x1 + x2) / 2
        dash = ' stroke-dasharray="5,4"' if kind == "order" else ""
        out.append(f'<path class="edge" d="M{x1:.1f},{y1:.1f} C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} '
                   f'{x2 - 2:.1f},{y2:.1f}" fill="none" stroke="#7a828c" stroke-width="1.4"'
                   f'{dash} marker-end="url(#tf-arrow)"/>')
    for name, (x, y) in at.items():
        n = by_name[name]
        state = str(n.get("state") or "PENDING")
        fill, text = colour(state), ink(state)
        sub = state
        if n.get("mapped"):
            sub = f"{state} \u00b7 {n.get('done', 0)}/{n.get('size', 0)}"
        tip = escape(f"{name}: {state}" + (f" - {n['message']}" if n.get("message") else ""))
        out.append(f'<g class="node" data-node="{escape(name)}" data-state="{state}">'
                   f'<title>{tip}</title>')
        if n.get("mapped"):
            out.append(f'<rect x="{x + 6:.1f}" y="{y + 6:.1f}" width="{_W}" height="{_H}" rx="7" '
                       f'fill="{fill}" opacity="0.45"/>')
        out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{_W}" height="{_H}" rx="7" fill="{fill}" '
                   f'stroke="#2b323b" stroke-opacity="0.25"/>')
        out.append(f'<text x="{x + _W / 2:.1f}" y="{y + 18:.1f}" text-anchor="middle" '
                   f'font-size="13" font-weight="600" fill="{text}">{escape(_label(name))}</text>')
        out.append(f'<text x="{x + _W / 2:.1f}" y="{y + 34:.1f}" text-anchor="middle" '
                   f'font-size="11" fill="{text}">{escape(sub)}</text></g>')
    out.append("</svg>")
    return "".join(out)
