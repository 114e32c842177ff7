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
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from dask._task_spec import GraphNode, Task, TaskRef

__all__ = ["GroupTask", "Siblings"]


class Siblings:
    """The keys ``(base, 0)`` ... ``(base, n - 1)``: a mapped node's children."""

    __slots__ = ("base", "n")

    def __init__(self, base: str, n: int) -> None:
        self.base, self.n = base, n

    def __iter__(self) -> Iterator[tuple[str, int]]:
        base = self.base
        return ((base, i) for i in range(self.n))

    def __len__(self) -> int:
        return self.n

    def __reduce__(self) -> tuple[Any, ...]:
        return Siblings, (self.base, self.n)

    def __dask_tokenize__(self) -> tuple[str, str, int]:
        return ("Siblings", self.base, self.n)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Siblings) and (other.base, other.n) == (self.base, self.n)

    def __hash__(self) -> int:
        return hash((self.base, self.n))

    def __repr__(self) -> str:
        return f"Siblings({self.base!r}, {self.n})"


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
                elif isinstance(a, Siblings):
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
            if isinstance(a, Siblings):
                return [values[k] for k in a]
            if isinstance(a, GraphNode):
                return a({k: values[k] for k in a.dependencies})
            return a

        return self.func(*[value(a) for a in self.args])


def _rebuilt(key: Any, func: Callable[..., Any], args: tuple[Any, ...]) -> GroupTask:
    return GroupTask(key, func, *args)
