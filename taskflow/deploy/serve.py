"""Serve flows: a long-running process that starts each flow's runs on its schedule.

::

    etl.serve(CronSchedule("0 * * * *"))                       # one flow, blocks
    serve(etl.to_deployment(IntervalSchedule("15m")),           # several flows
          report.to_deployment(CronSchedule("0 6 * * *", timezone="Europe/Berlin")))

or from a shell: ``taskflow serve flows.py:etl --every 15m``.

What the server does:

* starts each run when it is due, on the executor given (default: the
  configured cluster, ``taskflow.executor.*``), each run in its own thread;
  every run is recorded in the run history like any other;
* keeps going when a run fails (or cannot even start: the error is logged);
* does not start a run of a flow while its previous run still goes, unless the
  deployment allows ``overlap`` (the skipped due time is logged);
* skips runs that fell due while no server ran (it knows from the last due time
  it recorded in the history), or runs them, one after another, with
  ``catch_up=True``;
* takes ad hoc runs asked with ``taskflow run NAME -p ...`` or the server's Quick
  Run and Resume (through the history); several serve processes may serve one flow
  for these (each request is claimed by one), but a scheduled flow by one only;
* cancels its runs when asked (``taskflow cancel``, the server's Cancel: its
  history recorder takes the request, see :mod:`taskflow.history.recorder`);
* with ``notify=`` (``taskflow serve --notify URL``), tells a webhook about every
  served run that ends FAILED or CRASHED (see :mod:`taskflow.notify`);
* stops on SIGTERM or Ctrl-C: it starts nothing more, lets running runs finish
  (``on_stop="wait"``, for at most ``taskflow.serve.stop-timeout``) or cancels
  them (``on_stop="cancel"``: they end CANCELLED).  A second signal cancels at once.
"""
from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import dask.utils

from taskflow import config, settings
from taskflow.deploy.schedules import Schedule
from taskflow.exceptions import TaskflowError

if TYPE_CHECKING:
    from taskflow.executors.base import Executor
    from taskflow.history.store import HistoryStore
    from taskflow.runs import RunnableFlow

__all__ = ["Deployment", "Server", "serve"]

logger = logging.getLogger("taskflow.serve")


@dataclass
class Deployment:
    """A flow to serve: its schedule, parameters and rules.

    Parameters
    ----------
    flow : Flow
    schedule : Schedule, optional
        When runs are due (default: the flow's own ``schedule``).  Without any,
        the flow is served for ad hoc runs only.
    parameters : dict, optional
        Values for every run (over the schedule's ``parameters``; an ad hoc
        request's parameters go over both).
    name : str, optional
        The name ad hoc runs ask for (default: the flow's name).
    overlap : bool
        Start a due run even while the previous one still goes (default: skip it).
    catch_up : bool
        Run the runs missed while no server ran, one after another (default: skip them).
    target : str
        Where the flow came from (``file.py:flow``), for people reading the history.

    Examples
    --------
    >>> from taskflow import IntervalSchedule, flow, task
    >>> @task
    ... def inc(x):
    ...     return x + 1
    >>> @flow
    ... def hourly(n: int = 1):
    ...     return inc(n)
    >>> d = hourly.to_deployment(IntervalSchedule("1h"), parameters={"n": 5})
    >>> d.name, d.schedule, d.parameters
    ('hourly', IntervalSchedule('1h'), {'n': 5})
    """

    flow: RunnableFlow
    schedule: Schedule | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    overlap: bool = False
    catch_up: bool = False
    target: str = ""

    def __post_init__(self) -> None:
        if self.schedule is None:
            self.schedule = getattr(self.flow, "schedule", None)
        if self.schedule is not None and not isinstance(self.schedule, Schedule):
            raise TaskflowError(
                f"flow {self.flow.name!r}: schedule must be a taskflow Schedule "
                f"(IntervalSchedule, CronSchedule), got {self.schedule!r}", flow=self.flow.name,
            )
        self.name = self.name or self.flow.name
        self.parameters = dict(self.parameters or {})
        self.flow.bind_parameters(self.run_parameters())  # unknown or missing names fail now

    def run_parameters(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Parameters of a run: the schedule's, then the deployment's, then ``extra``."""
        base = dict(self.schedule.parameters) if self.schedule is not None else {}
        return {**base, **self.parameters, **(extra or {})}

    def describe(self) -> str:
        return self.schedule.describe() if self.schedule is not None else "ad hoc runs only"


@dataclass
class _Served:
    deployment: Deployment
    next_due: datetime | None = None
    backlog: deque[datetime] = field(default_factory=deque)  # missed runs to catch up
    last_due: datetime | None = None  # the latest due time handled
    running: dict[str, threading.Thread] = field(default_factory=dict)


class Server:
    """Serves deployments until stopped; see the module docstring.

    Parameters
    ----------
    deployments : sequence of Deployment
    executor : Executor, optional
        Where runs go (default: the configured default executor).
    on_stop : {"wait", "cancel"}
        What a stop does to running runs.
    stop_timeout : float or str, optional
        How long a stop waits for running runs before cancelling them (default
        ``taskflow.serve.stop-timeout``).
    poll_interval : float or str, optional
        How often ad hoc run requests are looked for (default ``taskflow.serve.poll-interval``).
    notify : sequence of str or callable, optional
        Webhook URLs (``env:NAME`` too; see :func:`taskflow.notify.webhook`) or hooks
        added as ``on_failure`` and ``on_crashed`` hooks to every served flow.

    Examples
    --------
    >>> from taskflow.deploy.schedules import IntervalSchedule
    >>> server = Server([etl.to_deployment(IntervalSchedule("15m"))])  # doctest: +SKIP
    >>> server.serve()  # blocks; server.stop() from another thread ends it  # doctest: +SKIP
    """

    def __init__(
        self,
        deployments: Sequence[Deployment],
        executor: Executor | None = None,
        *,
        on_stop: str = "wait",
        stop_timeout: float | str | None = None,
        poll_interval: float | str | None = None,
        notify: Sequence[str | Callable[..., Any]] = (),
    ) -> None:
        if not deployments:
            raise TaskflowError("nothing to serve: give at least one flow")
        names = [d.name for d in deployments]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise TaskflowError(f"two served flows have the same name {twice}; give them "
                                "distinct names (Deployment(name=...))", names=twice)
        if on_stop not in ("wait", "cancel"):
            raise TaskflowError(f"on_stop must be 'wait' or 'cancel', got {on_stop!r}")
        if notify:
            deployments = [_notifying(d, notify) for d in deployments]
        self.served = {d.name: _Served(d) for d in deployments}
        self.executor = executor
        self.on_stop = on_stop
        self.stop_timeout = _seconds(stop_timeout, "serve.stop-timeout")
        self.poll_interval = _seconds(poll_interval, "serve.poll-interval")
        self.beat_interval = _seconds(None, "history.heartbeat-interval")
        self._wake = threading.Event()
        self._stopping = False
        self._cancel_now = False
        self._stop_reason = "stopped"
        self._history: HistoryStore | None = None
        self.started_runs: list[str] = []  # run ids, in order (for callers and tests)

    # -- control ---------------------------------------------------------------------
    def stop(self, reason: str = "stop requested") -> None:
        """Stop serving (any thread); called twice, cancel running runs at once."""
        # no lock: a signal handler calls this on the main thread, which may hold it
        if self._stopping:
            self._cancel_now = True
        self._stop_reason = reason
        self._stopping = True
        self._wake.set()

    def serve(self) -> None:
        """Serve until :meth:`stop`, SIGTERM or Ctrl-C."""
        restore = self._install_signals()
        try:
            self._start()
            while not self._stopping:
                self._tick()
                self._wake.wait(self._sleep_time())
                self._wake.clear()
        finally:
            try:
                self._shutdown()
            finally:
                restore()

    # -- the loop --------------------------------------------------------------------
    def _start(self) -> None:
        if self.executor is None:
            from taskflow.executors import default_executor

            self.executor = default_executor()
        self._history = _open_history()
        last_due: dict[str, float | None] = {}
        if self._history is not None:
            from taskflow.history import serving

            known = {r.name: r for r in serving.served_flows(self._history)}
            last_due = {n: known[n].last_due if n in known else None for n in self.served}
            serving.register(self._history, [
                {"name": n, "target": s.deployment.target, "schedule": s.deployment.describe(),
                 "parameters": s.deployment.parameters, "signature": signature(s.deployment),
                 "scheduled": s.deployment.schedule is not None}
                for n, s in self.served.items()
            ], alive_within=_seconds(None, "history.stale-after"))
        now = _now()
        for name, s in self.served.items():
            schedule = s.deployment.schedule
            if schedule is None:
                continue
            last = last_due.get(name)
            if last is not None:
                missed = schedule.due_between(datetime.fromtimestamp(last, timezone.utc), now)
                if missed and s.deployment.catch_up:
                    s.backlog.extend(missed)
                    logger.info("flow %r: catching up %d run(s) missed while not served",
                                name, len(missed))
                elif missed:
                    logger.warning("flow %r: skipped %d run(s) due while not served (%s to %s); "
                                   "catch_up=True runs them", name, len(missed),
                                   missed[0].isoformat(), missed[-1].isoformat())
            upcoming = schedule.next(1, after=now)
            s.next_due = upcoming[0] if upcoming else None
            if self._history is not None:
                from taskflow.history import serving

                serving.set_last_due(self._history, name, None,
                                     s.next_due.timestamp() if s.next_due else None)
            logger.info("serving flow %r: %s; next run %s", name, s.deployment.describe(),
                        s.next_due.isoformat() if s.next_due else "never")
        self._beat_at = time.monotonic()

    def _tick(self) -> None:
        now = _now()
        for name, s in self.served.items():
            self._reap(s)
            if s.next_due is not None and s.next_due <= now:
                due = s.next_due
                later = s.deployment.schedule.next(1, after=now) if s.deployment.schedule else []
                s.next_due = later[0] if later else None
                if s.running and not s.deployment.overlap:
                    logger.warning("flow %r: run due %s skipped: its previous run %s still goes",
                                   name, due.isoformat(), next(iter(s.running))[:8])
                else:
                    self._launch(s, s.deployment.run_parameters(), f"scheduled for {due.isoformat()}")
                self._record_due(name, due)
            if s.backlog and (s.deployment.overlap or not s.running):
                due = s.backlog.popleft()
                self._launch(s, s.deployment.run_parameters(), f"catching up {due.isoformat()}")
                self._record_due(name, due)
        self._take_requests()
        if self._history is not None and time.monotonic() - self._beat_at > self.beat_interval:
            from taskflow.history import serving

            serving.beat(self._history, self.served)
            self._beat_at = time.monotonic()

    def _sleep_time(self) -> float:
        now = _now()
        waits = [self.poll_interval]
        for s in self.served.values():
            if s.next_due is not None:
                waits.append((s.next_due - now).total_seconds())
        return max(0.0, min(waits))

    def _take_requests(self) -> None:
        if self._history is None:
            return
        from taskflow.history import serving

        for request, run_id in serving.claim(self._history, self.served, _new_run_id):
            s = self.served[request.flow_name]
            if request.resume:
                self._launch(s, {}, f"resuming run {request.resume[:8]}", run_id,
                             resume=request.resume, request_id=request.id)
                continue
            params = s.deployment.run_parameters(request.parameters_dict)
            try:
                s.deployment.flow.bind_parameters(params)
            except TaskflowError as e:
                serving.refuse(self._history, request.id, str(e))
                logger.warning("flow %r: ad hoc run refused: %s", request.flow_name, e)
                continue
            self._launch(s, params, "ad hoc run", run_id, request_id=request.id)

    def _launch(self, s: _Served, params: dict[str, Any], why: str, run_id: str | None = None,
                resume: str | None = None, request_id: str | None = None) -> None:
        run_id = run_id or _new_run_id()
        thread = threading.Thread(target=self._run,
                                  args=(s.deployment, params, run_id, why, resume, request_id),
                                  name=f"taskflow-serve-{s.deployment.name}-{run_id[:8]}",
                                  daemon=True)
        s.running[run_id] = thread
        self.started_runs.append(run_id)
        thread.start()

    def _run(self, d: Deployment, params: dict[str, Any], run_id: str, why: str,
             resume: str | None = None, request_id: str | None = None) -> None:
        from taskflow.engine.launch import start_run

        logger.info("flow %r: starting run %s (%s)", d.name, run_id[:8], why)
        try:
            run = start_run(d.flow, params, executor=self.executor, run_id=run_id, resume=resume)
        except Exception as e:  # could not even start: log it and serve on
            logger.error("flow %r: run %s could not run: %s: %s", d.name, run_id[:8],
                         type(e).__name__, e)
            if request_id is not None and self._history is not None:
                from taskflow.history import serving

                serving.refuse(self._history, request_id, f"{type(e).__name__}: {e}")
        else:
            logger.debug("flow %r: run %s ended %s", d.name, run_id[:8], run.state.type.value)
        finally:
            self._wake.set()

    def _reap(self, s: _Served) -> None:
        for run_id, thread in list(s.running.items()):
            if not thread.is_alive():
                del s.running[run_id]

    def _record_due(self, name: str, due: datetime) -> None:
        s = self.served[name]
        if s.last_due is not None and due <= s.last_due:
            return  # a caught-up run older than a due time already recorded
        s.last_due = due
        if self._history is not None:
            from taskflow.history import serving

            serving.set_last_due(self._history, name, due.timestamp(),
                                 s.next_due.timestamp() if s.next_due else None)

    # -- stopping --------------------------------------------------------------------
    def _shutdown(self) -> None:
        running = [(run_id, t) for s in self.served.values() for run_id, t in s.running.items()]
        reason = f"the serve process stopped ({self._stop_reason})"
        if running:
            logger.info("stopping: %d run(s) still going; %s", len(running),
                        "cancelling them" if self.on_stop == "cancel" else
                        f"waiting up to {self.stop_timeout:g} s for them")
        deadline = time.monotonic() + (0 if self.on_stop == "cancel" else self.stop_timeout)
        for _run_id, thread in running:
            while thread.is_alive() and not self._cancel_now and time.monotonic() < deadline:
                thread.join(min(0.1, max(0.0, deadline - time.monotonic())))
        for run_id, thread in running:
            give_up = time.monotonic() + 30
            while thread.is_alive() and time.monotonic() < give_up:
                # again until it takes: a run just launched may not be cancellable yet
                if self.executor is not None:
                    self.executor.cancel(run_id, reason)
                thread.join(0.1)
        if self._history is not None:
            from taskflow.history import serving

            try:
                serving.unregister(self._history, self.served)
            finally:
                self._history.close()
        logger.info("stopped serving %s", ", ".join(repr(n) for n in self.served))

    def _install_signals(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def handler(signum: int, _frame: Any) -> None:
            self.stop(signal.Signals(signum).name)

        for sig in previous:
            signal.signal(sig, handler)

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore


def _notifying(d: Deployment, notify: Sequence[str | Callable[..., Any]]) -> Deployment:
    """``d`` with ``notify`` (URLs or hooks) added to its flow's on_failure and on_crashed."""
    from taskflow.notify import webhook

    hooks = [webhook(n) if isinstance(n, str) else n for n in notify]
    f = d.flow
    flow = f.with_options(on_failure=[*f.on_failure, *hooks], on_crashed=[*f.on_crashed, *hooks])
    return dataclasses.replace(d, flow=flow, name=d.name)


def serve(*deployments: Deployment, executor: Executor | None = None, on_stop: str = "wait",
          stop_timeout: float | str | None = None,
          notify: Sequence[str | Callable[..., Any]] = ()) -> None:
    """Serve several flows in this process until SIGTERM or Ctrl-C.

    Parameters
    ----------
    *deployments : Deployment
        What to serve, each from :meth:`taskflow.Flow.to_deployment`.
    executor : Executor, optional
        Where runs go (default: the configured default executor).
    on_stop : {"wait", "cancel"}
        On SIGTERM or Ctrl-C: let running runs finish (up to ``stop_timeout``),
        or cancel them at once.
    stop_timeout : float or str, optional
        Default ``taskflow.serve.stop-timeout``.

    Examples
    --------
    >>> from taskflow.deploy.schedules import CronSchedule, IntervalSchedule
    >>> serve(etl.to_deployment(IntervalSchedule("15m")),                  # doctest: +SKIP
    ...       report.to_deployment(CronSchedule("0 6 * * *"), parameters={"day": "today"}))
    """
    settings.check()
    Server(deployments, executor, on_stop=on_stop, stop_timeout=stop_timeout,
           notify=notify).serve()


def signature(d: Deployment) -> list[dict[str, Any]]:
    """The parameters of a deployment's flow: name, type, JSON schema, default, required.

    ``type`` is the hint as written (:func:`taskflow.parameters.type_name`; for a
    parameter without one, the type of its default), ``schema`` the JSON schema
    pydantic makes of the hint (None: any value; see
    :mod:`taskflow.parameter_schemas`).  The deployment's own values stand in for
    the defaults.  Kept in the history with the served flow, so a server can build
    a form and check values as the flow would, without importing the flow.

    Examples
    --------
    >>> from taskflow import flow, task
    >>> @flow
    ... def etl(n: int = 10, name: str = "x", tag=None):
    ...     pass
    >>> [(p["name"], p["type"], p["schema"], p["default"]) for p in signature(Deployment(etl))]
    [('n', 'int', {'type': 'integer'}, 10), ('name', 'str', {'type': 'string'}, 'x'), ('tag', '', None, None)]
    """
    import json

    from taskflow.parameter_schemas import parameter_schema
    from taskflow.parameters import json_default, parameter_hints, type_name

    fn = getattr(d.flow, "fn", None)
    hints = parameter_hints(fn) if fn is not None else {}
    out = []
    for name, p in d.flow.graph.parameters.items():
        default = d.parameters.get(name, None if p.required else p.default)
        try:
            json.dumps(default)
        except (TypeError, ValueError):  # a date, a set...: as JSON where pydantic knows how
            default = json_default(default)
        hint = hints.get(name)
        if hint is not None:
            shown, schema = type_name(hint), parameter_schema(hint)
        else:  # no hint: any value, as in the flow's own check; its default's type is shown
            shown, schema = ("" if p.required or default is None else type(default).__name__), None
        out.append({"name": name, "type": shown, "schema": schema, "default": default,
                    "required": p.required and name not in d.parameters})
    return out


def _open_history() -> HistoryStore | None:
    if not config.get("history.enabled"):
        logger.warning("run history is off (taskflow.history.enabled): runs missed while not "
                       "served cannot be known, and ad hoc runs cannot be asked for")
        return None
    from taskflow.history import open_history

    return open_history()


def _seconds(value: float | str | None, key: str) -> float:
    return float(dask.utils.parse_timedelta(config.get(key) if value is None else value))


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _new_run_id() -> str:
    return uuid.uuid4().hex
