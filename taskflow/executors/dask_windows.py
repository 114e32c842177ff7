"""Send a wide flow to Dask a window at a time, the next window as earlier ones finish.

A plan hands the executor :class:`~taskflow.engine.steps.Batch` es whose steps are
made as they are taken (a map of a million children is planned a window at a
time).  :class:`Windows` keeps the batches not wholly sent, in order, and says
what to send next:

* the **first window** of each batch is small (``taskflow.dask.first-window``
  steps), so the first tasks of any flow or map, however wide, start at once;
* later windows have ``taskflow.dask.submit-window`` steps, and at most two
  windows are unfinished at a time: the next goes when the oldest unfinished
  one has finished (every step of a window ends in some state: done, failed,
  lost or cancelled).  So the scheduler and this client hold a bounded number of
  tasks that have not run, whatever the width, as ``distributed.as_completed``
  patterns do;
* steps go in the order the plan made them, so every step is sent after the
  steps it depends on (in its window or an earlier one).

A batch that fits in one window goes as one graph, as before.  The driving loop
(:meth:`DaskExecutor._drive <taskflow.executors.dask.DaskExecutor>`) waits on
:meth:`Windows.wait`, woken by state events and by length facts arriving; a
window's progress is read from its futures, so lost events never stall it.

Examples
--------
>>> from taskflow.engine.steps import Batch, Probe
>>> w = Windows(size=2, first=1)
>>> w.add(Batch(source=iter([Probe(f"p_state-{i}", f"p-{i}") for i in range(4)])))
>>> [s.key for s in w.take()]
['p_state-0']
"""
from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from taskflow import config

if TYPE_CHECKING:
    from distributed import Future

    from taskflow.engine.steps import Batch, Step

__all__ = ["Windows", "window_sizes"]

_UNFINISHED_WINDOWS = 2


def window_sizes() -> tuple[int, int]:
    """``(submit-window, first-window)`` from ``taskflow.dask``; 0 turns windows off.

    Raises
    ------
    ValueError
        When either is not a whole number of at least 0.

    Examples
    --------
    >>> window_sizes()
    (10000, 500)
    """
    out = []
    for key in ("dask.submit-window", "dask.first-window"):
        value = config.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"taskflow.{key} must be a whole number of steps (0: no "
                             f"windows), not {value!r}")
        out.append(value)
    size, first = out
    if size == 0:
        return 0, 0
    return size, min(first or size, size)


class Windows:
    """The batches of one run still to send, and the windows sent and not finished.

    Parameters
    ----------
    size : int
        Steps per window (0: every batch goes whole).
    first : int
        Steps of the run's first window.
    """

    def __init__(self, size: int, first: int) -> None:
        self.size = size
        self.first = first if size else 0
        self._batches: deque[Batch] = deque()
        self._sent: deque[list[Future]] = deque()  # unfinished windows, oldest first
        self._cursor = 0  # futures of the oldest window seen finished, in order
        self._wake = threading.Event()
        self._events: list[dict[str, Any]] = []  # of batches sent wholly, not yet asked for
        self._started: Batch | None = None  # the batch whose first window went last
        self.windows = 0  # windows sent so far

    def add(self, batch: Batch) -> None:
        """Queue ``batch`` after the batches not wholly sent."""
        self._batches.append(batch)
        self._wake.set()

    def events(self) -> list[dict[str, Any]]:
        """Client-side events made since last asked (mapped parents that resolved)."""
        out, self._events = self._events, []
        for b in self._batches:
            if b.events:
                out.extend(b.events)
                b.events.clear()
        return out

    @property
    def pending(self) -> bool:
        """True while some queued step was not sent."""
        while self._batches and self._batches[0].exhausted:
            self._events.extend(self._batches.popleft().events)
        return bool(self._batches)

    def has_room(self) -> bool:
        """May the next window go now?  Yes while fewer than two sent ones are unfinished."""
        if not self.size:
            return True
        while self._sent:
            window = self._sent[0]
            while self._cursor < len(window) and window[self._cursor].status != "pending":
                self._cursor += 1
            if self._cursor < len(window):
                break
            self._sent.popleft()
            self._cursor = 0
        return len(self._sent) < _UNFINISHED_WINDOWS

    def take(self) -> list[Step]:
        """The next window's steps (empty when nothing is queued).

        A window that starts a batch is ``first`` steps at most: a map learning
        its length of a million sends its first children at once.
        """
        out: list[Step] = []
        n: int | None = None
        while self.pending:
            batch = self._batches[0]
            if n is None and self.size:
                n = self.first if batch is not self._started else self.size
                self._started = batch
            if n is None:
                out.extend(batch.steps)
                batch.take(len(batch.steps))
                continue
            out.extend(batch.take(n - len(out)))
            if len(out) >= n:
                break
        if out:
            self.windows += 1
        return out

    def sent(self, futures: list[Future]) -> None:
        """The futures of the window just sent (what :meth:`has_room` watches)."""
        if self.size and futures:
            self._sent.append(futures)

    def wake(self, *_: Any) -> None:
        """Something finished (a state event, a length fact): look again."""
        self._wake.set()

    def wait(self, timeout: float) -> None:
        """Until :meth:`wake` or ``timeout`` seconds."""
        self._wake.wait(timeout)
        self._wake.clear()

    def clear(self) -> list[dict[str, Any]]:
        """Forget the batches and windows (the run ends); the events not asked for yet."""
        events = self.events()
        self._batches.clear()
        self._sent.clear()
        self._cursor = 0
        return events
