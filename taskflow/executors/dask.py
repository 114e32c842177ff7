"""Run a plan on a Dask cluster: one graph submission, raw outputs, state events.

How a flow run goes through Dask:

1. **One submission.**  Every step of the plan becomes one key of one Dask graph,
   sent with a single ``client.get(..., sync=False)``.  A task's dependencies are
   its upstreams' keys, so Dask moves outputs from worker to worker; the client
   never sees them.  Tasks with resources or a priority go in annotated layers.
   A wide plan goes in windows of ``taskflow.dask.submit-window`` steps, planned as
   they are sent, the next when an earlier one has finished
   (:mod:`~taskflow.executors.dask_windows`); keys later windows need are kept on
   the scheduler without a Future each (:mod:`~taskflow.executors.dask_wants`).
2. **Raw outputs.**  Each key runs ``dask_worker.run_on_worker``, which calls the
   worker-side runner; the key's value is the task's raw output (or a small
   marker when it did not succeed).  The client holds futures only for the
   flow's return keys, its reference (terminal) tasks (those not returned until
   their window ended) and length facts; Dask releases every other output once
   its dependents are done.
3. **States as events.**  Runners send state changes and log records with the
   worker's ``log_event`` on one topic; this client subscribes once and routes
   each event to the run it belongs to.  Events travel on the same ordered
   streams as task completions, so when the last key finishes every earlier
   event has arrived.
4. **Losses.**  A key Dask could not compute (its workers kept dying, no worker
   offered its resources in time) is reported in :attr:`Outcome.lost` with the
   key at the origin, which the flow runner turns into CRASHED states.  A run
   whose scheduler went away (or whose client was closed) returns with
   :attr:`Outcome.crashed` set (:mod:`~taskflow.executors.dask_losses`).
5. **Cancelling.**  :meth:`Executor.cancel` cancels a run's futures; the run
   returns with :attr:`Outcome.cancelled` set, its unfinished tasks CANCELLED.

Connecting (an address, a cluster class, TLS) is :mod:`~taskflow.executors.dask_connect`;
what is checked before tasks are sent (pickling, imports, versions) is
:mod:`~taskflow.executors.dask_checks`; the worker side is
:mod:`~taskflow.executors.dask_worker`.
"""
from __future__ import annotations

import atexit
import contextlib
import threading
import weakref
from collections.abc import Mapping
from concurrent.futures import CancelledError
from typing import Any

from distributed import Client, Future, span, wait

from taskflow import config
from taskflow.engine.collections import is_collection
from taskflow.engine.events import peek
from taskflow.engine.markers import StateMarker
from taskflow.engine.outputs import derived
from taskflow.engine.plan import Length, Plan, PlannedTask, Step
from taskflow.engine.transitions import crashed
from taskflow.exceptions import TaskflowError
from taskflow.executors.base import Executor, OnEvent, Outcome
from taskflow.executors.dask_checks import (
    check_local_stores,
    check_picklable,
    check_resources,
    check_workers,
    warm_workers,
)
from taskflow.executors.dask_connect import close_client, connect
from taskflow.executors.dask_events import EndTracker, Router, router_for
from taskflow.executors.dask_graph import (
    Shared,
    given_order,
    named,
    send,
    send_parts,
    split_at_wide,
    to_dask_graph,
)
from taskflow.executors.dask_holds import Holds
from taskflow.executors.dask_losses import gone_reason, loss, quietly, scheduler_lost
from taskflow.executors.dask_spans import install as share_spans
from taskflow.executors.dask_wants import Wants
from taskflow.executors.dask_whole import unwrap
from taskflow.executors.dask_windows import Windows, still_running, window_sizes
from taskflow.executors.dask_worker import (
    get_dask_client,
    without_annotations,
)
from taskflow.states import FINISHED_TYPES

__all__ = ["DaskExecutor", "default_executor", "get_dask_client"]


class DaskExecutor(Executor):
    """Runs flows on a Dask cluster.

    Give at most one of ``address``, ``cluster_class`` or ``client``.  With none,
    it connects to ``taskflow.executor.address`` when that is set, else starts an
    embedded ``LocalCluster`` (worker processes, dashboard on 127.0.0.1) on first
    use.

    Parameters
    ----------
    address : str, optional
        Address of a running Dask scheduler, e.g. ``"tcp://10.0.0.5:8786"``.
    cluster_class : type or str, optional
        A Dask cluster class, or its import path (``"distributed.LocalCluster"``,
        ``"dask_jobqueue.SLURMCluster"``...), started on first use.
    cluster_kwargs : dict, optional
        Keyword arguments for ``cluster_class`` (or for the embedded LocalCluster).
    adapt_kwargs : dict, optional
        If given, ``cluster.adapt(**adapt_kwargs)`` (e.g. ``{"minimum": 0, "maximum": 10}``).
    client_kwargs : dict, optional
        Extra keyword arguments for :class:`distributed.Client`.
    client : distributed.Client, optional
        An existing client; the executor uses it and never closes it.
    security : distributed.security.Security, optional
        TLS settings of the connection (certificates, CA), passed to the client
        and to a cluster the executor starts.  Without it, Dask's own
        ``distributed.comm.tls`` configuration applies.

    Notes
    -----
    Before tasks are sent, workers are checked: versions (refused on mismatch),
    imports of task modules, resources (a task whose ``resources=`` no worker
    offers is refused with :class:`~taskflow.ResourcesUnavailableError`, or on
    an adaptive cluster waits at most ``taskflow.executor.resource-timeout``),
    and a ``file://`` store used by workers on other hosts (a warning).  A run
    whose scheduler goes away (or whose client is closed) returns CRASHED, its
    unfinished tasks CRASHED naming the scheduler; resume it on a new cluster.
    Use it as a context manager (or call :meth:`close`) to close what it started.

    Examples
    --------
    >>> from taskflow.executors import DaskExecutor
    >>> ex = DaskExecutor(address="tcp://127.0.0.1:8786")  # doctest: +SKIP
    >>> etl.run(n=10, executor=ex)  # doctest: +SKIP
    """

    def __init__(
        self,
        address: str | None = None,
        cluster_class: type | str | None = None,
        cluster_kwargs: Mapping[str, Any] | None = None,
        adapt_kwargs: Mapping[str, Any] | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
        client: Client | None = None,
        security: Any = None,
    ) -> None:
        given = [n for n, v in (("address", address), ("cluster_class", cluster_class),
                                ("client", client)) if v is not None]
        if len(given) > 1:
            raise TaskflowError(
                f"DaskExecutor takes one of address, cluster_class or client; got {given}"
            )
        if address is not None and not isinstance(address, str):
            hint = ("a Client goes as DaskExecutor(client=...)" if isinstance(address, Client)
                    else "e.g. 'tcp://127.0.0.1:8786'")
            raise TaskflowError(f"DaskExecutor's address must be a scheduler address (a "
                                f"string), not {type(address).__name__}: {hint}")
        self._address = address
        self.cluster_class = cluster_class
        self.cluster_kwargs = dict(cluster_kwargs or {})
        self.adapt_kwargs = dict(adapt_kwargs) if adapt_kwargs is not None else None
        self.client_kwargs = dict(client_kwargs or {})
        if security is not None:
            self.client_kwargs["security"] = security
        self.security = security
        self._client = client
        self._owns_client = client is None
        self._cluster: Any = None
        self._router: Router | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        if self._address or self.cluster_class:
            return f"DaskExecutor({self._address or self.cluster_class!r})"
        if not self._owns_client:
            return f"DaskExecutor(client={self._client!r})"
        return "DaskExecutor('LocalCluster')"

    # -- connection -------------------------------------------------------------
    @property
    def client(self) -> Client:
        """The Dask client, connecting or starting the cluster on first use."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> Client:
        client, self._cluster = connect(
            self._address, self.cluster_class, self.cluster_kwargs, self.adapt_kwargs,
            self.client_kwargs, from_config=self._owns_client,
        )
        _owned[client] = self._cluster  # closed at exit if the user does not
        return client

    def prepare(self) -> None:
        """The workers there import taskflow's worker side while the run is planned.

        Only on a client connected already: workers of a cluster being started for
        this run (``taskflow run``) would import it while the cluster starts, on the
        same cores (measured slower end to end: ``benchmarks/first_run.py``).

        A bad ``taskflow.dask`` window setting is refused here, before the run starts
        (not as the run's Crashed state)."""
        window_sizes()
        if self._client is not None:
            warm_workers(self._client)

    def _scales(self) -> bool:
        """Can the cluster grow (adaptive scaling the executor started)?"""
        return getattr(self._cluster, "_adaptive", None) is not None

    @property
    def address(self) -> str | None:
        return self.client.scheduler.address if self._client is not None else self._address

    @property
    def dashboard_link(self) -> str | None:
        client = self.client  # connection errors propagate: swallowed, they cost a second timeout
        try:
            return client.dashboard_link
        except Exception:
            return None

    def close(self) -> None:
        """Close the client and cluster this executor started (not a given client).

        The client goes first, then the cluster, so the client never tries to
        reconnect to a scheduler being shut down.  Closing works in any order
        with the user's own clusters, and after the scheduler died: no reconnect
        tracebacks are printed (:func:`~taskflow.executors.dask_connect.close_client`).
        An executor that was not closed is closed when the interpreter exits.
        ``with DaskExecutor(...) as ex:`` closes it at the end of the block.
        """
        with self._lock:
            if self._owns_client and self._client is not None:
                close_client(self._client)
                _owned.pop(self._client, None)
                self._client = None
                self._router = None
            if self._cluster is not None:
                with contextlib.suppress(Exception):
                    self._cluster.close()
                self._cluster = None

    def __enter__(self) -> DaskExecutor:
        return self

    # -- running ----------------------------------------------------------------
    def execute(self, plan: Plan, on_event: OnEvent) -> Outcome:
        client = self.client
        router = self._router = router_for(client, plan.run.topic)
        end_tracker = EndTracker(on_event)
        holds = Holds(client, plan, final=end_tracker._final)
        on_event = holds.wrap(end_tracker.on_event)
        windows = Windows(*window_sizes())
        router.add(plan.run.run_id, _waking(on_event, windows))
        self.cancellations.started(plan.run.run_id)
        try:
            with span(f"flow {plan.run.flow_name}", plan.run.run_id):
                outcome = self._drive(client, plan, on_event, windows)
            if outcome.cancelled or outcome.crashed:  # children never sent are only counted
                plan.abandon()
            plan.force()  # a run stopped early: its task runs not sent are known all the same
            for event in windows.clear():
                on_event(event)
            # workers batch their events: the last ones may still be on their way
            # (or never will: cancelled, lost): ask the workers to send what they hold;
            # none can come once the scheduler is gone
            if not outcome.crashed:
                bound = 1.0 if outcome.lost or outcome.cancelled else None
                end_tracker.wait_flushed(client, plan.run.topic, plan.run.run_id, plan, bound)
            return outcome
        finally:
            self.cancellations.finished(plan.run.run_id)
            router.remove(plan.run.run_id)
            holds.close()

    def _drive(self, client: Client, plan: Plan, on_event: OnEvent, windows: Windows) -> Outcome:
        """Submit what is known, a window at a time (:mod:`~taskflow.executors.dask_windows`);
        each time a length arrives, queue what it unlocks.

        Futures are made for lengths and kept tasks only; other keys later steps
        need are kept by :class:`~taskflow.executors.dask_wants.Wants`, and a kept
        task's future goes once it finished when the flow does not return it.
        """
        held: dict[Any, Future] = {}
        kept: set[Any] = set()  # kept keys still held
        releasable: set[Any] = set()  # kept keys not returned: their futures go once done
        done_kept: list[Any] = []  # ... and which of them finished (from the event loop)
        facts: list[Future] = []
        shared: Shared = {}  # the run's facts as its windows send them (dask_graph)
        looked: list[bool] = []  # workers looked at in this run (its first window)
        wants = Wants(client)
        run_id = plan.run.run_id
        address = client.scheduler.address  # named if the scheduler goes away

        def stop() -> None:
            client.cancel(_snapshot(held))
            wants.release()

        self.cancellations.on_cancel(run_id, stop)

        def submit(steps: list[Step], more: bool) -> None:
            # a task over a wide group goes after the steps before it (its group's
            # children among them), with the group's parts in between (dask_groups)
            *before, last = split_at_wide(steps)
            for segment in before:
                submit_one(segment, True)
            submit_one(last, more)

        def submit_one(steps: list[Step], more: bool) -> None:
            for event in windows.events():
                on_event(event)
            if not steps or self.cancellations.reason(run_id) or scheduler_lost(client):
                return
            check_workers(client, check_picklable(steps), look=not looked)
            looked.append(True)
            check_resources(client, steps, scales=self._scales())
            check_local_stores(client, steps)
            later = plan.needed_later()
            window = windows.sending(steps)  # before it goes: no end is missed
            wanted: list[Any] = []
            also: list[Any] = []  # kept without a future
            for step in steps:  # with more windows to come, later ones may need any of these
                key = step.key
                if isinstance(step, Length):
                    wanted.append(key)
                elif isinstance(step, PlannedTask) and step.keep:
                    wanted.append(key)
                    kept.add(key)
                    if windows.size and not plan.returned(key):
                        releasable.add(key)
                elif more or key in later:
                    also.append(key)
            # named after a key it holds: the dashboard groups it with the run's tasks
            hold_key = derived(also[0], "hold") if also else None
            graph = named(to_dask_graph(steps, held, hold_key, also, shared, carry_all=window.first))
            try:
                send_parts(client, steps, held)  # before the tasks over them, on one stream
                futures = send(client, graph, wanted + [hold_key] * bool(also), given_order(steps, hold_key))
            except Exception as e:
                raise TaskflowError(
                    f"flow {plan.run.flow_name!r} could not be sent to Dask: {e}",
                    flow=plan.run.flow_name,
                ) from e
            if more:  # a wide run: its tasks share their span's annotation on the scheduler
                share_spans(client)
            if also:  # wanted now, then the hold goes: on one ordered stream
                wants.want(also)
                futures.pop().release()
            for step_key, future in zip(wanted, futures):
                held[step_key] = future
                if step_key in releasable:
                    future.add_done_callback(_note_done)
                if step_key in plan.waiting:
                    facts.append(future)
                    future.add_done_callback(windows.wake)
            window.futures = futures
            for step in steps:  # the cluster has the arguments now: the client needs no copy
                if type(step) is PlannedTask:
                    step.spec = step.spec.sent()
            plan.sent(steps)  # of a mapped child, less still
            if self.cancellations.reason(run_id):  # cancelled while this window was sent
                stop()
            if more:
                return
            for k in [k for k in held if k not in later and k not in kept and k not in plan.waiting]:
                held.pop(k).release()
            wants.release(later)

        def look(keys: list[Any]) -> set[Any]:
            return still_running(client, keys)

        def _note_done(future: Future) -> None:  # on the client's event loop
            done_kept.append(future.key)

        def finished_windows() -> None:
            windows.done.clear()
            while done_kept:  # kept tasks the flow does not return: their futures go
                k = done_kept.pop()
                releasable.discard(k)
                f = held.get(k)
                if f is not None and f.status == "finished":
                    kept.discard(k)
                    held.pop(k).release()

        try:
            windows.add(plan.start(lazy=True))
            while not self.cancellations.reason(run_id):
                for future in [f for f in facts if f.status != "pending"]:
                    facts.remove(future)
                    if future.status == "finished":
                        fact = future.result()
                    else:
                        fact = StateMarker(crashed(loss(future)[0]))
                    windows.add(plan.add_lengths({future.key: fact}, lazy=True))
                while windows.pending and windows.has_room(look):
                    finished_windows()
                    # no name keeps a window's steps once sent: planning the next one
                    # must not hold the last one's (they are the client's largest transient)
                    submit(windows.take(), more=windows.pending)
                    if self.cancellations.reason(run_id) or scheduler_lost(client):
                        break
                windows.has_room(look)
                finished_windows()
                for event in windows.events():
                    on_event(event)
                # nothing left to send: what is still running is waited for by its kept
                # futures below (the ends of the last windows' other task runs come with
                # the end-of-run flush; waiting for them here cost a worker's flush interval)
                if not facts and not windows.pending or scheduler_lost(client):
                    break
                windows.wait(0.5)  # woken by task ends and facts; the bound is a safety net
            keep = [held[k] for k in kept]
            try:
                # wait() runs on Dask's default client (the latest made here): ours, not
                # another one whose close would break the wait (UnboundLocalError) or hang it
                with client.as_current():
                    wait(keep)
            except CancelledError:  # distributed raises when a future it waits on is cancelled
                if not self.cancellations.reason(run_id):
                    raise
            lost = {k: loss(held[k]) for k in kept if held[k].status != "finished"}
            done = [k for k in plan.return_keys() if k in held and held[k].status == "finished"]
            with without_annotations():  # a returned collection is rebuilt here: no span warning
                values = dict(zip(done, map(unwrap, client.gather([held[k] for k in done])))) if done else {}
            values = _own_collections(client, values)
        except BaseException as e:
            gone = not isinstance(e, (KeyboardInterrupt, SystemExit)) and scheduler_lost(client, e)
            if not gone:
                quietly(client.cancel, list(held.values()))
                quietly(wants.release)
                raise
            return Outcome(crashed=gone_reason(client, address, run_id))
        if scheduler_lost(client) and (lost or any(k not in values for k in plan.return_keys())):
            return Outcome(crashed=gone_reason(client, address, run_id))  # it went near the end
        for f in held.values():
            f.release()
        wants.release()
        return Outcome(values=values, lost=lost, cancelled=self.cancellations.reason(run_id))

def _waking(on_event: OnEvent, windows: Windows) -> OnEvent:
    """``on_event``, and ``windows`` told of each event that ends a task run."""

    def handle(msg: dict[str, Any]) -> None:
        on_event(msg)
        seen = peek(msg)
        if seen is not None:
            windows.heard(seen[1])
        if seen is not None and seen[3] in FINISHED_TYPES:
            windows.ended(seen[1])
            windows.wake()

    return handle


def _snapshot(held: dict[Any, Future]) -> list[Future]:
    """The futures in ``held``, read from another thread while it may grow."""
    while True:
        try:
            return list(held.values())
        except RuntimeError:  # changed size during iteration: read again
            continue


def _own_collections(client: Client, values: dict[Any, Any]) -> dict[Any, Any]:
    """Returned collections persisted by this client, so they outlive the run's holds."""
    if not any(is_collection(v) for v in values.values()):
        return values
    with without_annotations():  # the run's span: dask-expr would warn when they are built
        return {k: client.persist(v) if is_collection(v) else v for k, v in values.items()}


# -- the shared default ---------------------------------------------------------
_default: dict[str, DaskExecutor] = {}
_default_lock = threading.Lock()


def default_executor() -> DaskExecutor:
    """The executor used when none is given: one per process, made on first use.

    It follows the ``taskflow.executor`` config: with ``address`` set, it connects
    there; with ``cluster-class`` set, it starts that cluster (with
    ``cluster-kwargs`` and ``adapt``); otherwise it starts an embedded
    LocalCluster.  The cluster is reused by every later run in this process with
    the same settings, and closed when the process exits.

    Examples
    --------
    >>> default_executor() is default_executor()  # doctest: +SKIP
    True
    """
    settings = {k: config.get(f"executor.{k}")
                for k in ("address", "cluster-class", "cluster-kwargs", "adapt")}
    key = repr(sorted(settings.items()))
    with _default_lock:
        ex = _default.get(key)
        if ex is None:
            ex = _default[key] = DaskExecutor()
        return ex


# clients (and their clusters) executors started, until closed: what exit closes
_owned: weakref.WeakKeyDictionary[Client, Any] = weakref.WeakKeyDictionary()


@atexit.register
def _close_at_exit() -> None:
    """Close the shared executors and every client an executor started and left open."""
    for ex in list(_default.values()):
        with contextlib.suppress(Exception):
            ex.close()
    _default.clear()
    for client, cluster in list(_owned.items()):
        close_client(client)
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()
    _owned.clear()
