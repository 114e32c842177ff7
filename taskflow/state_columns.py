"""Each task run's State, in a few bytes per mapped child.

A flow run knows the State of every task run: while it runs (from the events)
and after (:attr:`taskflow.FlowRun.task_states`).  A dict of States costs about
350 bytes a task run (the name's string, the entry, the State and its two
floats): 350 MB for a map of a million children.  Here a mapped task's
children are columns, indexed by map index: one byte for the state type, four
for the attempts, eight for each of the start and end times (21 bytes a child).
A child whose State carries anything else (a message, an exception, a
traceback, a result location, a result) keeps that State whole, aside: those
are the failures, few in a map that went well.  The State of a child is made
when it is read, equal to the one recorded.

:class:`RunStates` is what the flow runner fills from the events;
:class:`TaskStates` is the read-only mapping a finished run hands out (task-run
name to State, in the plan's order: a mapped task's own State, then its
children's).  :class:`NameSet` is a set of task-run names, a bit a child.

Examples
--------
>>> from taskflow.states import State, StateType
>>> states = RunStates()
>>> states.set("sq[2]", State(StateType.SUCCESS, attempts=1, started_at=1.0, ended_at=2.0))
>>> states.set("load", State(StateType.FAILED, message="boom"))
>>> states.get("sq[2]"), states.get("load"), states.get("sq[1]")
(Success(), Failed(message='boom'), None)
>>> states.get("sq[2]").ended_at, states.kind("sq", 2), states.kind("sq", 0)
(2.0, <StateType.SUCCESS: 'SUCCESS'>, None)
>>> final = TaskStates(states, [("load", None), ("sq", 3)], {"sq": State(StateType.RUNNING)})
>>> list(final), len(final), final["sq[2]"] == states.get("sq[2]")
(['load', 'sq', 'sq[0]', 'sq[1]', 'sq[2]'], 5, True)
"""
from __future__ import annotations

import array
import math
from collections.abc import Callable, ItemsView, Iterable, Iterator, Mapping, ValuesView

from taskflow.states import State, StateType

__all__ = ["NameSet", "RunStates", "TaskStates", "child_of"]

_TYPES: list[StateType | None] = [None, *StateType]  # code -> type; 0: nothing recorded
_CODES = {t: i for i, t in enumerate(_TYPES) if t is not None}
_NAN = math.nan
_MAX_ATTEMPTS = 0xFFFFFFFF


def child_of(name: str) -> tuple[str, int] | None:
    """``(parent, index)`` for a mapped child's name ``parent[index]``, else None.

    Examples
    --------
    >>> child_of("load[3]"), child_of("sub/load[12]"), child_of("load"), child_of("x[a]")
    (('load', 3), ('sub/load', 12), None, None)
    """
    if not name.endswith("]"):
        return None
    cut = name.rfind("[")
    digits = name[cut + 1:-1]
    if cut <= 0 or not digits.isdigit() or not digits.isascii():
        return None
    return name[:cut], int(digits)


def _plain(state: State) -> bool:
    """Does ``state`` hold nothing but its type, attempts and times (a column's worth)?"""
    return (not state.message and state.exception is None and state.traceback is None
            and state.result is None and state.result_location is None)


class _Column:
    """The States of one mapped task's children, by map index."""

    __slots__ = ("types", "attempts", "started", "ended", "whole", "ranges")

    def __init__(self) -> None:
        self.types = bytearray()
        self.attempts = array.array("I")
        self.started = array.array("d")
        self.ended = array.array("d")
        self.whole: dict[int, State] = {}  # children whose State carries more
        self.ranges: list[tuple[int, int, State]] = []  # ... or one State for a range of them

    def _grow(self, index: int) -> None:
        more = max(index + 1, 2 * len(self.types)) - len(self.types)  # doubling: O(1) a child
        self.types.extend(bytes(more))
        self.attempts.frombytes(bytes(4 * more))
        nans = array.array("d", [_NAN]) * more
        self.started.extend(nans)
        self.ended.extend(nans)

    def set(self, index: int, state: State) -> None:
        if index >= len(self.types):
            self._grow(index)
        self.types[index] = _CODES[state.type]
        self.attempts[index] = min(max(state.attempts, 0), _MAX_ATTEMPTS)
        self.started[index] = _NAN if state.started_at is None else state.started_at
        self.ended[index] = _NAN if state.ended_at is None else state.ended_at
        if _plain(state) and not any(a <= index < b for a, b, _ in self.ranges):
            if self.whole:
                self.whole.pop(index, None)
        else:
            self.whole[index] = state

    def fill(self, start: int, stop: int, state: State) -> None:
        """Children ``start`` to ``stop - 1`` are all ``state`` (no entry each)."""
        if stop <= start:
            return
        if stop > len(self.types):
            self._grow(stop - 1)
        n = stop - start
        self.types[start:stop] = bytes([_CODES[state.type]]) * n
        self.attempts[start:stop] = array.array("I", [min(max(state.attempts, 0), _MAX_ATTEMPTS)]) * n
        self.started[start:stop] = array.array(
            "d", [_NAN if state.started_at is None else state.started_at]) * n
        self.ended[start:stop] = array.array(
            "d", [_NAN if state.ended_at is None else state.ended_at]) * n
        for i in [i for i in self.whole if start <= i < stop]:
            del self.whole[i]
        if not _plain(state):
            self.ranges.append((start, stop, state))

    def kind(self, index: int) -> StateType | None:
        return _TYPES[self.types[index]] if 0 <= index < len(self.types) else None

    def get(self, index: int) -> State | None:
        kind = self.kind(index)
        if kind is None:
            return None
        found = self.whole.get(index)
        if found is not None:
            return found
        for start, stop, state in self.ranges:
            if start <= index < stop:
                return state
        started, ended = self.started[index], self.ended[index]
        return State(kind, attempts=self.attempts[index],
                     started_at=None if started != started else started,  # NaN: unknown
                     ended_at=None if ended != ended else ended)

    def count(self, kind: StateType) -> int:
        """How many children are ``kind`` (in C: one pass over the bytes)."""
        return self.types.count(_CODES[kind])

    def nbytes(self) -> int:
        return len(self.types) * 21


class RunStates:
    """Task-run name to its last State, mapped children in columns (any thread may set).

    A name that reads as a mapped child's (``parent[i]``) goes to ``parent``'s
    column; any other to a dict.  Reading parses the name the same way, so what
    was set is found whatever the name.
    """

    __slots__ = ("own", "_columns")

    def __init__(self) -> None:
        self.own: dict[str, State] = {}
        self._columns: dict[str, _Column] = {}

    def set(self, name: str, state: State, map_index: int | None = None) -> None:
        """Record ``state`` as task run ``name``'s (``map_index``: a hint, checked)."""
        child = child_of(name)
        if child is None:
            self.own[name] = state
            return
        parent, index = child
        column = self._columns.get(parent)
        if column is None:
            column = self._columns.setdefault(parent, _Column())
        column.set(index, state)

    def set_child(self, parent: str, index: int, state: State) -> None:
        """Record ``state`` as child ``index`` of mapped task ``parent`` (no name made)."""
        column = self._columns.get(parent)
        if column is None:
            column = self._columns.setdefault(parent, _Column())
        column.set(index, state)

    def get(self, name: str) -> State | None:
        found = self.own.get(name)
        if found is not None:
            return found
        child = child_of(name)
        if child is None:
            return None
        column = self._columns.get(child[0])
        return column.get(child[1]) if column is not None else None

    def fill(self, parent: str, start: int, stop: int, state: State) -> None:
        """Children ``start`` to ``stop - 1`` of ``parent`` are all ``state``."""
        column = self._columns.get(parent)
        if column is None:
            column = self._columns.setdefault(parent, _Column())
        column.fill(start, stop, state)

    def kind(self, parent: str, index: int) -> StateType | None:
        """The state type of child ``index`` of ``parent``, without making its State."""
        column = self._columns.get(parent)
        return column.kind(index) if column is not None else None

    def child(self, parent: str, index: int) -> State | None:
        column = self._columns.get(parent)
        return column.get(index) if column is not None else None

    def count(self, parent: str, kind: StateType, width: int) -> int:
        """How many of ``parent``'s first ``width`` children are ``kind``."""
        column = self._columns.get(parent)
        if column is None:
            return 0
        code = _CODES[kind]
        return column.types.count(code, 0, width) if len(column.types) else 0

    def nbytes(self) -> int:
        """Bytes held by the columns (the dicts of States aside)."""
        return sum(c.nbytes() for c in self._columns.values())


class TaskStates(Mapping[str, State]):
    """A finished run's task states: task-run name to State, read-only.

    Parameters
    ----------
    states : RunStates
        The States recorded (children read from its columns).
    order : list of (name, width)
        The run's task runs in order: ``(name, None)`` for a task run, ``(name, n)``
        for a mapped task, standing for itself and its children ``name[0]`` ...
        ``name[n - 1]``.
    parents : dict
        Each mapped task's own State.
    """

    __slots__ = ("_states", "_order", "_parents", "_widths", "_len")

    def __init__(self, states: RunStates, order: list[tuple[str, int | None]],
                 parents: dict[str, State]) -> None:
        self._states = states
        self._order = order
        self._parents = parents
        self._widths = {name: width for name, width in order if width is not None}
        self._len = sum(1 + (width or 0) for _, width in order)

    def __getitem__(self, name: str) -> State:
        found = self._parents.get(name)
        if found is not None:
            return found
        found = self._states.own.get(name)
        if found is not None:
            return found
        child = child_of(name)
        if child is not None and child[1] < self._widths.get(child[0], 0):
            found = self._states.child(*child)
            if found is not None:
                return found
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        for name, width in self._order:
            yield name
            if width:
                yield from (f"{name}[{i}]" for i in range(width))

    def __len__(self) -> int:
        return self._len

    def __contains__(self, name: object) -> bool:
        try:
            self[name]  # type: ignore[index]
        except (KeyError, TypeError):
            return False
        return True

    def pairs(self) -> Iterator[tuple[str, State]]:
        """``(name, State)`` in order, each State made as it is read."""
        states = self._states
        for name, width in self._order:
            if width is None:
                yield name, self[name]
                continue
            yield name, self._parents[name]
            for i in range(width):
                state = states.child(name, i)
                assert state is not None, f"{name}[{i}] has no state"
                yield f"{name}[{i}]", state

    def differing(
        self,
        own: Callable[[str], tuple[str, int] | None],
        child: Callable[[str, int], tuple[str, int] | None],
    ) -> Iterator[tuple[str, State]]:
        """``(name, State)`` of the task runs whose ``(type value, attempts)`` is not what
        ``own(name)`` (a task run, a mapped task) or ``child(parent, index)`` says; a
        child's name and State are made only when they differ."""
        states = self._states
        for name, width in self._order:
            state = self[name]
            if own(name) != (state.type.value, state.attempts):
                yield name, state
            column = states._columns.get(name) if width else None
            if column is None:
                for i in range(width or 0):  # no state at all: they differ
                    yield f"{name}[{i}]", self[f"{name}[{i}]"]
                continue
            types, attempts = column.types, column.attempts
            for i in range(width):  # type: ignore[arg-type]
                kind = _TYPES[types[i]] if i < len(types) else None
                if kind is None or child(name, i) != (kind.value, attempts[i]):
                    found = column.get(i)
                    if found is not None:
                        yield f"{name}[{i}]", found

    def items(self) -> ItemsView[str, State]:
        """``(name, State)`` pairs in order (:meth:`pairs`, as a view)."""
        return _Items(self)

    def values(self) -> ValuesView[State]:
        """The States in order, each made as it is read."""
        return _Values(self)

    def counts(self, kinds: Iterable[StateType]) -> dict[StateType, int]:
        """How many task runs are of each of ``kinds`` (children counted in C)."""
        wanted = list(kinds)
        out = dict.fromkeys(wanted, 0)
        for name, width in self._order:
            state = self._parents[name] if width is not None else self[name]
            if state.type in out:
                out[state.type] += 1
            if width:
                for kind in wanted:
                    out[kind] += self._states.count(name, kind, width)
        return out

    def __repr__(self) -> str:
        return f"<TaskStates of {self._len} task runs>"


class _Items(ItemsView[str, State]):
    _mapping: TaskStates

    def __iter__(self) -> Iterator[tuple[str, State]]:
        return self._mapping.pairs()


class _Values(ValuesView[State]):
    _mapping: TaskStates

    def __iter__(self) -> Iterator[State]:
        return (state for _, state in self._mapping.pairs())


class NameSet:
    """A set of task-run names; mapped children as one byte each, by map index.

    Examples
    --------
    >>> ended = NameSet()
    >>> ended.add("sq[3]"); ended.add("load")
    >>> "sq[3]" in ended, "sq[2]" in ended, "load" in ended, ended.has_child("sq", 3), len(ended)
    (True, False, True, True, 2)
    """

    __slots__ = ("_own", "_kids", "_n")

    def __init__(self) -> None:
        self._own: set[str] = set()
        self._kids: dict[str, bytearray] = {}
        self._n = 0

    def add(self, name: str) -> None:
        child = child_of(name)
        if child is None:
            if name not in self._own:
                self._own.add(name)
                self._n += 1
            return
        parent, index = child
        kids = self._kids.get(parent)
        if kids is None:
            kids = self._kids.setdefault(parent, bytearray())
        if index >= len(kids):
            kids.extend(bytes(max(index + 1, 2 * len(kids)) - len(kids)))
        if not kids[index]:
            kids[index] = 1
            self._n += 1

    def has_child(self, parent: str, index: int) -> bool:
        kids = self._kids.get(parent)
        return kids is not None and 0 <= index < len(kids) and kids[index] == 1

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if name in self._own:
            return True
        child = child_of(name)
        return child is not None and self.has_child(*child)

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"<NameSet of {self._n} names>"
