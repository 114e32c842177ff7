"""A flow's graph described for pictures and the history: nodes, edges, reference tasks.

The *plain* description is three JSON-ready lists: ``nodes`` (``{"name", "task",
"mapped"}``, in graph order), ``edges`` (``[upstream, downstream, "data" | "order"]``,
each node's incoming edges in turn) and ``reference`` (the names of the terminal
tasks).  Schematics, the server's run page and the ``/taskflow`` page read it.

A flow calling one task 100,000 times has 100,000 nodes that differ only by the
number in their names (``stamp``, ``stamp-2``... ``stamp-100000``).  Above
:data:`GROUP_ABOVE` nodes the description is *grouped*: ``{"groups": [...],
"reference": [...]}``.  A group is ``{"templates": [...], "count": k}``: ``k``
rounds of the same calls, in graph order (``[double(stamp(i)) for i in ...]``
is one group of two templates).  A template is ``{"name", "task", "mapped",
"from", "in"}``: its node of round ``i`` is named ``series_name(name, from + i)``
(the flow builder's names), and ``in`` lists, in order, that node's incoming
edges as runs ``[group, k, kind, step, count, stride]``: edges from nodes ``k``,
``k + stride``... (``count`` of them) of that group, counted in graph order, moved on by one round of that
group per round (``step`` 1: round ``i`` takes round ``i`` of a series) or not
(``step`` 0: every round has the same upstreams).  ``reference`` is a list of
``[group, k, count]`` runs, counting a group's nodes in graph
order.  :func:`expand` gives back exactly the plain description, so readers call
it and never see groups; a fan-out of 100,000 calls and a ``first`` over them is
two groups and one edge.

Examples
--------
>>> from taskflow import Flow, task
>>> @task
... def stamp(i):
...     return i
>>> @task
... def first(xs):
...     return min(xs)
>>> wide = Flow("wide", lambda: first([stamp(i) for i in range(1000)]))
>>> described = describe(wide.graph)
>>> [([t["name"] for t in g["templates"]], g["count"]) for g in described["groups"]]
[(['stamp'], 1000), (['first'], 1)]
>>> plain = expand(described)
>>> len(plain["nodes"]), plain["edges"][-1], plain["reference"]
(1001, ['stamp-1000', 'first', 'data'], ['first'])
>>> expand(describe(wide.graph, group_above=None)) == plain
True
"""
from __future__ import annotations

import re
from array import array
from collections import deque
from collections.abc import Iterator
from itertools import zip_longest
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskflow.graph import FlowGraph

__all__ = ["GROUP_ABOVE", "describe", "expand", "series_name"]

#: Graphs with more nodes than this are described grouped (pictures draw up to 400).
GROUP_ABOVE = 400

_NUMBERED = re.compile(r"(.+)-([1-9][0-9]*)")


def series_name(base: str, number: int) -> str:
    """The name of the ``number``-th call of ``base`` in a flow (as the flow builder names them).

    Examples
    --------
    >>> series_name("stamp", 1), series_name("stamp", 2)
    ('stamp', 'stamp-2')
    """
    return base if number == 1 else f"{base}-{number}"


def _split_name(name: str) -> tuple[str, int]:
    """The inverse of :func:`series_name`: ``"stamp-7"`` -> ``("stamp", 7)``."""
    found = _NUMBERED.fullmatch(name)
    if found is not None and int(found.group(2)) >= 2:
        return found.group(1), int(found.group(2))
    return name, 1


def describe(graph: FlowGraph, group_above: int | None = GROUP_ABOVE) -> dict[str, Any]:
    """The description of ``graph``: plain up to ``group_above`` nodes, grouped above
    (None: always plain).  Read one with :func:`expand`."""
    if group_above is None or len(graph.nodes) <= group_above:
        return _plain(graph)
    return _grouped(graph)


def _incoming(node: Any) -> Iterator[tuple[int, str]]:
    """A node's incoming edges, in order: data upstreams, then ordering ones."""
    data = node.data_upstream
    for u in data:
        yield u, "data"
    if node.wait_for:
        seen = set(data) if len(data) > 8 else data
        for u in node.wait_for:
            if u not in seen:
                yield u, "order"


def _plain(graph: FlowGraph) -> dict[str, Any]:
    names = {n.id: n.name for n in graph.nodes}
    return {
        "nodes": [{"name": n.name, "task": n.task.name, "mapped": n.mapped} for n in graph.nodes],
        "edges": [[names[u], n.name, kind] for n in graph.nodes for u, kind in _incoming(n)],
        "reference": [n.name for n in graph.terminal()],
    }


class _Grouper:
    """Cuts the nodes, read in graph order, into groups (see the module's text).

    A group is learnt from its first round (one node per template); each next round
    must repeat it: same tasks, names numbering on, incoming edges from the same
    upstream (step 0) or from the next member of one series (step 1).  When a node
    of a first round repeats an earlier template ``t``, the templates before ``t``
    become a group of their own.  When a node breaks a round, the group ends with
    its last whole round and the nodes of the broken round are read again.  Where
    each node went is kept in arrays by node id (24 bytes a node), not as objects.
    """

    def __init__(self, graph: FlowGraph) -> None:
        size = max((n.id for n in graph.nodes), default=-1) + 1
        self.group = array("q", [-1]) * size  # node id -> group, template, round
        self.template = array("q", [0]) * size
        self.round = array("q", [0]) * size
        self.groups: list[dict[str, Any]] = []  # closed ones; the open one comes next
        self._open: list[dict[str, Any]] = []  # templates of the open group
        self._round: list[Any] = []  # nodes of the open group's round going on
        self._rounds = 0  # whole rounds of the open group seen so far
        self._queue: deque[Any] = deque()
        self._at: dict[tuple[str, int], int] = {}  # (name, from) -> index in the first round

    def feed(self, node: Any) -> None:
        self._queue.append(node)
        while self._queue:
            self._take(self._queue.popleft())

    def _take(self, node: Any) -> None:
        base, number = _split_name(node.name)
        if self._rounds:
            at = len(self._round)
            if self._matches(self._open[at], node, base, number, self._rounds):
                self._place(node, at, self._rounds)
                if len(self._round) == len(self._open):
                    self._rounds, self._round = self._rounds + 1, []
                return
            again = self._round  # a broken round: close on the last whole one, read it again
            self._close()
            self._queue.extendleft(reversed([*again, node]))
            return
        # a second round, of the templates from t on?  Only the template named
        # ``base`` and numbered one below can start it (names are unique): look it up
        t = self._at.get((base, number - 1))
        if t is not None and self._matches(self._open[t], node, base, number, 1):
            if t:
                self._split(t)
            self._rounds, self._round = 1, []
            self._place(node, 0, 1)
            if len(self._open) == 1:
                self._rounds, self._round = 2, []
            return
        self._at[(base, number)] = len(self._open)
        self._open.append({"name": base, "task": node.task.name, "from": number, "node": node,
                           "steps": None})
        self._place(node, len(self._open) - 1, 0)

    def _place(self, node: Any, template: int, round_: int) -> None:
        nid = node.id
        self.group[nid], self.template[nid], self.round[nid] = len(self.groups), template, round_
        self._round.append(node)

    def _matches(self, tpl: dict[str, Any], node: Any, base: str, number: int,
                 round_: int) -> bool:
        first = tpl["node"]  # the template's node of the first round
        if (base != tpl["name"] or number != tpl["from"] + round_ or node.mapped != first.mapped
                or node.task.name != tpl["task"]
                or len(node.data_upstream) != len(first.data_upstream)
                or len(node.wait_for) != len(first.wait_for)):
            return False
        steps = bytearray()
        for mine, theirs in zip_longest(_incoming(node), _incoming(first)):
            if mine is None or theirs is None:
                return False
            (u, kind), (u0, kind0) = mine, theirs
            if (kind != kind0 or self.group[u] != self.group[u0]
                    or self.template[u] != self.template[u0]):
                return False
            moved = self.round[u] - self.round[u0]
            if moved not in (0, round_):
                return False
            steps.append(0 if moved == 0 else 1)
        if tpl["steps"] is None:
            tpl["steps"] = bytes(steps)  # settled by the second round
            return True
        return bool(steps == tpl["steps"])

    def _split(self, t: int) -> None:
        """The open group's templates before ``t`` become a group of one round."""
        head, self._open = self._open[:t], self._open[t:]
        self._at = {}  # the open group has started its rounds: no first round to look up
        self.groups.append({"templates": head, "count": 1})
        for node in self._round:  # the first round: every node of the open group
            if self.template[node.id] >= t:
                self.group[node.id] += 1
                self.template[node.id] -= t

    def _close(self) -> None:
        """The open group ends with its whole rounds; a broken round's nodes are let go."""
        if self._rounds:
            for node in self._round:
                self.group[node.id] = -1
        self.groups.append({"templates": self._open, "count": max(1, self._rounds)})
        self._open, self._round, self._rounds = [], [], 0
        self._at = {}

    def _place_of(self, nid: int) -> tuple[int, int]:
        """Node ``nid``'s group and its index among the group's nodes in graph order."""
        g = self.group[nid]
        return g, self.round[nid] * len(self.groups[g]["templates"]) + self.template[nid]

    def _template(self, tpl: dict[str, Any]) -> dict[str, Any]:
        first = tpl["node"]
        runs: list[list[Any]] = []  # [group, first index, kind, step, count, stride]
        for (u0, kind), step in zip(_incoming(first), tpl["steps"] or bytes(len(first.data_upstream) + len(first.wait_for))):
            g, k = self._place_of(u0)
            last = runs[-1] if runs else None
            if (last is not None and last[0] == g and last[2] == kind and last[3] == step
                    and k != last[1] and (last[4] == 1 or last[1] + last[4] * last[5] == k)):
                if last[4] == 1:
                    last[5] = k - last[1]
                last[4] += 1
            else:
                runs.append([g, k, kind, step, 1, 1])
        return {"name": tpl["name"], "task": tpl["task"], "mapped": first.mapped,
                "from": tpl["from"], "in": runs}

    def finish(self, graph: FlowGraph) -> dict[str, Any]:
        while self._rounds and self._round:  # a broken last round: read it again
            again = self._round
            self._close()
            for node in again:
                self.feed(node)
        if self._open:
            self._close()
        groups = [{"templates": [self._template(tpl) for tpl in g["templates"]],
                   "count": g["count"]} for g in self.groups]
        used = bytearray(len(self.group))
        for n in graph.nodes:
            for u, _ in _incoming(n):
                used[u] = 1
        reference: list[list[int]] = []
        for n in graph.nodes:
            if used[n.id]:
                continue
            g, k = self._place_of(n.id)
            last = reference[-1] if reference else None
            if last is not None and last[0] == g and last[1] + last[2] == k:
                last[2] += 1
            else:
                reference.append([g, k, 1])
        return {"groups": groups, "reference": reference}


def _grouped(graph: FlowGraph) -> dict[str, Any]:
    grouper = _Grouper(graph)
    for n in graph.nodes:
        grouper.feed(n)
    return grouper.finish(graph)


def expand(description: dict[str, Any]) -> dict[str, Any]:
    """The plain description of a stored one (plain or grouped): nodes, edges, reference.

    Anything missing or malformed reads as empty lists.
    """
    groups = description.get("groups")
    if not isinstance(groups, list):
        return {key: list(description.get(key) or []) for key in ("nodes", "edges", "reference")}

    def name(g: int, k: int) -> str:
        """The name of node ``k`` (in graph order) of group ``g``."""
        if g < 0 or k < 0:
            raise IndexError(g)
        templates = groups[g]["templates"]
        round_, t = divmod(k, len(templates))
        if round_ >= groups[g]["count"]:
            raise IndexError(k)
        return series_name(templates[t]["name"], templates[t]["from"] + round_)

    nodes: list[dict[str, Any]] = []
    edges: list[list[str]] = []
    try:
        for gi, g in enumerate(groups):
            for i in range(g["count"]):
                for t, tpl in enumerate(g["templates"]):
                    me = name(gi, i * len(g["templates"]) + t)
                    nodes.append({"name": me, "task": tpl["task"], "mapped": bool(tpl["mapped"])})
                    for e, k, kind, step, count, stride in tpl["in"]:
                        shift = k + step * i * len(groups[e]["templates"])
                        edges.extend([name(e, shift + j * stride), me, kind] for j in range(count))
        reference = [name(g, j) for g, k, count in description.get("reference") or []
                     for j in range(k, k + count)]
    except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError):
        return {"nodes": [], "edges": [], "reference": []}
    return {"nodes": nodes, "edges": edges, "reference": reference}
