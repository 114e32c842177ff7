"""A task over a mapped node's children, sent as the children's key base and count.

A task taking a map's output (a fan-in) depends on every child's key.  As a plain
Dask :class:`~dask._task_spec.Task`, each of them is a reference of its own, and
the task pickles its set of dependencies besides: a fan-in over 100,000
children made ~20 MB of objects in the client, and over a million a 24 MiB message.
:class:`GroupTask` names each group as :class:`Siblings` (``base``, ``n``: the
keys ``(base, 0)`` ... ``(base, n - 1)``), makes its set of dependencies only when
Dask asks for it (the scheduler does, once), and pickles as its arguments.  On
the worker it calls its function with each group as the list of the children's
values, in order, as a ``List`` of references would.

A group wider than :data:`PART_SIZE` is not sent as one task's dependencies: the
scheduler takes in a task's dependencies in one step of its event loop (about
15 us each: over a million children, tens of seconds in which it answers no one,
and the client's connection times out).  :func:`parts_of` splits it into
:class:`Parts`, each a task gathering :data:`PART_SIZE` children's values into a
list, sent one message each; the task over the group depends on the parts only
and gets their lists joined, the same values in the same order.

Examples
--------
>>> import pickle
>>> from dask._task_spec import TaskRef
>>> t = GroupTask("total-1", sum, Siblings("load-1", 3))
>>> sorted(t.dependencies)
[('load-1', 0), ('load-1', 1), ('load-1', 2)]
>>> t({("load-1", 0): 1, ("load-1", 1): 2, ("load-1", 2): 3})
6
>>> len(pickle.dumps(GroupTask("total-1", sum, Siblings("load-1", 10**6)))) < 200
True
>>> from dask._task_spec import List
>>> t = GroupTask("pair", lambda *a: a, TaskRef("x"), 7, List(TaskRef("y")), Siblings("m", 2))
>>> sorted(t.dependencies, key=str)
[('m', 0), ('m', 1), 'x', 'y']
>>> t({"x": 1, "y": 2, ("m", 0): 3, ("m", 1): 4})
(1, 7, [2], [3, 4])
>>> parts, tasks = parts_of(Siblings("m", 5), size=2)
>>> parts, [sorted(p.dependencies) for p in tasks]
(Parts('m_part', 3), [[('m', 0), ('m', 1)], [('m', 2), ('m', 3)], [('m', 4)]])
>>> values = {("m", i): i * 10 for i in range(5)}
>>> lists = {p.key: p(values) for p in tasks}
>>> GroupTask("total", sum, parts)(lists), GroupTask("all", list, parts)(lists)
(100, [0, 10, 20, 30, 40])
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from dask._task_spec import GraphNode, Task, TaskRef

__all__ = ["PART_SIZE", "GroupTask", "Parts", "Siblings", "parts_of"]

# Children per part of a wide group (and the widest group sent whole): a part's
# dependencies take the scheduler about 0.15 s to take in
PART_SIZE = 10_000


class Siblings:
    """The keys ``(base, start)`` ... ``(base, n - 1)``: a mapped node's children."""

    __slots__ = ("base", "n", "start")

    def __init__(self, base: str, n: int, start: int = 0) -> None:
        self.base, self.n, self.start = base, n, start

    def __iter__(self) -> Iterator[tuple[str, int]]:
        base = self.base
        return ((base, i) for i in range(self.start, self.n))

    def __len__(self) -> int:
        return self.n - self.start

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.base, self.n, self.start)

    def __dask_tokenize__(self) -> tuple[str, str, int, int]:
        return (type(self).__name__, self.base, self.n, self.start)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and (other.base, other.n, other.start) == (
            self.base, self.n, self.start)

    def __hash__(self) -> int:
        return hash((self.base, self.n, self.start))

    def __repr__(self) -> str:
        tail = f", {self.start}" if self.start else ""
        return f"{type(self).__name__}({self.base!r}, {self.n}{tail})"


class Parts(Siblings):
    """The keys of the parts of a wide group (:func:`parts_of`): their values are lists,
    joined in order into the group's list of values."""

    __slots__ = ()


def listed(values: list[Any]) -> list[Any]:
    """A part's task: the list of its children's values."""
    return values


def parts_of(group: Siblings, size: int | None = None) -> tuple[Parts, list[GroupTask]]:
    """``group`` as :class:`Parts` of at most ``size`` keys (default :data:`PART_SIZE`),
    and the tasks making them.

    The parts' keys are ``(<base>_part-<token>, j)``: named after the group's base,
    so the dashboard shows them beside it, and the same for every task over the group.
    """
    prefix, _, token = group.base.rpartition("-")
    base = f"{prefix}_part-{token}" if prefix else f"{group.base}_part"
    starts = range(group.start, group.n, size or PART_SIZE)
    tasks = [GroupTask((base, j), listed, Siblings(group.base, min(group.n, s + (size or PART_SIZE)), s))
             for j, s in enumerate(starts)]
    return Parts(base, len(tasks)), tasks


class GroupTask(Task):
    """``func(*args)`` where a :class:`Siblings` argument stands for its keys' values
    (a list) and a reference for its key's value; dependencies made when read."""

    __slots__ = ()

    def __init__(self, key: Any, func: Callable[..., Any], /, *args: Any) -> None:
        Task.__init__(self, key, func)  # the base's fields, whatever this Dask's are
        self.args = args
        self._dependencies = None  # type: ignore[assignment]

    @property
    def dependencies(self) -> frozenset:
        deps = self._dependencies
        if deps is None:
            keys: set[Any] = set()
            for a in self.args:
                if isinstance(a, TaskRef):
                    keys.add(a.key)
                elif isinstance(a, Siblings):  # Parts too
                    keys.update(a)
                elif isinstance(a, GraphNode):  # a List of other keys
                    keys.update(a.dependencies)
            deps = self._dependencies = frozenset(keys)
        return deps

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuilt, (self.key, self.func, self.args)

    def copy(self) -> GroupTask:
        return GroupTask(self.key, self.func, *self.args)

    def __call__(self, values: Any = ()) -> Any:
        def value(a: Any) -> Any:
            if isinstance(a, TaskRef):
                return values[a.key]
            if isinstance(a, Parts):
                return [v for k in a for v in values[k]]
            if isinstance(a, Siblings):
                return [values[k] for k in a]
            if isinstance(a, GraphNode):
                return a({k: values[k] for k in a.dependencies})
            return a

        return self.func(*[value(a) for a in self.args])


def _rebuilt(key: Any, func: Callable[..., Any], args: tuple[Any, ...]) -> GroupTask:
    return GroupTask(key, func, *args)
