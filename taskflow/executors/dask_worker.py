"""The worker side of the Dask executor: what runs inside every task key.

:func:`run_on_worker` runs each task key (called by the key's function, a
:class:`~taskflow.executors.dask_spec.SentTask`, with the task run's spec rebuilt
from what the key carried and its window's facts): it runs the worker-side runner
(:mod:`taskflow.engine.task_runner`) with Dask's ways of emitting events (a per-worker :class:`_Outbox` that batches them), of
waiting between attempts without holding a worker thread, of persisting the
Dask collections tasks return (:class:`_WorkerCollections`), and of holding
the slots of limited tags (``_hold_slots``, Dask semaphores; see
:mod:`taskflow.concurrency`).  :func:`get_dask_client`
is the public way for a task to use Dask collections on its own cluster.
Nothing here knows about the client side.
"""
from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import dask
import dask.base
from distributed import (
    Client,
    Semaphore,
    default_client,
    get_client,
    get_worker,
    rejoin,
    secede,
    wait,
)
from distributed.worker import thread_state

from taskflow import config
from taskflow.concurrency import SlotError, semaphore_name, waiting_message
from taskflow.engine.events import batch_of, peek
from taskflow.engine.steps import TaskRunSpec
from taskflow.engine.task_runner import run_task
from taskflow.exceptions import TaskflowError
from taskflow.executors.dask_holds import hold_name
from taskflow.logs import prepare_worker
from taskflow.states import State, StateType

__all__ = ["get_dask_client"]


def _wait_seceded(seconds: float) -> None:
    """Sleep between attempts without holding one of the worker's threads."""
    _seceded(lambda: time.sleep(seconds))


def _seceded(call: Callable[[], Any]) -> Any:
    """``call()`` outside the worker's thread pool (rejoining it afterwards)."""
    if getattr(thread_state, "taskflow_seceded", False):
        return call()
    secede()
    try:
        return call()
    finally:
        rejoin()


def _semaphore(worker: Any, tag: str, n: int) -> Semaphore:
    """This worker's semaphore object of ``tag`` (one per worker: one lease refresher)."""
    sems = worker.__dict__.setdefault("_taskflow_semaphores", {})
    sem = sems.get((tag, n))
    if sem is None:
        sem = sems.setdefault((tag, n), Semaphore(max_leases=n, name=semaphore_name(tag)))
    return sem


@contextlib.contextmanager
def _hold_slots(limits: list[tuple[str, int]], report: Callable[[State], None]) -> Iterator[None]:
    """Hold one lease of each tag's Dask semaphore, in the given (sorted) order.

    A slot that is not free at once is waited for outside the thread pool,
    after a PENDING state naming the tag.
    """
    worker = get_worker()
    held: list[Semaphore] = []
    try:
        for tag, n in limits:
            sem = _semaphore(worker, tag, n)
            try:
                got = sem.acquire(timeout=0)
                if not got:
                    report(State(StateType.PENDING, message=waiting_message(tag, n)))
                    got = _seceded(sem.acquire)
            except ValueError as e:  # the scheduler knows this tag with another limit
                raise SlotError(
                    f"tag {tag!r} has another concurrency limit on this scheduler than the "
                    f"{n} this run asks ({e}); a Dask scheduler keeps a tag's first limit "
                    "until it restarts: use the same limit everywhere, or restart it",
                    tag=tag, limit=n,
                ) from None
            if not got:  # pragma: no cover - acquire without a timeout returns True
                raise SlotError(f"no slot of tag {tag!r} could be taken", tag=tag)
            held.append(sem)
        yield
    finally:
        for sem in reversed(held):
            try:
                sem.release()
            except Exception:  # the lease expires on the scheduler anyway
                pass


def get_dask_client() -> Client:
    """A client for the Dask cluster the running task runs on, safe to block on.

    Inside a task on a Dask worker, returns the worker's client and takes the task
    out of the worker's thread pool (Dask's ``secede``), so waiting on results
    cannot deadlock the worker even when it has one thread.  Use it to build and
    compute Dask arrays, dataframes or bags from inside a task::

        @task
        def mean_of(path: str) -> float:
            client = get_dask_client()
            frame = dask.dataframe.read_parquet(path)
            return client.compute(frame["x"].mean()).result()

    A task may also return a Dask collection: taskflow persists it on the
    cluster (its partitions computed once, on the workers) and every downstream
    task receives the persisted collection, which it computes from with
    ``get_dask_client().compute(collection.x.mean()).result()``.  With
    ``@task(persist=False)`` downstream tasks receive the lazy graph instead.

    Outside a Dask worker (``LocalExecutor``, or outside any flow) it returns the
    current default client of this process, if there is one.

    Note: a task with a ``timeout`` runs its function in a helper thread, which
    cannot leave the thread pool; such a task keeps its worker thread while it waits.

    Examples
    --------
    >>> import dask.array as da
    >>> from taskflow import task, get_dask_client
    >>> @task
    ... def total_of_ones(n: int) -> float:
    ...     x = da.ones(n, chunks=n // 4)
    ...     return float(get_dask_client().compute(x.sum()).result())
    """
    try:
        get_worker()
    except ValueError:
        try:
            return default_client()
        except ValueError:
            raise TaskflowError(
                "get_dask_client() found no Dask cluster: the task is not running on a "
                "Dask worker (LocalExecutor?) and this process has no default Client. "
                "Run the flow with a DaskExecutor, or create a distributed.Client first."
            ) from None
    client = get_client()
    if getattr(thread_state, "key", None) is not None and not getattr(
        thread_state, "taskflow_seceded", False
    ):
        secede()  # the task finishes outside the pool; Dask starts a thread in its place
        thread_state.taskflow_seceded = True
    return client


# intervals of events coming without a quiet spell after which an outbox batches longer
_SPELL = 8


class _Outbox:
    """One per worker and topic: events leave in small batches, a few ms late at most.

    Two events per task, each its own message, would cost the scheduler and the
    client as much as a third of Dask's own per-task work on no-op tasks.  The
    first event after a quiet spell schedules a flush ``interval`` seconds later
    on the worker's event loop; everything emitted meanwhile leaves with it as one
    ``{"kind": "batch", ...}`` message (:func:`~taskflow.engine.events.batch_of`).
    Once events have kept coming for a while (``_SPELL`` intervals: many quick
    tasks, a long run), each wait is twice the last, up to ``longest``: a busy
    worker sends a batch every ``longest`` seconds, not every ``interval``; a
    short run, and the first event after a quiet spell (a slow task's start or
    end), still leave after ``interval``.  A worker that dies within that window
    loses the batch; the flow runner then reports the tasks it cannot account for.
    """

    def __init__(self, worker: Any, topic: str, interval: float,
                 longest: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.worker, self.topic, self.interval = worker, topic, interval
        self._clock = clock
        self.longest = max(interval, longest if longest is not None else interval)
        self.address: str = worker.address
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []
        self._scheduled = False
        self._delay = interval  # the wait of the flush scheduled last
        self._flushed_at = -float("inf")  # clock() of the last flush that sent
        self._busy_since = 0.0  # ... and of the first event after the last quiet spell

    def put(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._events.append(event)
            if self._scheduled:
                return
            self._scheduled = True
            now = self._clock()
            if now - self._flushed_at >= self._delay:  # quiet since: be quick
                self._delay, self._busy_since = self.interval, now
            delay = self._delay
        self.worker.loop.add_callback(self.worker.loop.call_later, delay, self.flush)

    def forward(self, record: dict[str, Any]) -> None:
        """A log record made by a task, sent with this worker's address."""
        self.put({**record, "worker": self.address})

    def flush(self) -> None:
        with self._lock:
            events, self._events, self._scheduled = self._events, [], False
            if events:  # busy for a while: the next batch may wait longer
                now = self._flushed_at = self._clock()
                if now - self._busy_since >= _SPELL * self.interval:
                    self._delay = min(self._delay * 2, self.longest)
        if events:
            self.worker.log_event(self.topic, batch_of(_superseded_out(events)))

    def flush_marked(self, run_id: str) -> None:
        """Send what is waiting now, then a ``flushed`` marker for ``run_id``.

        Both leave on the worker's one stream to the scheduler, in order, so a
        client that receives the marker has every event this worker emitted before.
        """
        self.flush()
        self.worker.log_event(self.topic, {"kind": "flushed", "run": run_id,
                                           "worker": self.worker.address})

    @classmethod
    def of(cls, worker: Any, topic: str) -> _Outbox:
        boxes = worker.__dict__.setdefault("_taskflow_outboxes", {})
        box = boxes.get(topic)
        if box is None:
            interval = dask.utils.parse_timedelta(config.get("events.batch-interval"))
            longest = dask.utils.parse_timedelta(config.get("events.batch-interval-busy",
                                                            interval))
            box = boxes.setdefault(topic, cls(worker, topic, interval, longest))
        return box


class _WorkerCollections:
    """Persist and compute collections on the cluster the task runs on.

    The task's span (the flow run's, set by the worker around the task) is
    taken out of Dask's annotations while the task's function runs: dask-expr
    warns about any annotation present when a DataFrame is built, and ignores
    it.  It is put back only around the graph submissions made here, where
    the scheduler does read it, so a collection's partitions are grouped with
    the run on the dashboard.  Building the collections themselves (optimizing,
    and the persisted result) happens outside it, so nothing warns.
    """

    __slots__ = ("_annotations", "_spec", "_emit")

    def __init__(self, annotations: dict[str, Any] | None, spec: TaskRunSpec,
                 emit: Callable[[dict[str, Any]], None]) -> None:
        # made for every task run, used by few: the span is picked out when needed
        self._annotations, self._spec, self._emit = annotations, spec, emit

    @property
    def _span(self) -> dict[str, Any]:
        return {k: v for k, v in (self._annotations or {}).items() if k == "span"}

    def persist(self, value: Any) -> Any:
        """Compute ``value``'s partitions on the cluster; the scheduler holds them.

        They are published as a dataset named after the task run (see
        :mod:`~taskflow.executors.dask_holds`), which the flow's client releases
        when the last consumer is done.
        """
        # what Client.persist does, with only the submission under the span
        expr = dask.base.collections_to_expr([value]).optimize()
        flat = list(dask.core.flatten(expr.__dask_keys__()))
        client = get_dask_client()  # out of the thread pool while the partitions compute
        with _annotations(self._span):
            futures = client.get(expr, flat, sync=False)
        rebuild, args = value.__dask_postpersist__()
        persisted = rebuild(dict(zip(flat, futures)), *args)
        wait(futures)
        failed = next((f for f in futures if f.status == "error"), None)
        if failed is not None:  # the attempt fails; the traceback must not keep the partitions
            error = failed.exception().with_traceback(failed.traceback())
            client.cancel(futures)
            raise error
        run = self._spec.run
        client.publish_dataset(futures, name=hold_name(run.run_id, self._spec.name), override=True)
        self._emit({"kind": "hold", "run": run.run_id, "name": self._spec.name})
        return persisted

    def compute(self, *values: Any) -> tuple[Any, ...]:
        client = get_dask_client()
        with _annotations(self._span):
            futures = client.compute(list(values))
        return tuple(client.gather(futures))


def without_annotations() -> contextlib.AbstractContextManager[None]:
    """No Dask annotations in force inside (the span of a flow run, say)."""
    return _annotations({})


@contextlib.contextmanager
def _annotations(annotations: dict[str, Any]) -> Iterator[None]:
    """Exactly ``annotations`` in force (none when empty), whatever was before."""
    var = getattr(dask.base, "_annotations", None)  # Dask's context variable for annotate()
    if var is None:  # pragma: no cover - another Dask: leave annotations alone
        yield
        return
    token = var.set(dict(annotations) or None)
    try:
        yield
    finally:
        var.reset(token)


# Dask's context variable behind annotate() (None on another Dask: ask get_annotations)
_ANNOTATIONS = getattr(dask.base, "_annotations", None)

_FINAL_TYPES = frozenset(("SUCCESS", "CACHED", "SKIPPED", "FAILED", "TRIGGER_FAILED",
                          "TIMED_OUT", "CRASHED", "CANCELLED"))


def _superseded_out(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``events`` without the RUNNING events whose task run ended in the same batch.

    A task's end carries what its start said (start time, worker, attempt), so a
    quick task sends one event, not two.  Retries, log records and starts whose
    end comes later are all kept.
    """
    seen = [peek(e) for e in events]
    ended = {s[:3] for s in seen if s is not None and s[3] in _FINAL_TYPES}
    if not ended:
        return events
    return [e for e, s in zip(events, seen)
            if s is None or s[3] != "RUNNING" or s[:3] not in ended]


def flush_events(topic: str, run_id: str, dask_worker: Any = None) -> bool:
    """Through ``Client.run``: flush this worker's events of ``topic``, then mark ``run_id``."""
    worker = dask_worker if dask_worker is not None else get_worker()
    _Outbox.of(worker, topic).flush_marked(run_id)
    return True


def run_on_worker(spec: TaskRunSpec, *upstream: Any) -> Any:
    """What every task key runs (through its SentTask): the task, emitting events via Dask.

    ``upstream`` holds one value per name in ``spec.upstream``.  What is the same
    for every task run of a flow run on this worker (its outbox, whether this is
    the flow's own process, the task logger's set-up) is looked up once per run,
    not once per task (:func:`_worker_side`).
    """
    worker = get_worker()
    run = spec.run
    box, forward = _worker_side(worker, run)
    emit = box.put
    # the flow run's span is in force (the worker sets it around the task): the
    # task's function runs without it (see _WorkerCollections)
    annotations = _ANNOTATIONS.get() if _ANNOTATIONS is not None else dask.get_annotations()
    collections = _WorkerCollections(annotations, spec, emit)
    token = _ANNOTATIONS.set(None) if annotations and _ANNOTATIONS is not None else None
    try:
        return run_task(
            spec, list(upstream), emit=emit, wait=_wait_seceded, worker=box.address,
            forward_logs=forward, collections=collections, slots=_hold_slots,
        )
    finally:
        if token is not None:
            _ANNOTATIONS.reset(token)
        if getattr(thread_state, "taskflow_seceded", False):
            thread_state.taskflow_seceded = False


# (worker, run id) -> (outbox, log forwarding) of the runs seen last on this process's
# workers: a run's task runs look them up once, not each (a few runs at most are live)
_SIDES: dict[tuple[int, str], tuple[_Outbox, Callable[[dict[str, Any]], None] | None]] = {}
_SIDES_KEPT = 64


def _worker_side(worker: Any, run: Any) -> tuple[
        _Outbox, Callable[[dict[str, Any]], None] | None]:
    """This worker's outbox for ``run``'s topic, and where its task logs go (None: here)."""
    key = (id(worker), run.run_id)
    found = _SIDES.get(key)
    if found is not None and found[0].worker is worker:
        return found
    box = _Outbox.of(worker, run.topic)
    forward: Callable[[dict[str, Any]], None] | None = None
    if not run.is_client_process():
        prepare_worker(run.log_level)
        forward = box.forward
    if len(_SIDES) >= _SIDES_KEPT:
        _SIDES.clear()
    _SIDES[key] = (box, forward)
    return box, forward


def run_kept_on_worker(spec: TaskRunSpec, *upstream: Any) -> Any:
    """:func:`run_on_worker` for a task whose key the flow's client waits on.

    The worker's waiting events (this task's end among them) are sent as the task
    returns, before Dask reports its result: both leave on the worker's one stream
    to the scheduler, in that order, so the client has them when it sees the key
    done, and the run's end need not ask the workers for them.
    """
    try:
        return run_on_worker(spec, *upstream)
    finally:
        _Outbox.of(get_worker(), spec.run.topic).flush()
