"""How a planned node's output is reached, and the keys a plan makes.

A node the plan has resolved is a single key (:class:`Single`), a mapped node's
children (:class:`Children`, their keys made when read: a million children need
no tuple of a million keys), or a state marker when it could not run
(:class:`Broken`).  Part of :mod:`taskflow.engine.plan`; plain Python.

Examples
--------
>>> keys = ChildKeys("load-abc", 3)
>>> list(keys), keys[-1], len(keys)
([('load-abc', 0), ('load-abc', 1), ('load-abc', 2)], ('load-abc', 2), 3)
>>> derived(("load-abc", 2), "item")
('load_item-abc', 2)
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Union

from taskflow.engine.markers import StateMarker
from taskflow.engine.steps import Key
from taskflow.graph import is_mappable_constant

__all__ = ["Broken", "ChildKeys", "ChildNames", "Children", "KeyDep", "Later", "Out", "Single", "derived",
           "keys_of", "nothing", "param_elements", "split", "token", "total"]


# How a resolved node's output is reached.
@dataclass(frozen=True)
class Single:
    key: Key


class _MadeWhenRead(Sequence[Any]):
    """A sequence of ``n`` items, item ``j`` made by ``_at(j)`` when read."""

    __slots__ = ("n",)
    n: int

    def _at(self, j: int) -> Any:
        raise NotImplementedError

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self._at(j) for j in range(*i.indices(self.n))]
        if not -self.n <= i < self.n:
            raise IndexError(i)
        return self._at(i % self.n)


class ChildKeys(_MadeWhenRead):
    """The keys of a mapped node's children, ``(base, 0)`` ... ``(base, n - 1)``, made
    when read (a million children need no tuple of a million keys)."""

    __slots__ = ("base",)

    def __init__(self, base: str, n: int) -> None:
        self.base, self.n = base, n

    def _at(self, j: int) -> Key:
        return (self.base, j)

    def __iter__(self) -> Iterator[Key]:  # inline: a window graph iterates a million
        base = self.base
        return ((base, i) for i in range(self.n))


class ChildNames(_MadeWhenRead):
    """The task-run names of a mapped node's children, ``node[0]`` ... ``node[n - 1]``,
    made when read.

    Examples
    --------
    >>> names = ChildNames("sq", 3)
    >>> list(names), names[-1], len(names)
    (['sq[0]', 'sq[1]', 'sq[2]'], 'sq[2]', 3)
    """

    __slots__ = ("node",)

    def __init__(self, node: str, n: int) -> None:
        self.node, self.n = node, n

    def _at(self, j: int) -> str:
        return f"{self.node}[{j}]"

    def __iter__(self) -> Iterator[str]:
        node = self.node
        return (f"{node}[{i}]" for i in range(self.n))


class Later:
    """Keys some node still pending will depend on: single keys, and whole sets of
    children (``(base, i)`` for ``i < n``) kept as ``base -> n``, so asking whether a
    child of a map of a million is needed makes no set of a million keys.

    Examples
    --------
    >>> later = Later()
    >>> later.add("total-abc"); later.update(ChildKeys("load-abc", 3))
    >>> "total-abc" in later, ("load-abc", 2) in later, ("load-abc", 3) in later
    (True, True, False)
    """

    __slots__ = ("_keys", "_children")

    def __init__(self) -> None:
        self._keys: set[Key] = set()
        self._children: dict[str, int] = {}

    def add(self, key: Key) -> None:
        self._keys.add(key)

    def update(self, keys: Sequence[Key]) -> None:
        if isinstance(keys, ChildKeys):
            self._children[keys.base] = max(keys.n, self._children.get(keys.base, 0))
        else:
            self._keys.update(keys)

    def has_children_of(self, base: str) -> bool:
        """Is any child ``(base, i)`` needed?"""
        return base in self._children

    def __contains__(self, key: object) -> bool:
        if type(key) is tuple and len(key) == 2 and type(key[1]) is int:
            n = self._children.get(key[0])  # type: ignore[call-overload]
            if n is not None and 0 <= key[1] < n:
                return True
        try:
            return key in self._keys
        except TypeError:  # unhashable: no key of ours
            return False

    def __bool__(self) -> bool:
        return bool(self._keys or self._children)


@dataclass(frozen=True)
class Children:
    keys: Sequence[Key]


@dataclass(frozen=True)
class Broken:
    marker: StateMarker


Out = Union[Single, Children, Broken]


@dataclass(frozen=True)
class KeyDep:
    """Inside a child's template: depend on ``key`` directly (an item or sibling child),
    taking its element ``index`` inside the task when given."""

    key: Key
    name: str
    index: int | tuple[int, int] | None = None


def derived(key: Key, suffix: str) -> Key:
    """A key next to ``key``: ``load-abc`` -> ``load_len-abc`` (dashboard groups by prefix)."""
    base, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
    prefix, _, token = base.rpartition("-")
    new = f"{prefix}_{suffix}-{token}"
    return (new, *rest) if rest else new



def keys_of(out: dict[int, Out], ids: list[int]) -> list[Key]:
    keys: list[Key] = []
    for nid in ids:
        o = out.get(nid)
        if isinstance(o, Single):
            keys.append(o.key)
        elif isinstance(o, Children):
            keys.extend(o.keys)
    return list(dict.fromkeys(keys))


def token(run_id: str, name: str) -> str:
    """A key's token, unique per run and task-run name (md5, as Dask's tokens: a
    tenth of ``tokenize``'s cost, which a fan-out of 100,000 paid for seconds)."""
    return hashlib.md5(f"{run_id}\x00{name}".encode(), usedforsecurity=False).hexdigest()


def nothing(*_: Any) -> None:
    """What a window's hold key would compute: nothing (it is released before it runs)."""
    return None


def param_elements(value: Any, flat: bool) -> list[Any] | None:
    if not is_mappable_constant(value):
        return None
    items = list(value)
    if flat:
        if not all(is_mappable_constant(x) for x in items):
            return None
        items = [x for inner in items for x in inner]
    return items


def total(o: Out, facts: list[Any], flat: bool) -> int:
    """The number of elements a map source has, from its length facts."""
    if isinstance(o, Children) and not flat:
        return int(facts[0])  # the number of children, known without a fact
    if not flat:
        return int(facts[0][0])
    if isinstance(o, Children):
        return sum(int(f[0]) for f in facts)
    return sum(facts[0][0])


def split(lengths: list[int], i: int) -> tuple[int, int]:
    for outer, n in enumerate(lengths):
        if i < n:
            return outer, i
        i -= n
    raise IndexError(i)
