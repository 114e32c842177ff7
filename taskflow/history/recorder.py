"""Record every flow run into the history, off the task path.

The recorder is a :class:`~taskflow.engine.observers.RunObserver`, installed in
every process when its first flow run starts (:mod:`taskflow.engine.launch`;
turn it off with ``taskflow.history.enabled: false``).  Its policy:

* **The hooks only enqueue.**  ``event`` runs on the Dask client's event loop
  (or, on LocalExecutor, in the task's own thread): it looks the run up in a
  dict and puts the event, untouched, on a queue, without waking the writer
  (it looks once per flush interval while runs go on).  Nothing is parsed, formatted
  or written there.
* **One writer thread per database** drains the queue, keeps only the latest
  event of each task run (a task's RUNNING and SUCCESS events, when they come
  within one flush interval, become one row), and writes everything gathered in
  one transaction at most every ``taskflow.history.flush-interval`` (sooner, and in
  several transactions, when more than ``taskflow.history.batch-size`` rows are
  waiting: a flood is written in transactions of that size).  Each
  attempt that raised is kept apart, whatever came after it, as a row of
  ``taskflow_task_attempts`` (type, message, traceback), so a retried task's
  earlier reasons are never overwritten by its later events.  No event is
  ever dropped: past ``taskflow.history.queue-size`` waiting events, whoever
  adds one waits until the writer has taken some (back-pressure), so a writer
  that falls behind a run of a million task runs holds a bounded number of
  them, not all.
* **Constant memory per task run.**  What the writer keeps of a run between
  writes is a counter (the order task runs first reported) and the last
  (state, attempts) of each task run, for mapped children in two arrays per
  mapped task indexed by map index (:class:`~taskflow.state_table.StateTable`:
  5 bytes a child, no object per child): a million children cost it about 5 MB.
* **Run end flushes.**  ``run_finished`` enqueues the run's end and waits (up to
  ``taskflow.history.flush-timeout``) until the writer has written everything
  before it, plus the states only the flow runner knows (mapped parents, task
  runs that became CRASHED or TRIGGER_FAILED because Dask lost them), and the
  flow run's final state.  After ``flow.run()`` returns, the history is complete.
* **Heartbeat.**  While runs go on, the writer refreshes their heartbeat every
  ``taskflow.history.heartbeat-interval``; a process that dies stops it, and the
  next opening of the history marks its runs CRASHED
  (:meth:`~taskflow.history.store.HistoryStore.mark_crashed`).  A run whose
  executor raised (an interrupt, a task that cannot be pickled) ends CRASHED or
  CANCELLED at once, and so do runs still going when the interpreter exits.
* **Cancel requests.**  While runs go on, the writer looks in the history every
  ``taskflow.history.cancel-interval`` for requests to cancel them (``taskflow
  cancel``, the server's Cancel button) and cancels them through their executor:
  whichever process runs a run (a serve process, a shell) is the one that stops it.
* **History never fails a run.**  A database that cannot be opened or written is
  logged on ``taskflow.history`` and the run goes on.
* **No SQLAlchemy on a known file.**  A SQLite history that already holds the
  whole schema is written through the standard library's ``sqlite3``
  (:mod:`taskflow.history.lite`): the same rows, without importing SQLAlchemy
  (about 0.13 s of CPU) in the process running the flow.

Log records from ``get_run_logger()`` are stored with their task run: those made
on worker processes arrive as events; those made in this process (LocalExecutor,
a LocalCluster of threads) are taken by a logging handler.

Examples
--------
>>> from taskflow.history.recorder import HistoryRecorder
>>> from taskflow.engine.observers import add_observer, remove_observer
>>> rec = add_observer(HistoryRecorder(url="sqlite:////tmp/other-history.db"))
>>> remove_observer(rec)
"""
from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import dask.utils

from taskflow import config
from taskflow.engine.events import StateEvent, is_state
from taskflow.engine.observers import RunObserver, add_observer
from taskflow.history.inbox import Inbox
from taskflow.history.rows import attempt_row, final_event, task_row
from taskflow.history.urls import resolve_url
from taskflow.logs import TASK_LOGGER
from taskflow.parameters import json_default
from taskflow.schematic import graph_data
from taskflow.secrets import mask_secrets
from taskflow.state_columns import TaskStates
from taskflow.state_table import StateTable
from taskflow.states import StateType

if TYPE_CHECKING:
    from taskflow.engine.plan import Plan
    from taskflow.executors.base import Executor
    from taskflow.history.lite import LiteStore
    from taskflow.history.store import HistoryStore
    from taskflow.runs import FlowRun, RunnableFlow

__all__ = ["HistoryRecorder", "default_recorder", "install", "mask_secrets"]

logger = logging.getLogger("taskflow.history")

_STOP = object()
_IDLE_EXIT = 30.0  # seconds without runs after which a writer closes its database and ends


def _seconds(key: str) -> float:
    return float(dask.utils.parse_timedelta(config.get(key)))


@dataclass
class _Finish:
    """A run ended (``run`` set) or was aborted (``aborted`` set)."""

    run_id: str
    done: threading.Event
    run: FlowRun | None = None
    plan: Plan | None = None
    aborted: tuple[str, str] | None = None  # (state, message)


@dataclass
class _RunBuffer:
    """What the writer knows of one active run."""

    seq: int = 0  # the next task run's place in the order of first reports
    latest: StateTable = field(default_factory=lambda: StateTable(attempts=True))
    executor: Executor | None = None  # what cancels the run when someone asks to


class _Writer:
    """A thread that drains one queue into one database (see the module's docstring)."""

    def __init__(self, url: str, retire: Callable[[_Writer], bool] | None = None) -> None:
        self.thread = threading.Thread(target=self._main, name="taskflow-history", daemon=True)
        self.url = url
        self._retire = retire
        self._flush_every = _seconds("history.flush-interval")
        self._batch_size = max(int(config.get("history.batch-size", 10_000) or 0), 1)
        self.queue = Inbox(max(int(config.get("history.queue-size", 20_000) or 0), 0),
                            patience=_seconds("history.flush-timeout"))
        self._opened = False
        self.queue.bound = self._bound
        self.batches = 0  # transactions written, and the largest one's rows (for benchmarks)
        self.largest = 0
        self.looks = 0  # times the thread looked at its queue (a spinning writer counts fast)
        self._beat_every = _seconds("history.heartbeat-interval")
        self._cancel_every = _seconds("history.cancel-interval")
        self._runs: dict[str, _RunBuffer] = {}
        self._reset()

    def _reset(self) -> None:
        self._started: list[dict[str, Any]] = []
        self._tasks: dict[tuple[str, str], dict[str, Any]] = {}
        self._logs: list[dict[str, Any]] = []
        self._attempts: list[dict[str, Any]] = []
        self._finished: list[dict[str, Any]] = []
        self._waiters: list[threading.Event] = []

    def _rows(self) -> int:
        return len(self._tasks) + len(self._logs) + len(self._attempts)

    def _pending(self) -> bool:
        return bool(self._started or self._tasks or self._logs or self._attempts or self._finished
                    or self._waiters)

    # -- the thread ---------------------------------------------------------------------
    def start(self) -> None:
        self.thread.start()

    def is_alive(self) -> bool:
        return self.thread.is_alive()

    def _bound(self) -> int:
        """The queue's bound now: 5x while the database opens, none once the thread ended."""
        if not self.thread.is_alive():
            return 0
        return self.queue.limit if self._opened else 5 * self.queue.limit

    def join(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)

    def _main(self) -> None:
        self.queue.owner = threading.get_ident()
        store = self._open()
        self._opened = True
        next_beat = time.monotonic() + self._beat_every
        next_cancel = time.monotonic() + self._cancel_every
        last_write = time.monotonic()
        idle_since = time.monotonic()
        stop = False
        while not stop:
            now = time.monotonic()
            busy = bool(self._runs or self._pending() or self.queue)
            if busy:
                idle_since = now
            elif now - idle_since >= _IDLE_EXIT and self._retire is not None and self._retire(self):
                break  # nothing to do for a while: close the database, end the thread
            timeout = min(next_beat, idle_since + _IDLE_EXIT) - now
            if busy:  # events come without waking us: look once per flush interval
                timeout = min(timeout, last_write + self._flush_every - now)
            if self._runs:
                timeout = min(timeout, next_cancel - now)
            if self.queue.full():  # someone may wait for room: take more at once
                timeout = 0.0
            self.queue.wait(max(timeout, 0.0))
            self.looks += 1
            full = False
            while not full:  # a batch at most: write now and then, even under a flood
                item = self.queue.take()
                if item is None:
                    break
                if item is _STOP:
                    stop = True
                else:
                    self._take(item)
                full = self._rows() >= self._batch_size
            now = time.monotonic()
            beat = now >= next_beat
            due = self._pending() and (full or now - last_write >= self._flush_every)
            if stop or beat or due or self._waiters:
                self._flush(store, beat)
                last_write = now
                if beat:
                    next_beat = now + self._beat_every
            elif not self._pending():
                last_write = now  # nothing to write: the next look is a flush interval away
                # (without this, a run going on with no events made the timeout 0: a busy loop)
            if self._runs and now >= next_cancel:
                self._cancel_asked(store)
                next_cancel = now + self._cancel_every
        if store is not None:
            store.close()

    def _open(self) -> HistoryStore | LiteStore | None:
        from taskflow.history.lite import open_lite

        lite = open_lite(self.url)  # an existing SQLite history: no SQLAlchemy in this process
        if lite is not None:
            return lite
        from taskflow.history.store import HistoryStore  # SQLAlchemy: only once a run is recorded

        try:
            return HistoryStore(self.url)
        except Exception as e:
            logger.error("run history is off for this process: %s", e)
            return None

    # -- taking items -------------------------------------------------------------------
    def _take(self, item: Any) -> None:
        if isinstance(item, dict):
            if is_state(item):
                ev = StateEvent.from_msg(item)
                self._take_state(ev.run, ev.name, ev)
            elif item.get("kind") == "log":
                self._logs.append({
                    "run_id": item.get("run", ""), "task": item.get("task") or "",
                    "level": item.get("level", logging.INFO), "logger": item.get("name") or "",
                    "message": item.get("msg", ""), "created": item.get("created") or time.time(),
                    "worker": item.get("worker") or "",
                })
        elif isinstance(item, _Finish):
            self._take_finish(item)
        elif isinstance(item, tuple) and item[0] == "start":
            row = item[1]
            if not isinstance(row["graph"], str):  # a wide flow's graph takes seconds to describe
                row["graph"] = json.dumps(graph_data(row["graph"]))
            self._runs[row["id"]] = _RunBuffer(executor=item[2])
            self._started.append(row)
        elif isinstance(item, tuple) and item[0] == "log":
            self._logs.append(item[1])

    def _take_state(self, run_id: str, name: str, ev: StateEvent) -> None:
        buf = self._runs.get(run_id)
        if buf is None:
            return  # not recorded (started while history was off), or already ended
        row = task_row(run_id, name, buf.seq, ev)  # a later report's seq is never stored
        buf.seq += 1
        attempt = attempt_row(run_id, name, ev)  # kept apart: the task row keeps only the last
        if attempt is not None:
            self._attempts.append(attempt)
        prev = self._tasks.get((run_id, name))
        if prev is not None:
            row["seq"] = prev["seq"]
            if row["started_at"] is None:
                row["started_at"] = prev["started_at"]
            if not row["worker"]:
                row["worker"] = prev["worker"]
            if not row["key"]:
                row["key"], row["map_index"] = prev["key"], prev["map_index"]
        self._tasks[(run_id, name)] = row
        buf.latest.set(name, row["map_index"], row["state"], row["attempts"])

    def _take_finish(self, item: _Finish) -> None:
        buf = self._runs.get(item.run_id)
        if buf is not None and item.run is not None:
            try:
                self._take_final_states(item, buf)
            except Exception:  # the run's own end is still written, and the writer goes on
                logger.exception("run history: could not take the final task states of "
                                 "flow run %s", item.run_id)
            st = item.run.state
            self._finished.append({"id": item.run_id, "state": st.type.value,
                                   "message": st.message, "ended_at": st.ended_at or time.time()})
        elif buf is not None and item.aborted is not None:
            end, message = item.aborted
            self._finished.append({"id": item.run_id, "state": end, "message": message,
                                   "ended_at": time.time(), "unfinished_tasks": end})
        self._runs.pop(item.run_id, None)
        self._waiters.append(item.done)

    def _take_final_states(self, item: _Finish, buf: _RunBuffer) -> None:
        """States only the flow runner knows: mapped parents, lost tasks, unmade children."""
        assert item.run is not None
        latest, states = buf.latest, item.run.task_states
        if isinstance(states, TaskStates):  # a mapped child's name made only if it differs
            differ = dict(states.differing(latest.get, latest.child))
        else:
            differ = {name: state for name, state in states.items()
                      if latest.get(name) != (state.type.value, state.attempts)}
        if not differ:
            return
        plan = item.plan
        keys = {name: (str(key), index)  # only of those: a run may have a million
                for name, (key, index) in (plan.keys_of(differ) if plan else {}).items()}
        for name, state in differ.items():
            key, index = keys.get(name, ("", None))
            self._take_state(item.run_id, name, final_event(item.run_id, name, state, key, index))

    def _cancel_asked(self, store: HistoryStore | LiteStore | None) -> None:
        """Cancel the runs of this process someone asked to cancel (``taskflow cancel``,
        the server's Cancel button): a cancel request in the history names them."""
        if store is None:
            return
        from taskflow.history.lite import LiteStore

        if isinstance(store, LiteStore):
            cancels_for, take_cancel = store.cancels_for, store.take_cancel
        else:
            from taskflow.history import serving

            cancels_for = functools.partial(serving.cancels_for, store)
            take_cancel = functools.partial(serving.take_cancel, store)
        try:
            for run_id, reason in cancels_for(list(self._runs)):
                buf = self._runs.get(run_id)
                if buf is None or buf.executor is None:
                    continue
                if buf.executor.cancel(run_id, reason or "cancelled on request"):
                    logger.info("flow run %s: cancelled on request (%s)", run_id[:8], reason)
                    take_cancel(run_id)
                # else not cancellable yet (it is starting): again at the next check
        except Exception:
            logger.exception("run history: could not look for cancel requests")

    # -- writing ------------------------------------------------------------------------
    def _flush(self, store: HistoryStore | LiteStore | None, beat: bool) -> None:
        from taskflow.history.lite import LiteStore

        parts: dict[str, Any] = dict(
            started=self._started, tasks=list(self._tasks.values()), logs=self._logs,
            finished=self._finished, heartbeats=list(self._runs) if beat else [],
            attempts=self._attempts,
        )
        waiters = self._waiters
        self._reset()
        try:
            if store is not None and any(parts.values()):
                if isinstance(store, LiteStore):
                    store.write(**parts)
                else:
                    from taskflow.history.store import WriteBatch  # imported with the store

                    store.write(WriteBatch(**parts))
                self.batches += 1
                self.largest = max(self.largest, len(parts["tasks"]) + len(parts["logs"])
                                   + len(parts["attempts"]))
        except Exception:
            logger.exception("run history: could not write %d task-run rows and %d log records "
                             "to %s; they are lost", len(parts["tasks"]), len(parts["logs"]),
                             store.display_url if store else self.url)
        finally:
            for done in waiters:
                done.set()


class _LogCapture(logging.Handler):
    """Takes task-run records made in this process (not those forwarded by workers)."""

    def __init__(self, recorder: HistoryRecorder) -> None:
        super().__init__()
        self.recorder = recorder

    def emit(self, record: logging.LogRecord) -> None:
        run_id = getattr(record, "flow_run_id", "")
        if not run_id or hasattr(record, "worker"):  # forwarded ones came as events
            return
        writer = self.recorder._runs.get(run_id)
        if writer is None:
            return
        try:
            msg = record.getMessage()
            if record.exc_info and record.exc_info[0] is not None:
                msg += "\n" + logging.Formatter().formatException(record.exc_info)
        except Exception:
            self.handleError(record)
            return
        writer.queue.put(("log", {
            "run_id": run_id, "task": getattr(record, "task_run_name", "") or "",
            "level": record.levelno, "logger": record.name, "message": msg,
            "created": record.created, "worker": "",
        }))


class HistoryRecorder(RunObserver):
    """Records flow runs, task runs and task logs into the run history.

    Parameters
    ----------
    url : str, optional
        Where to record.  Default: ``taskflow.history.url`` as set when each run
        starts (a SQLite file under the user's data directory when unset).

    Notes
    -----
    ``taskflow`` installs one for every process (:func:`install`); make another
    only to record into a second database as well.  Runs are recorded only while
    ``taskflow.history.enabled`` is true when they start.

    Examples
    --------
    >>> from taskflow.engine.observers import add_observer
    >>> add_observer(HistoryRecorder("sqlite:////tmp/second-history.db"))  # doctest: +SKIP
    """

    def __init__(self, url: str | None = None) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._writers: dict[str, _Writer] = {}
        self._runs: dict[str, _Writer] = {}
        self._capture = _LogCapture(self)
        logging.getLogger(TASK_LOGGER).addHandler(self._capture)

    def __repr__(self) -> str:
        return f"<HistoryRecorder {self.url or 'taskflow.history.url'}>"

    def _retire(self, writer: _Writer) -> bool:
        """May ``writer`` end?  Yes when nothing was queued for it meanwhile."""
        with self._lock:
            if not writer.queue.empty():
                return False
            if self._writers.get(writer.url) is writer:
                del self._writers[writer.url]
            return True

    # -- hooks --------------------------------------------------------------------------
    def run_started(self, *, flow: RunnableFlow, plan: Plan, executor: Executor,
                    dashboard_link: str | None, **kwargs: Any) -> None:
        if not config.get("history.enabled", True):
            return
        try:
            address = executor.address
        except Exception:
            address = None
        now = kwargs.get("started_at") or time.time()  # the run's start, as its log line says
        row = {
            "id": plan.run.run_id, "flow_name": flow.name,
            "parameters": json.dumps(mask_secrets(plan.parameters), default=json_default),
            "state": StateType.RUNNING.value, "message": "", "started_at": now,
            "ended_at": None, "heartbeat": now, "executor": repr(executor)[:255],
            "address": address, "dashboard_link": dashboard_link,
            "host": socket.gethostname(), "pid": os.getpid(),
            "graph": plan.graph,  # described by the writer, off the run's path (see _take)
        }
        with self._lock:  # with _retire: a writer never ends with a run queued for it
            writer = self._writer(resolve_url(self.url))
            writer.queue.put(("start", row, executor), wake=True)
            self._runs[plan.run.run_id] = writer

    def run_preparing(self, *, flow: RunnableFlow, plan: Plan, **kwargs: Any) -> None:
        """Start the writer now: it imports SQLAlchemy and opens the database (about
        0.2 s of CPU the first time) while the executor connects, not during the run."""
        if not config.get("history.enabled", True):
            return
        with self._lock:
            self._writer(resolve_url(self.url))

    def _writer(self, url: str) -> _Writer:
        """The running writer for ``url``, started if needed (call with the lock held)."""
        writer = self._writers.get(url)
        if writer is None or not writer.is_alive():
            writer = self._writers[url] = _Writer(url, self._retire)
            writer.start()
        return writer

    def event(self, *, event: dict[str, Any], **kwargs: Any) -> None:
        writer = self._runs.get(event.get("run", ""))
        if writer is not None:
            writer.queue.put(event)

    def run_finished(self, *, run: FlowRun, plan: Plan, **kwargs: Any) -> None:
        writer = self._runs.pop(run.run_id, None)
        if writer is not None:
            self._wait(writer, _Finish(run.run_id, threading.Event(), run=run, plan=plan))

    def run_aborted(self, *, plan: Plan, error: BaseException, **kwargs: Any) -> None:
        """The executor raised: the run ends CANCELLED (an interrupt) or CRASHED."""
        writer = self._runs.pop(plan.run.run_id, None)
        if writer is None:
            return
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            state, message = StateType.CANCELLED, f"interrupted ({type(error).__name__})"
        else:
            state, message = StateType.CRASHED, f"the run stopped: {type(error).__name__}: {error}"
        self._wait(writer, _Finish(plan.run.run_id, threading.Event(),
                                   aborted=(state.value, message)))

    def _wait(self, writer: _Writer, item: _Finish) -> None:
        writer.queue.put(item, wake=True)
        timeout = _seconds("history.flush-timeout")
        if not item.done.wait(timeout):
            logger.warning("run history: flow run %s was not fully written within %g s; "
                           "writing goes on in the background", item.run_id[:8], timeout)

    # -- the end ------------------------------------------------------------------------
    def close(self, timeout: float | None = None) -> None:
        """End runs still going as CRASHED, write what is queued, stop the writers."""
        for run_id, writer in list(self._runs.items()):
            self._runs.pop(run_id, None)
            writer.queue.put(_Finish(run_id, threading.Event(), aborted=(
                StateType.CRASHED.value, "the process running the flow exited during the run")),
                wake=True)
        with self._lock:
            writers, self._writers = list(self._writers.values()), {}
        for writer in writers:
            writer.queue.put(_STOP, wake=True)
        limit = _seconds("history.flush-timeout")
        if timeout is not None:
            limit = min(limit, timeout)
        deadline = time.monotonic() + limit
        for writer in writers:
            writer.join(max(0.0, deadline - time.monotonic()))
        logging.getLogger(TASK_LOGGER).removeHandler(self._capture)

    def _after_fork(self) -> None:
        # A forked child has none of the parent's threads: start afresh there.
        self._writers, self._runs, self._lock = {}, {}, threading.Lock()


_default: HistoryRecorder | None = None
_install_lock = threading.Lock()


def default_recorder() -> HistoryRecorder | None:
    """The recorder :func:`install` registered, if any.

    Examples
    --------
    >>> recorder = default_recorder()  # None until the process's first flow run
    >>> recorder is None or isinstance(recorder, HistoryRecorder)
    True
    """
    return _default


def install() -> HistoryRecorder:
    """Register the process's default :class:`HistoryRecorder` (once; cheap).

    The first flow run of the process calls it
    (:func:`taskflow.engine.launch.install_default_observers`).  SQLAlchemy is imported, and the database
    opened, only when the first recorded run starts.

    Examples
    --------
    >>> install() is install() is default_recorder()
    True
    """
    global _default
    with _install_lock:
        if _default is None:
            _default = HistoryRecorder()
            atexit.register(_default.close, 10.0)
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=_default._after_fork)
        add_observer(_default)
        return _default
