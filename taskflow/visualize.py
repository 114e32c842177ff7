"""Draw a flow's graph with graphviz, coloured by the states of a run.

:meth:`taskflow.Flow.visualize` calls :func:`visualize`.  What is drawn:

* **parameters** as ellipses (with the run's value when a run is given, else
  their default), **tasks** as rounded boxes;
* a **mapped task once**, as a doubled box labelled with its child count: from
  the run when one is given, else the length known when the flow was defined
  (``[?]`` when only the run can tell);
* **data edges** solid (``map`` on the edges a mapped task maps over), **wait_for**
  edges (and ``case`` conditions) dashed;
* tasks of a **subflow** (``sub/load``) inside a box named after the subflow;
* given a run (a :class:`~taskflow.FlowRun`, or a run id or prefix from the run
  history), each task filled with the colour of its final state, its message as
  the tooltip (visible in SVG), and a mapped task's children counted by state.

Colours are those of the server's and the dashboard's schematics
(:data:`taskflow.schematic.COLOURS`); graphviz lays the graph out for files, where
the parameters and subflow boxes are drawn too.

The graphviz Python package builds the graph; writing PNG, SVG or PDF needs the
graphviz programs (``dot``).  Both are checked when needed, with an error that
says what to install.

Examples
--------
>>> from taskflow import flow, task
>>> @task
... def extract(n):
...     return list(range(n))
>>> @task
... def double(x):
...     return 2 * x
>>> @flow
... def doubler(n: int = 3):
...     return double.map(extract(n))
>>> g = visualize(doubler)                      # doctest: +SKIP
>>> "double [?]" in g.source                    # doctest: +SKIP
True
>>> doubler.visualize("doubler.png", run=doubler.run())  # doctest: +SKIP
"""
from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from taskflow.exceptions import TaskflowError
from taskflow.graph import NO_DEFAULT, MapArg, ParamRef, Ref
from taskflow.nesting import iter_leaves
from taskflow.schematic import COLOURS, ink
from taskflow.secrets import mask_secrets
from taskflow.states import State, StateType

if TYPE_CHECKING:
    import graphviz

    from taskflow.graph import FlowGraph, TaskNode
    from taskflow.runs import FlowRun, RunnableFlow

__all__ = ["GraphvizMissingError", "STATE_COLORS", "visualize"]

#: Fill colour of a task node per state: the one table of :mod:`taskflow.schematic`.
STATE_COLORS: dict[str, str] = COLOURS
_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
_INSTALL_DOT = (
    "install the graphviz programs: `apt-get install graphviz` (Debian/Ubuntu), "
    "`dnf install graphviz`, `brew install graphviz` (macOS) or `conda install graphviz`"
)


class GraphvizMissingError(TaskflowError, RuntimeError):
    """The graphviz Python package or the graphviz programs (``dot``) are missing."""


def _graphviz() -> Any:
    try:
        import graphviz
    except ImportError:
        raise GraphvizMissingError(
            "drawing flows needs the graphviz Python package: `pip install graphviz` "
            "(or `pip install dask-taskflow[viz]`), and the graphviz programs: " + _INSTALL_DOT
        ) from None
    return graphviz


def _states_of(run: FlowRun | str | Mapping[str, Any] | None, history_url: str | None
               ) -> tuple[dict[str, str], dict[str, str], str, dict[str, Any] | None]:
    """Task-run name -> state value, name -> message, a title, and the run's parameters."""
    if run is None:
        return {}, {}, "", None
    if isinstance(run, str):
        from taskflow.history import open_history
        from taskflow.history.paging import overview

        with open_history(history_url) as history:  # children counted by the database
            record = history.get_run(run)
            tasks, children = overview(history, record.id)
        states: dict[str, str] = _Tallied({t.name: t.state for t in tasks})
        states.children = {p: Counter(c) for p, c in children.items()}  # type: ignore[attr-defined]
        return (states, {t.name: t.message for t in tasks},
                f"run {record.id[:8]}: {record.state}", record.params)
    values: dict[str, Any] | None = None
    if isinstance(run, Mapping):
        items: Mapping[str, Any] = run
        title = ""
    else:
        items = run.task_states
        title = f"run {run.run_id[:8]}: {run.state.type.value}"
        values = dict(run.parameters)
    states = {n: (s.type.value if isinstance(s, State) else str(s)) for n, s in items.items()}
    messages = {n: s.message for n, s in items.items() if isinstance(s, State)}
    return states, messages, title, values


def _inputs(node: TaskNode) -> tuple[set[str], set[str], set[int]]:
    """Parameters a node reads, those it maps over, and task ids it maps over."""
    params: set[str] = set()
    mapped_params: set[str] = set()
    mapped_tasks: set[int] = set()
    for leaf in iter_leaves((node.args, node.kwargs)):
        if isinstance(leaf, ParamRef):
            params.add(leaf.name)
        elif isinstance(leaf, MapArg):
            for src in iter_leaves(leaf.source):
                if isinstance(src, ParamRef):
                    mapped_params.add(src.name)
                elif isinstance(src, Ref):
                    mapped_tasks.add(src.id)
    return params, mapped_params, mapped_tasks


class _Tallied(dict):
    """Task-run states of the run's own task runs, with ``children``: each mapped task's
    children counted by state (a wide run's history is not read child by child)."""

    children: dict[str, Counter[str]]


def _children(states: dict[str, str]) -> dict[str, Counter[str]]:
    """Each mapped task's children counted by state (one pass over ``states``)."""
    found = getattr(states, "children", None)
    if found is not None:
        return found
    out: dict[str, Counter[str]] = {}
    for n, s in states.items():
        if n.endswith("]") and "[" in n:
            out.setdefault(n[:n.rfind("[")], Counter())[s] += 1
    return out


def _label(node: TaskNode, short: str, states: dict[str, str],
           kids: dict[str, Counter[str]]) -> str:
    if not node.mapped:
        return short
    counts = kids.get(node.name, Counter())
    if counts or node.name in states:
        lines = [f"{short} [{sum(counts.values())}]"]
        lines += [f"{n} {StateType(s).label}" for s, n in sorted(counts.items())]
        return "\n".join(lines)
    return f"{short} [{node.static_length if node.static_length is not None else '?'}]"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 24 else text[:21] + "..."


def build(graph: FlowGraph, states: dict[str, str], messages: dict[str, str],
          title: str = "", values: Mapping[str, Any] | None = None) -> graphviz.Digraph:
    """The graphviz Digraph of ``graph``, coloured by ``states`` (see the module).

    ``values`` are a run's parameter values, drawn instead of the defaults.
    """
    gv = _graphviz()
    dot = gv.Digraph(name=graph.name, graph_attr={
        "rankdir": "TB", "fontname": "Helvetica", "label": f"{graph.name}  ({title})"
        if title else graph.name, "labelloc": "t",
    }, node_attr={"fontname": "Helvetica", "fontsize": "11"},
        edge_attr={"fontname": "Helvetica", "fontsize": "9", "color": "#555555"})

    kids = _children(states)
    used_params: set[str] = set()
    edges: list[tuple[str, str, dict[str, str]]] = []
    clusters: dict[tuple[str, ...], list[tuple[str, dict[str, str]]]] = {}
    for node in graph.nodes:
        *prefix, short = node.name.split("/")
        state = states.get(node.name, "")
        attrs = {"label": _label(node, short, states, kids), "shape": "box",
                 "style": "rounded,filled", "fillcolor": STATE_COLORS.get(state, "#ffffff")}
        if state in STATE_COLORS:
            attrs["fontcolor"] = ink(state)
        if node.mapped:
            attrs["peripheries"] = "2"
        tooltip = messages.get(node.name) or states.get(node.name)
        attrs["tooltip"] = f"{node.name}: {tooltip}" if tooltip else node.name
        clusters.setdefault(tuple(prefix), []).append((f"t{node.id}", attrs))

        params, mapped_params, mapped_tasks = _inputs(node)
        for param in sorted(params | mapped_params):
            used_params.add(param)
            edges.append((f"p_{param}", f"t{node.id}",
                          {"label": "map"} if param in mapped_params else {}))
        for u in dict.fromkeys([*node.data_upstream, *mapped_tasks]):
            edges.append((f"t{u}", f"t{node.id}", {"label": "map"} if u in mapped_tasks else {}))
        for u in node.wait_for:
            if u not in node.data_upstream and u not in mapped_tasks:
                edges.append((f"t{u}", f"t{node.id}", {"style": "dashed"}))

    for name, p in graph.parameters.items():
        if values is not None and name in values:  # what the run used
            label = f"{name} = {_short(mask_secrets({name: values[name]})[name])}"
        else:
            default = mask_secrets({name: p.default})[name]
            label = name if p.default is NO_DEFAULT else f"{name} = {_short(default)}"
        dot.node(f"p_{name}", label=label, shape="ellipse", style="filled",
                 fillcolor="#eef3fb" if name in used_params else "#f7f7f7", color="#6d8fbf")
    _emit_clusters(dot, clusters, ())
    for a, b, attrs in edges:
        dot.edge(a, b, **attrs)
    return dot


def _emit_clusters(parent: Any, clusters: dict[tuple[str, ...], list[tuple[str, dict[str, str]]]],
                   prefix: tuple[str, ...]) -> None:
    for node_id, attrs in clusters.get(prefix, []):
        parent.node(node_id, **attrs)
    children = sorted({p[: len(prefix) + 1] for p in clusters
                       if len(p) > len(prefix) and p[: len(prefix)] == prefix})
    for child in children:
        name = "cluster_" + "__".join(child)
        with parent.subgraph(name=name) as sub:
            sub.attr(label=child[-1], style="rounded,dashed", color="#999999")
            _emit_clusters(sub, clusters, child)


def visualize(flow: RunnableFlow, filename: str | os.PathLike[str] | None = None,
              run: FlowRun | str | Mapping[str, Any] | None = None, *,
              history_url: str | None = None) -> graphviz.Digraph:
    """Draw ``flow``; colour it by ``run``; write it to ``filename`` if given.

    Parameters
    ----------
    flow : Flow
    filename : str or path, optional
        Written as PNG, SVG, PDF (needs the graphviz programs) or DOT source, by
        its extension.
    run : FlowRun, str or mapping, optional
        A finished run, a run id (or unique prefix) in the run history, or a
        mapping of task-run name to State.
    history_url : str, optional
        Where to look a run id up (default: ``taskflow.history.url``).

    Returns
    -------
    graphviz.Digraph
        Shown inline in Jupyter; ``.source`` is the DOT text.

    Raises
    ------
    GraphvizMissingError
        Without the graphviz Python package, or without ``dot`` when writing an image.
    UnknownRunError
        When ``run`` is a run id the history does not know.
    """
    states, messages, title, values = _states_of(run, history_url)
    dot = build(flow.graph, states, messages, title, values)
    if filename is not None:
        write(dot, filename)
    return dot


def write(dot: graphviz.Digraph, filename: str | os.PathLike[str]) -> str:
    """Write ``dot`` to ``filename`` in the format its extension names; return the path."""
    path = os.fspath(filename)
    ext = os.path.splitext(path)[1].lower()
    fmt = _FORMATS.get(ext)
    if fmt is None:
        raise TaskflowError(
            f"cannot tell the image format of {path!r} from its extension; use one of "
            f"{', '.join(sorted(_FORMATS))}", filename=path,
        )
    if fmt == "dot":
        data = dot.source.encode()
    else:
        gv = _graphviz()
        try:
            data = dot.pipe(format=fmt)
        except gv.ExecutableNotFound:
            raise GraphvizMissingError(
                f"writing {path!r} needs graphviz's `dot` program, which was not found: "
                + _INSTALL_DOT
            ) from None
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return path
