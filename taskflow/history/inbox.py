"""The history writer's queue: bounded, and cheap to put into.

Events arrive by the hundred per second on the Dask client's event loop and are
put here by the recorder's hooks; one writer thread takes them
(:mod:`taskflow.history.recorder`).  Putting does not wake the writer unless
asked, and past a bound it makes whoever puts wait for the writer
(back-pressure), so a writer behind a wide run holds a bounded number of events;
nothing is ever dropped.

Examples
--------
>>> box = Inbox(limit=2)
>>> box.put("a"); box.put("b"); box.full()
True
>>> box.take(), box.take(), box.take()
('a', 'b', None)
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Inbox"]

logger = logging.getLogger("taskflow.history")


class Inbox:
    """The writer's queue: putting an item does not wake the writer unless asked.

    Events arrive by the hundred per second on the Dask client's event loop;
    waking a thread for each would hand the GIL back and forth every time.  The
    writer looks at its inbox once per flush interval while runs go on, and is
    woken at once only for what someone waits on (a run's end, a stop).

    Bounded: past ``limit`` items, :meth:`put` wakes the writer and waits (up to
    ``patience`` seconds, then adds anyway: nothing is dropped) until it has taken
    some, except in the writer's own thread (``owner``), which never waits on itself.
    ``bound()`` may say more than ``limit`` for now (the writer is still opening its
    database: a slow connect should hold a few more events, not the run's event loop),
    or 0 (no writer takes items any more: nobody waits).
    """

    def __init__(self, limit: int = 0, patience: float = 60.0) -> None:
        self._items: collections.deque[Any] = collections.deque()
        self._wake = threading.Event()
        self._room = threading.Condition(threading.Lock())
        self.limit = limit  # 0: no bound
        self.patience = patience
        self.owner: int | None = None  # the writer thread's ident
        self.bound: Callable[[], int] = lambda: self.limit  # the bound now (0: none)
        self._gave_up = 0.0  # a writer that took nothing for `patience`: not waited for again
        self._waiting = 0
        self.waits = 0  # how many times someone waited for room (a measure of back-pressure)

    def put(self, item: Any, wake: bool = False) -> None:
        if (self.limit and len(self._items) >= self.limit and threading.get_ident() != self.owner
                and not self._gave_up):
            self._wait_for_room()
        self._items.append(item)
        if wake:
            self._wake.set()

    def _wait_for_room(self) -> None:
        deadline = time.monotonic() + self.patience
        with self._room:
            self._waiting += 1
            self.waits += 1
            try:
                while (bound := self.bound()) and len(self._items) >= bound:
                    self._wake.set()
                    left = deadline - time.monotonic()
                    if left <= 0:
                        logger.warning("run history: the writer took no event for %g s; "
                                       "queueing more without waiting for it", self.patience)
                        self._gave_up = time.monotonic()
                        return
                    self._room.wait(min(left, 1.0))
            finally:
                self._waiting -= 1

    def take(self) -> Any:
        """The oldest item, or None."""
        try:
            item = self._items.popleft()
        except IndexError:
            return None
        self._gave_up = 0.0  # it takes again: wait for it again
        if self._waiting and len(self._items) < self.limit:
            with self._room:
                self._room.notify_all()
        return item

    def wait(self, timeout: float) -> None:
        """Until woken or ``timeout`` seconds passed."""
        self._wake.wait(timeout)
        self._wake.clear()

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        """At or past the bound (whoever puts now waits, once a writer takes)."""
        return bool(self.limit) and len(self._items) >= self.limit

    def __bool__(self) -> bool:
        return bool(self._items)
