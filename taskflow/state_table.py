"""The last state of every task run of one run, in a few bytes each.

What follows a run's events as they come (the history's writer, the progress
bar) must know each task run's last state: to count a task run that goes back
from SUCCESS to RUNNING (Dask recomputing a lost result) once, and to see at
the end which states the events never told.  A dict of names costs ~150 bytes
a task run (the name's string, the entry, the value): 150 MB for a map of a
million children.  :class:`StateTable` keeps mapped children (events with a
``map_index``) in arrays per mapped task, indexed by map index: one byte for
the state, and, when asked, four for the attempts.  Other task runs (as many
as the flow has tasks) stay in a dict.

Examples
--------
>>> table = StateTable(attempts=True)
>>> table.set("sq[3]", 3, "SUCCESS", 1)
>>> table.set("load", None, "FAILED", 2)
>>> table.get("sq[3]"), table.get("load"), table.get("sq[2]"), table.get("x")
(('SUCCESS', 1), ('FAILED', 2), None, None)
>>> table.state("sq[3]", 3), table.nbytes() < 100
('SUCCESS', True)
"""
from __future__ import annotations

import array

from taskflow.state_columns import child_of
from taskflow.states import StateType

__all__ = ["StateTable"]

_CODES = {t.value: i + 1 for i, t in enumerate(StateType)}  # 0: nothing known
_TYPES = [""] + [t.value for t in StateType]
_PAIRS: dict[tuple[str, int], tuple[str, int]] = {}  # (state, attempts) tuples, shared


class StateTable:
    """Task-run name to its last (state, attempts), compact for mapped children.

    Parameters
    ----------
    attempts : bool
        Keep each task run's attempts too (else :meth:`get` says 0).
    """

    __slots__ = ("_kids", "_own", "_tries")

    def __init__(self, attempts: bool = False) -> None:
        self._own: dict[str, tuple[str, int]] = {}
        self._kids: dict[str, tuple[bytearray, array.array[int] | None]] = {}
        self._tries = attempts

    def set(self, name: str, map_index: int | None, state: str, attempts: int = 0) -> None:
        """Record ``name``'s state (``map_index``: it is that child of its mapped task)."""
        code = _CODES.get(state)
        cut = name.rfind("[") if map_index is not None else -1
        if code is None or cut <= 0 or map_index is None or map_index < 0:
            pair = (state, attempts if self._tries else 0)
            self._own[name] = _PAIRS.setdefault(pair, pair)
            return
        parent = name[:cut]
        kids = self._kids.get(parent)
        if kids is None:
            kids = self._kids[parent] = (bytearray(), array.array("I") if self._tries else None)
        codes, tries = kids
        if map_index >= len(codes):  # grows by doubling: amortised O(1) a child
            more = max(map_index + 1, 2 * len(codes)) - len(codes)
            codes.extend(bytes(more))
            if tries is not None:
                tries.frombytes(bytes(tries.itemsize * more))
        codes[map_index] = code
        if tries is not None:
            tries[map_index] = min(max(attempts, 0), 0xFFFFFFFF)

    def get(self, name: str) -> tuple[str, int] | None:
        """``(state, attempts)`` of ``name``, or None when nothing was recorded."""
        found = self._own.get(name)
        if found is not None:
            return found
        child = child_of(name)
        return self.child(*child) if child is not None else None

    def child(self, parent: str, index: int) -> tuple[str, int] | None:
        """``(state, attempts)`` of child ``index`` of mapped task ``parent`` (no name made)."""
        kids = self._kids.get(parent)
        if kids is None or not 0 <= index < len(kids[0]) or not kids[0][index]:
            return None
        return _TYPES[kids[0][index]], (kids[1][index] if kids[1] is not None else 0)

    def state(self, name: str, map_index: int | None = None) -> str | None:
        """The state of ``name`` (faster with its ``map_index``), or None."""
        if map_index is not None and map_index >= 0:
            kids = self._kids.get(name[:name.rfind("[")])
            code = kids[0][map_index] if kids is not None and map_index < len(kids[0]) else 0
            if code:
                return _TYPES[code]
        found = self.get(name)
        return found[0] if found is not None else None

    def nbytes(self) -> int:
        """Bytes held by the arrays of mapped children (the dict of others not counted)."""
        return sum(len(c) + (t.itemsize * len(t) if t is not None else 0)
                   for c, t in self._kids.values())
