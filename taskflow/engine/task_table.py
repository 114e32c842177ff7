"""A plan's task runs by key, a mapped task's children sent to a cluster as one record.

``Plan.tasks`` (:class:`taskflow.engine.plan.Plan`) maps each task run's key to
its :class:`~taskflow.engine.steps.PlannedTask`, in the order they were planned
(upstream first).  A mapped child, once sent to a cluster (which has the rest),
is read back as a :class:`~taskflow.engine.steps.SentChild` made when asked for:
the children of one mapped task share one record here (their node's name, whether
they are kept, their dependencies and upstream names when those are the same for
every child, as for a map over a list), so a map of a million children sent costs
no object, key or dict entry per child.  Children whose dependencies differ (a map
over another map's children, elements taken through items) keep theirs per child.

Part of :mod:`taskflow.engine.plan`; plain Python.

Examples
--------
>>> from taskflow.engine.steps import PlannedTask, RunInfo, TaskRunSpec
>>> run = RunInfo("f", "r", "t", 1, "h", 20)
>>> def child(i):
...     spec = TaskRunSpec(run, f"sq[{i}]", ("sq-1", i), None, (), {}, ("xs",), map_index=i)
...     return PlannedTask(spec, ["xs-1"])
>>> table = TaskTable()
>>> for i in range(3):
...     table.add(child(i))
>>> table.sent(table[("sq-1", 0)]); table.sent(table[("sq-1", 1)])
>>> [type(t).__name__ for t in table.values()], len(table), table[("sq-1", 1)].name
(['SentChild', 'SentChild', 'PlannedTask'], 3, 'sq[1]')
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from taskflow.engine.steps import Key, PlannedTask, SentChild
from taskflow.state_columns import NameSet, child_of

__all__ = ["TaskTable"]


class _Children:
    """The children of one mapped task: those made and not sent, and those sent."""

    __slots__ = ("base", "node", "made", "sent", "deps", "upstream", "odd")

    def __init__(self, base: str) -> None:
        self.base = base
        self.node: tuple[str, bool] | None = None  # (node name, keep), known once one is sent
        self.made: dict[int, PlannedTask] = {}  # made, not sent yet
        self.sent = 0  # children 0 .. sent - 1 were sent
        self.deps: Any = None  # the dependencies and upstream names of every child sent...
        self.upstream: Any = None
        self.odd: dict[int, tuple[Any, Any]] = {}  # ... but these: (deps, upstream) their own

    def child(self, index: int) -> PlannedTask | SentChild | None:
        found = self.made.get(index)
        if found is not None:
            return found
        if not 0 <= index < self.sent:
            return None
        deps, upstream = self.odd.get(index) or (self.deps, self.upstream)
        assert self.node is not None
        return SentChild.of((self.base, index), deps, upstream, self.node)

    def __iter__(self) -> Iterator[PlannedTask | SentChild]:
        made, odd, node, base = self.made, self.odd, self.node, self.base
        for i in range(self.sent):
            found = made.get(i) if made else None
            if found is not None:
                yield found
                continue
            deps, upstream = odd.get(i) or (self.deps, self.upstream) if odd else (
                self.deps, self.upstream)
            assert node is not None
            yield SentChild.of((base, i), deps, upstream, node)
        if made:
            for i in sorted(i for i in made if i >= self.sent):
                yield made[i]

    def __len__(self) -> int:
        return self.sent + sum(1 for i in self.made if i >= self.sent)


class TaskTable(Mapping[Key, "PlannedTask | SentChild"]):
    """Task-run key to its planned task, in planning order (see the module's doc)."""

    __slots__ = ("_entries", "_children", "_shared", "_count")

    def __init__(self) -> None:
        self._entries: dict[Any, PlannedTask | _Children] = {}  # own keys, and one per map
        self._children: dict[str, _Children] = {}  # key base -> its mapped task's children
        self._shared: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self._count = 0

    def add(self, planned: PlannedTask) -> None:
        """A task run just planned."""
        index = planned.spec.map_index
        key = planned.key
        if index is None or type(key) is not tuple or len(key) != 2 or key[1] != index:
            if key not in self._entries:
                self._count += 1
            self._entries[key] = planned
            return
        base = key[0]
        block = self._children.get(base)
        if block is None:
            block = self._children[base] = _Children(base)
            self._entries[("children", base)] = block
        if index not in block.made and index >= block.sent:
            self._count += 1
        block.made[index] = planned

    def sent(self, planned: PlannedTask) -> None:
        """``planned`` (a mapped child) went to a cluster: keep only what a SentChild reads."""
        index = planned.spec.map_index
        block = self._children.get(planned.key[0]) if index is not None else None
        if block is None or block.made.get(index) is not planned:  # type: ignore[arg-type]
            return
        if block.node is None:
            block.node = (planned.name.rpartition("[")[0], planned.keep)
        deps: Any = tuple(planned.deps)
        if all(type(d) is str for d in deps):  # the same for every child (a map over a list)
            deps = self._shared.setdefault(deps, deps)
        upstream = planned.spec.upstream
        if index != block.sent:  # not the next one (children go in order): kept as it is
            return
        del block.made[index]
        if block.sent == 0:
            block.deps, block.upstream = deps, upstream
        elif deps is not block.deps or upstream != block.upstream:
            block.odd[index] = (deps, upstream)
        block.sent += 1

    def __getitem__(self, key: Key) -> PlannedTask | SentChild:
        if type(key) is tuple and len(key) == 2 and type(key[1]) is int:
            block = self._children.get(key[0])
            if block is not None:
                child = block.child(key[1])
                if child is not None:
                    return child
        found = self._entries.get(key)
        if found is None or isinstance(found, _Children):
            raise KeyError(key)
        return found

    def __iter__(self) -> Iterator[Key]:
        for key, entry in list(self._entries.items()):
            if type(entry) is _Children:
                yield from (t.key for t in entry)
            else:
                yield key

    def values(self) -> Iterator[PlannedTask | SentChild]:  # type: ignore[override]
        """Every task run, in planning order (a sent child made as it is read)."""
        for entry in list(self._entries.values()):
            if type(entry) is _Children:
                yield from entry
            else:
                yield entry  # type: ignore[misc]

    def items(self) -> Iterator[tuple[Key, PlannedTask | SentChild]]:  # type: ignore[override]
        """``(key, task)`` of every task run, in planning order."""
        return ((t.key, t) for t in self.values())

    def __len__(self) -> int:
        return self._count

    def not_in(self, names: NameSet) -> list[str]:
        """The names of the task runs not in ``names`` (a sent child's made only if not)."""
        out: list[str] = []
        for entry in list(self._entries.values()):
            if type(entry) is not _Children:
                if entry.name not in names:  # type: ignore[union-attr]
                    out.append(entry.name)  # type: ignore[union-attr]
                continue
            node = entry.node[0] if entry.node is not None else ""
            for i in range(entry.sent):
                if not names.has_child(node, i) and i not in entry.made:
                    out.append(f"{node}[{i}]")
            out.extend(t.name for t in list(entry.made.values()) if t.name not in names)
        return out

    def keys_of(self, names: Iterable[str], bases: Mapping[str, str]) -> dict[str, tuple[Key, int | None]]:
        """``name -> (key, map_index)`` of ``names``: a child of a mapped task whose key
        base ``bases`` gives (by node name) from its name, any other task run looked up."""
        out: dict[str, tuple[Key, int | None]] = {}
        own: dict[str, Key] | None = None
        for name in names:
            child = child_of(name)
            if child is not None and child[0] in bases:
                out[name] = ((bases[child[0]], child[1]), child[1])
                continue
            if own is None:
                own = {e.name: e.key for e in self._entries.values()  # type: ignore[union-attr]
                       if type(e) is not _Children}
            if name in own:
                out[name] = (own[name], None)
        return out

    def __contains__(self, key: object) -> bool:
        try:
            self[key]  # type: ignore[index]
        except (KeyError, TypeError):
            return False
        return True
