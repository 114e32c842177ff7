"""Send a wide flow to Dask a window at a time, the next window as earlier ones finish.

A plan hands the executor :class:`~taskflow.engine.steps.Batch` es whose steps are
made as they are taken (a map of a million children is planned a window at a
time).  :class:`Windows` keeps the batches not wholly sent, in order, and says
what to send next:

* the **first window** of each batch is small (``taskflow.dask.first-window``
  steps), so the first tasks of any flow or map, however wide, start at once;
  the batch's second window is planned only once a task run of the first has
  been heard from (or after ``_FIRST_GRACE`` seconds): with an embedded
  LocalCluster the scheduler shares this process, and planning and sending
  10,000 steps would delay the first tasks by seconds;
  a batch of at most four first windows (and one window) goes whole, as one graph;
* later windows have ``taskflow.dask.submit-window`` steps, and the next goes
  when the oldest unfinished one has finished (every task run of a window
  reported its end, and its futures, if any, are done) or a window's worth of
  task runs ended across those sent (Dask interleaves windows sent one after
  the other).  So the scheduler and this client hold a bounded number of
  tasks that have not run, whatever the width, as ``distributed.as_completed``
  patterns do;
* steps go in the order the plan made them, so every step is sent after the
  steps it depends on (in its window or an earlier one).

A batch that fits in one window goes as one graph, as before.  The driving loop
(:meth:`DaskExecutor._drive <taskflow.executors.dask.DaskExecutor>`) waits on
:meth:`Windows.wait`, woken by state events and by length facts arriving.  A
window's progress is read from the ends its task runs report (most of its
keys have no Future: :mod:`~taskflow.executors.dask_wants`); a window whose ends
have not all arrived after ``_LOOK_AFTER`` seconds is looked up on the scheduler
(a key Dask lost reports nothing), so lost events never stall it.

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
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from taskflow import config
from taskflow.engine.steps import PlannedTask

if TYPE_CHECKING:
    from distributed import Client, Future

    from taskflow.engine.steps import Batch, Key, Step

__all__ = ["Window", "Windows", "still_running", "window_sizes"]

_UNFINISHED_WINDOWS = 2
_LOOK_AFTER = 2.0  # seconds without any end heard from the oldest window: ask the scheduler
# A split batch's second window waits this long at most for its first window to be heard
# from: planned and sent at once, it would take the client's and the scheduler's time
# (one process with an embedded LocalCluster) while the first tasks are being started
_FIRST_GRACE = 1.0


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


class Window:
    """One window sent: its task runs not heard ending, and its futures."""

    __slots__ = ("open", "futures", "looked", "heard", "first", "started")

    def __init__(self, open_: dict[str, Key], first: bool = False) -> None:
        self.open = open_  # task-run name -> key, until its end is heard
        self.futures: list[Future] = []  # of lengths and kept tasks
        self.looked = time.monotonic()
        self.heard = self.looked  # when an end was last heard
        self.first = first  # the first window of a batch sent in several
        self.started = not open_  # has any of its task runs been heard from?

    def finished(self, look: Callable[[list[Key]], set[Key]] | None) -> bool:
        """Has every step ended?  ``look`` asks the scheduler which keys still run."""
        if any(f.status == "pending" for f in self.futures):
            return False
        if not self.open:
            return True
        if look is None or time.monotonic() - max(self.looked, self.heard) < _LOOK_AFTER:
            return False  # ends still arrive: no need to ask
        items = _items(self.open)
        running = look([k for _, k in items])
        for name, key in items:
            if key not in running:
                self.open.pop(name, None)
        self.looked = time.monotonic()
        return not self.open


def _items(d: dict[str, Key]) -> list[tuple[str, Key]]:
    """``d``'s items, read while another thread may remove some."""
    while True:
        try:
            return list(d.items())
        except RuntimeError:  # changed size during iteration: read again
            continue


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
        self.whole = min(4 * first, size)  # a batch this small goes as one window
        self._batches: deque[Batch] = deque()
        self._sent: deque[Window] = deque()  # unfinished windows, oldest first
        self._wake = threading.Event()
        self._events: list[dict[str, Any]] = []  # of batches sent wholly, not yet asked for
        self._started: Batch | None = None  # the batch whose first window went last
        self._split = False  # the window taken last is the first of a batch sent in several
        self.windows = 0  # windows sent so far
        self.done: list[Window] = []  # finished windows not handed on yet (see :meth:`finished`)

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

    def has_room(self, look: Callable[[list[Key]], set[Key]] | None = None) -> bool:
        """May the next window go now?  Yes while fewer than two sent ones are unfinished.

        Finished windows move to :attr:`done`."""
        while self._sent and self._sent[0].finished(look):
            self.done.append(self._sent.popleft())
        last = self._sent[-1] if self._sent else None
        if (last is not None and last.first and not last.started
                and time.monotonic() - last.looked < _FIRST_GRACE):
            return False  # its first tasks are being started: the next waits (_FIRST_GRACE)
        if not self.size or len(self._sent) < _UNFINISHED_WINDOWS:
            return True
        # Dask runs windows sent one after the other side by side, not one then the
        # next: a window's worth of task runs ended across them makes room as well
        return sum(len(w.open) for w in list(self._sent)) <= self.size

    def take(self) -> list[Step]:
        """The next window's steps (empty when nothing is queued).

        A window that starts a batch is ``first`` steps at most: a map learning
        its length of a million sends its first children at once.  A batch of
        ``4 * first`` steps at most (and no more than a window) goes whole: a
        flow of a few hundred tasks is one graph, with no key held for a next
        window.
        """
        out: list[Step] = []
        n: int | None = None
        while self.pending:
            batch = self._batches[0]
            if n is None and self.size:
                n = self.first if batch is not self._started else self.size
                self._split = batch is not self._started
                if batch is not self._started and batch.fits(self.whole):
                    n = self.whole  # a small batch goes as one graph: no split
                    self._split = False
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

    def sending(self, steps: list[Step]) -> Window:
        """A window for ``steps``, watched from now (before it is sent: no end is missed)."""
        window = Window({s.spec.name: s.spec.key for s in steps if type(s) is PlannedTask},
                        self._split)
        self._split = False
        self._sent.append(window)
        return window

    def heard(self, name: str) -> None:
        """Task run ``name`` sent an event (any thread): a first window it is in has started."""
        try:
            last = self._sent[-1]
        except IndexError:  # none sent, or cleared meanwhile
            return
        if not last.started and name in last.open:
            last.started = True
            self._wake.set()

    def ended(self, name: str) -> None:
        """Task run ``name`` reported its end (any thread)."""
        for window in list(self._sent):
            if window.open.pop(name, None) is not None:
                window.heard = time.monotonic()
                break

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
        self.done.clear()
        return events


def still_running(client: Client, keys: list[Any]) -> set[Any]:
    """Which of ``keys`` the scheduler has not finished (for a window whose ends stopped
    arriving: a key Dask lost reports none).  All of them when it cannot be asked."""

    def running(dask_scheduler: Any, keys: list[Any]) -> list[int]:
        done = ("memory", "erred", "released", "forgotten")
        tasks = dask_scheduler.tasks
        if not any(k in tasks for k in keys):  # its graph is not in yet (a busy scheduler)
            return list(range(len(keys)))
        # a key it no longer knows ran and was let go; positions, not keys: keys
        # come back through msgpack, tuples as lists
        return [i for i, k in enumerate(keys) if k in tasks and tasks[k].state not in done]

    try:
        return {keys[i] for i in client.run_on_scheduler(running, keys=keys)}
    except Exception:  # the scheduler went away (the run ends on that) or hangs
        return set(keys)
