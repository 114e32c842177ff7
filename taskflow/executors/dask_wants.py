"""Keys a run keeps on the cluster without one :class:`distributed.Future` each.

A wide flow's steps that later windows depend on (a map's children feeding a
reduce, its items, a static fan-out's tasks) must stay in the scheduler's
memory until the tasks using them are sent.  A Future per key costs this client
about 0.5 kB (the Future, its state, an ``asyncio.Event`` made when it finishes,
the client's refcount entries, a ``FutureCancelledError`` made when it is
released), a third of the client's memory for a map of a million.  The
scheduler needs none of it: it keeps a key while some client *wants* it.

:class:`Wants` sends ``client-desires-keys`` for those keys right after the
window's graph (on the same ordered stream, so the scheduler knows them by then;
a key cannot be released before: each is wanted by a step of its own window or
by a window future), and ``client-releases-keys`` when no later step needs them,
as a Future's release does (more than 10,000 keys in messages of 10,000 paced 25 ms
apart, so that no step of the scheduler's event loop releases more).  Later windows reference them by
``dask._task_spec.TaskRef`` (what a Future is).  The keys are kept compact:
runs of children ``(base, i) .. (base, j)`` as one record.  They are wanted in the
name of the client's keeper (:mod:`~taskflow.executors.dask_keepers`), so the
scheduler does not tell the client of each one in memory; a client that goes away
releases everything its keeper wanted, as with futures.

Examples
--------
>>> runs = compact([("load-abc", 0), ("load-abc", 1), ("load-abc", 2), "total-abc"])
>>> runs
[Run('load-abc', 0, 3), 'total-abc']
>>> list(expand(runs))
[('load-abc', 0), ('load-abc', 1), ('load-abc', 2), 'total-abc']
"""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any

from taskflow.engine.outputs import Later
from taskflow.executors.dask_keepers import keeper_for

if TYPE_CHECKING:
    from distributed import Client

    from taskflow.engine.steps import Key

__all__ = ["Run", "Wants", "compact", "expand"]

# Keys per release message, and the wait between two: the scheduler handles a batch of
# messages from a client in one step of its event loop, releasing ~20 us a key, and the
# client batches what it sends over 10 ms; a million keys released at once (a wide map's
# children, when its fan-in's parts are all sent) held the scheduler's loop for over 30 s,
# and the client's connection was lost
_PER_MESSAGE = 10_000
_SPACING = 0.025


class Run:
    """Children ``(base, start)`` .. ``(base, stop - 1)``."""

    __slots__ = ("base", "start", "stop")

    def __init__(self, base: str, start: int, stop: int) -> None:
        self.base, self.start, self.stop = base, start, stop

    def __repr__(self) -> str:
        return f"Run({self.base!r}, {self.start}, {self.stop})"


def _is_child(key: Any) -> bool:
    return type(key) is tuple and len(key) == 2 and type(key[1]) is int and type(key[0]) is str


def compact(keys: Iterable[Key]) -> list[Any]:
    """``keys`` with each run of consecutive children as one :class:`Run`."""
    out: list[Any] = []
    for k in keys:
        if _is_child(k):
            last = out[-1] if out else None
            if type(last) is Run and last.base == k[0] and last.stop == k[1]:
                last.stop += 1
            else:
                out.append(Run(k[0], k[1], k[1] + 1))
        else:
            out.append(k)
    return out


def expand(records: Iterable[Any]) -> Iterator[Key]:
    """The keys of :func:`compact`'s records."""
    for r in records:
        if type(r) is Run:
            base = r.base
            yield from ((base, i) for i in range(r.start, r.stop))
        else:
            yield r


class Wants:
    """The keys of one run this client wants the scheduler to keep, futures aside."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._records: list[Any] = []
        self._as: str | None = None  # who wants them: the client's keeper (dask_keepers)

    def want(self, keys: list[Key]) -> None:
        """Keep ``keys`` (just sent in a graph) until released."""
        if not keys:
            return
        if self._as is None:
            self._as = keeper_for(self._client)
        self._client._send_to_scheduler(
            {"op": "client-desires-keys", "keys": keys, "client": self._as})
        with self._lock:
            self._records.extend(compact(keys))

    def release(self, later: Later | None = None) -> None:
        """Release the wanted keys, except those in ``later`` (still needed)."""
        with self._lock:
            records, self._records = self._records, []
            stay: list[Any] = []
            gone: list[Any] = []
            for r in records:
                if later is None:
                    gone.append(r)
                elif type(r) is Run:
                    (stay if later.has_children_of(r.base) else gone).append(r)
                else:
                    (stay if r in later else gone).append(r)
            self._records = stay
        self._send_releases(gone)

    def _send_releases(self, records: list[Any]) -> None:
        """Release ``records``' keys: the first message now, the others (when there are
        more than ``_PER_MESSAGE`` keys) paced on the client's event loop, each one a
        step of its own on the scheduler."""
        keys = expand(records)
        batch = list(islice(keys, _PER_MESSAGE))
        if not batch:
            return
        self._release(batch)
        batch = list(islice(keys, _PER_MESSAGE))
        if not batch:
            return

        async def paced(batch: list[Key]) -> None:
            while batch:
                await asyncio.sleep(_SPACING)
                if not self._release(batch):
                    return  # the client is gone: the scheduler released what it wanted
                batch = list(islice(keys, _PER_MESSAGE))

        self._client.loop.add_callback(paced, batch)

    def _release(self, keys: list[Key]) -> bool:
        client = self._client
        if client.status not in ("running", "connecting", "newly-created"):
            return False  # gone: the scheduler released what it wanted
        client._send_to_scheduler({"op": "client-releases-keys", "keys": keys,
                                   "client": self._as or client.id})
        return True

    def __bool__(self) -> bool:
        return bool(self._records)
