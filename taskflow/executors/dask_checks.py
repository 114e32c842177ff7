"""What the Dask executor checks before it sends tasks: that workers can run them.

* every task pickles (a lock or a client in a closure is named, not a hang);
* workers can import the modules of tasks that travel by reference;
* some worker offers the resources each task asks for (``resources={"GPU": 1}``):
  a task no worker can run would wait forever in Dask's ``no-worker`` state;
* a ``file://`` result store is not used by workers on other hosts (a warning);
* workers run the same Python (major.minor), dask, distributed, cloudpickle and
  taskflow as this process: a task pickled by one cloudpickle or Python and
  loaded by another fails in ways that name neither, so a mismatch is refused
  up front, naming the worker and both versions.

Versions (distribution metadata on both sides) and imports are asked of each
worker in one ``Client.run`` of :func:`~taskflow.executors.probes.check_worker`,
pickled by value so a worker without taskflow still answers.  Each worker is
checked once, by address: a run looks at which workers are there (one small
call to the scheduler) and asks only those it has not checked yet, so workers
that join later (adaptive scaling) are checked at the next run.  Workers of
the LocalCluster the executor started in this process are not asked what is
known without asking (:mod:`~taskflow.executors.dask_spawned`): their versions,
and the modules that their ``sys.path`` finds where this process found them.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import socket
import threading
import warnings
import weakref
from typing import Any

import cloudpickle
import dask
from distributed import Client

from taskflow import config
from taskflow.engine.steps import PlannedTask, Step
from taskflow.exceptions import (
    LocalStoreWarning,
    ResourcesUnavailableError,
    TaskflowError,
    UnpicklableTaskError,
    WorkerMismatchError,
)
from taskflow.executors import probes
from taskflow.executors.dask_spawned import Spawned
from taskflow.task import import_task

# the probe travels by value: workers run it even without taskflow installed
cloudpickle.register_pickle_by_value(probes)

__all__ = [
    "LocalStoreWarning",
    "check_local_stores",
    "check_picklable",
    "check_resources",
    "check_workers",
]

# Packages whose versions must be equal on the client and every worker.
PACKAGES = ("dask", "distributed", "cloudpickle", "dask-taskflow")


def check_picklable(steps: list[Step]) -> dict[str, str]:
    """Check every task pickles; return ``{module: task name}`` of tasks sent by reference."""
    seen: set[int] = set()
    by_reference: dict[str, str] = {}
    for step in steps:
        if not isinstance(step, PlannedTask):
            continue
        t = step.spec.task
        if id(t) in seen:
            continue
        seen.add(id(t))
        reduced = t.__reduce__()
        if reduced[0] is import_task:
            by_reference.setdefault(reduced[1][0], t.name)
        else:  # its hooks travel with it (by reference, the worker imports them)
            _check_hooks(t)
        try:
            cloudpickle.dumps(t)
        except Exception as e:
            raise UnpicklableTaskError(
                f"task {t.name!r} cannot be sent to Dask workers: its function does not "
                f"pickle ({type(e).__name__}: {e}). Keep locks, connections, open files and "
                "clients out of its closure and defaults (create them inside the task), "
                "or run with taskflow.executors.LocalExecutor().",
                task=t.name,
            ) from None
    return by_reference


def _check_hooks(t: Any) -> None:
    """Task hooks run on the workers: each must pickle like the task's function."""
    from taskflow.hooks import TASK_HOOKS, hook_name

    for option in TASK_HOOKS:
        for hook in getattr(t, option, ()):
            try:
                cloudpickle.dumps(hook)
            except Exception as e:
                raise UnpicklableTaskError(
                    f"task {t.name!r} cannot be sent to Dask workers: its {option} hook "
                    f"{hook_name(hook)} does not pickle ({type(e).__name__}: {e}). Keep locks, "
                    "connections, open files and clients out of its closure and defaults "
                    "(create them inside the hook), or run with "
                    "taskflow.executors.LocalExecutor().",
                    task=t.name, hook=hook_name(hook),
                ) from None


class _Checked:
    """What is known of one client's workers: who is there, and what passed.

    Keyed by worker address, so a worker is checked once, and a worker that joins
    later (adaptive scaling, a restarted worker) is checked at the next run.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.workers: set[str] = set()  # at the last look
        self.looked = False
        self.versions: set[str] = set()  # same versions as this process
        self.imports: dict[str, set[str]] = {}  # modules each worker imports
        self.spawned: Spawned | None = None  # the workers started from this process
        self.warmed = False  # the workers there were asked to import taskflow (warm_workers)

    def look(self, client: Client) -> set[str]:
        """The workers now (one small call to the scheduler); forget those that left."""
        self.seen(set(client.nthreads()))
        return self.workers

    def look_here(self, modules: dict[str, str]) -> bool:
        """Look at the workers of a cluster started here (no round trip), and record
        what is known of those it started; False when they cannot be seen so."""
        spawned = self.spawned
        workers = spawned.workers() if spawned is not None else None
        if spawned is None or workers is None:
            return False
        self.seen(set(workers))
        ours = [w for w, then in workers.items() if then]
        if ours:
            self.versions.update(ours)
            known = set() if spawned.path_grew() else {m for m in modules if spawned.importable(m)}
            for worker in ours:
                self.imports.setdefault(worker, set()).update(known)
        return True

    def seen(self, workers: set[str]) -> None:
        self.workers, self.looked = workers, True
        self.versions &= workers
        for gone in set(self.imports) - workers:
            del self.imports[gone]

    def went_away(self, worker: str, answer: Any) -> bool:
        """Whether ``worker`` left while it was asked (its connection closed): it is
        gone, not wrong.  It is forgotten, so it is checked again if it comes back."""
        if isinstance(answer, OSError):  # distributed's CommClosedError is one
            self.workers.discard(worker)
            return True
        return False


_checked: weakref.WeakKeyDictionary[Client, _Checked] = weakref.WeakKeyDictionary()
_checked_lock = threading.Lock()


def _checks(client: Client) -> _Checked:
    with _checked_lock:
        checks = _checked.get(client)
        if checks is None:
            checks = _checked[client] = _Checked()
        return checks


def warm_workers(client: Client) -> None:
    """The workers of ``client`` import taskflow's worker side now, in the background.

    A fresh worker imports it when its first task arrives (tens of milliseconds,
    on the run's path); asked when a run starts, it does so while the client
    traces and plans the flow.  Once per client; nothing is waited for, nothing
    said if it fails (a worker that cannot import taskflow is named by
    :func:`check_workers`).  Workers that join later import it with their first task.
    """
    checks = _checks(client)
    if checks.warmed:
        return
    checks.warmed = True

    async def warm() -> None:
        with contextlib.suppress(Exception):
            await client._run(probes.import_worker_side, on_error="ignore")

    with contextlib.suppress(Exception):
        client.loop.add_callback(warm)


def check_workers(client: Client, modules: dict[str, str], *, look: bool = True) -> None:
    """Refuse workers that cannot run these tasks: other versions, missing modules.

    ``modules`` is ``{module: task name}`` of the tasks that travel by reference
    (:func:`check_picklable`).  Each worker is checked once, in one
    ``Client.run`` (:func:`~taskflow.executors.probes.check_worker`) that asks
    it both what it runs and what it cannot import:

    * **versions**: Python must match in major.minor (pickled code objects do
      not cross them); ``dask``, ``distributed``, ``cloudpickle`` and
      ``dask-taskflow`` must match exactly, as their distribution metadata says
      here and on each worker.  A mismatch raises :class:`WorkerMismatchError`
      naming every such worker.  Off with ``taskflow.executor.check-versions: false``.
    * **imports**: a task defined in an importable module travels by reference;
      a worker without that module could not even read the task and the run
      would stall.  A module a worker cannot import raises
      :class:`~taskflow.TaskflowError` naming the worker, the module and a task.
      This must be known before the graph is sent, not while it is: on
      distributed 2026.8 a task the worker cannot unpickle breaks the worker's
      stream from the scheduler (the whole message fails to load), and the
      worker is removed from the cluster.

    The first run on a client asks every worker (the answers say who is there);
    later runs (``look``) ask the scheduler which workers are there (one small
    call) and ask only workers not checked yet, and only for modules they have
    not imported yet, so workers that join later are checked at the next run
    and a run on known workers pays that one call.  With ``look`` false (the
    later batches of one run), the workers of the last look are used.
    """
    want_versions = bool(config.get("executor.check-versions"))
    if not modules and not want_versions:
        return
    checks = _checks(client)
    with checks.lock:
        todo: dict[tuple[bool, tuple[str, ...]], list[str] | None] = {}
        here = checks.look_here(modules)
        if not here and not checks.looked:  # the first run: ask everyone (this says who is there)
            todo[(want_versions, tuple(sorted(modules)))] = None
        else:
            workers = checks.workers if here or not look else checks.look(client)
            for worker in sorted(workers):
                versions = want_versions and worker not in checks.versions
                missing = tuple(sorted(set(modules) - checks.imports.get(worker, set())))
                if versions or missing:
                    todo.setdefault((versions, missing), []).append(worker)  # type: ignore[union-attr]
        answers: dict[str, tuple[bool, tuple[str, ...], Any]] = {}
        for (versions, wanted), targets in todo.items():
            got = client.run(probes.check_worker, list(PACKAGES) if versions else None,
                             list(wanted), workers=targets, on_error="return")
            if targets is None:
                checks.seen(set(got))
            answers.update((w, (versions, wanted, a)) for w, a in got.items())
        _judge(checks, answers, modules)


def started_here(client: Client, spawned: Spawned | None) -> None:
    """Tell the checks what is known of ``client``'s workers, started from this process
    (:func:`~taskflow.executors.dask_spawned.spawned_by`)."""
    if spawned is not None:
        checks = _checks(client)
        with checks.lock:
            checks.spawned = spawned


def _judge(checks: _Checked, answers: dict[str, tuple[bool, tuple[str, ...], Any]],
           modules: dict[str, str]) -> None:
    """Record what passed; raise for versions first (every bad worker), then imports.

    This process's versions are read (distribution metadata, a few ms) only when
    some worker reported its own: workers known without asking need none.
    """
    bad: dict[str, list[str]] = {}
    missing: list[tuple[str, str, str]] = []
    for worker, (versions, wanted, answer) in sorted(answers.items()):
        if checks.went_away(worker, answer):
            continue
        if isinstance(answer, BaseException):
            if versions:
                bad[worker] = [f"it could not report its versions "
                               f"({type(answer).__name__}: {answer})"]
                continue
            raise TaskflowError(
                f"Dask worker {worker} could not check that it imports {list(wanted)} "
                f"({type(answer).__name__}: {answer})", worker=worker,
            ) from answer
        if versions:
            problems = mismatches(_my_versions(), answer["versions"])
            if problems:
                bad[worker] = problems
                continue
            checks.versions.add(worker)
        if answer["missing"]:
            missing.extend((worker, m, e) for m, e in sorted(answer["missing"].items()))
        else:
            checks.imports.setdefault(worker, set()).update(wanted)
    if bad:
        shown = "; ".join(f"worker {w}: {', '.join(p)}" for w, p in list(bad.items())[:5])
        more = f" (and {len(bad) - 5} more workers)" if len(bad) > 5 else ""
        raise WorkerMismatchError(
            f"{len(bad)} Dask worker(s) cannot run taskflow tasks from this process: "
            f"{shown}{more}. Install the same versions on the workers as here (for "
            "example, build client and workers from one image), or set "
            "taskflow.executor.check-versions to false at your own risk.",
            workers=sorted(bad), problems=bad,
        )
    for worker, module, error in missing[:1]:
        raise TaskflowError(
            f"Dask worker {worker} cannot import module {module!r}, which defines "
            f"task {modules[module]!r} ({error}). Install it on the workers (your "
            "package, or PYTHONPATH), or define the flow in the script you run: "
            "tasks defined in __main__ travel with the flow.",
            worker=worker, module=module,
        )


@functools.lru_cache(maxsize=1)
def _my_versions() -> dict[str, Any]:
    """This process's versions, the way workers report theirs (they do not change)."""
    return probes.versions(list(PACKAGES))


def mismatches(client: dict[str, Any], worker: dict[str, Any]) -> list[str]:
    """What differs between a client's and a worker's package versions.

    Examples
    --------
    >>> here = {"python": "3.11.9", "dask": "2026.8.0", "cloudpickle": "3.1.1"}
    >>> mismatches(here, {**here, "python": "3.11.4"})
    []
    >>> mismatches(here, {**here, "python": "3.12.1", "cloudpickle": None})
    ['Python 3.12 on the worker, 3.11 here', 'cloudpickle is not installed on the worker (3.1.1 here)']
    """
    out = []
    ours, theirs = (".".join(str(v.get("python", "")).split(".")[:2]) for v in (client, worker))
    if ours != theirs:
        out.append(f"Python {theirs or 'unknown'} on the worker, {ours} here")
    for pkg in PACKAGES:
        if pkg not in client:
            continue
        name = "taskflow (dask-taskflow)" if pkg == "dask-taskflow" else pkg
        if worker.get(pkg) is None:
            out.append(f"{name} is not installed on the worker ({client[pkg]} here)")
        elif worker[pkg] != client[pkg]:
            out.append(f"{name} {worker[pkg]} on the worker, {client[pkg]} here")
    return out


logger = logging.getLogger("taskflow.executors")
_limits_set: weakref.WeakKeyDictionary[Client, float | None] = weakref.WeakKeyDictionary()


def check_resources(client: Client, steps: list[Step], *, scales: bool) -> None:
    """Refuse tasks whose resources no connected worker offers (before they are sent).

    ``resources={"GPU": 1}`` on a cluster without that resource would wait in
    Dask's ``no-worker`` state forever.  On a cluster that cannot grow, that is
    an error naming the task, the resource and what the workers offer.  On one
    that ``scales`` (adaptive), workers with the resource may still come: the
    task is sent, and waits at most ``taskflow.executor.resource-timeout`` (the
    scheduler's ``distributed.scheduler.no-workers-timeout`` when it has none),
    after which Dask fails it and the task ends saying why.  A cluster with no
    worker at all is not judged (its workers may be starting).  Off with
    ``taskflow.executor.check-resources: false``.
    """
    if not config.get("executor.check-resources", True):
        return
    wanted: dict[str, dict[str, float]] = {}
    for step in steps:
        if isinstance(step, PlannedTask) and step.spec.task.resources:
            wanted.setdefault(step.spec.task.name, dict(step.spec.task.resources))
    if not wanted:
        return
    if scales:
        _limit_waiting(client)
        return
    offered: dict[str, dict[str, float]] = client.run_on_scheduler(probes.worker_resources)
    if not offered:
        return
    for name, needs in wanted.items():
        if any(all(have.get(r, 0) >= n for r, n in needs.items()) for have in offered.values()):
            continue
        raise ResourcesUnavailableError(
            f"task {name!r} asks for resources {_show(needs)}, which no worker of the Dask "
            f"cluster at {client.scheduler.address} offers (workers offer: "
            f"{_offers(offered)}). Start workers with them (e.g. `dask worker ADDRESS "
            f"--resources \"{_flag(needs)}\"`), or change the task's resources=.",
            task=name, resources=needs, offered=offered,
        )


def _limit_waiting(client: Client) -> None:
    if client in _limits_set:
        return
    seconds = dask.utils.parse_timedelta(config.get("executor.resource-timeout"))
    try:
        _limits_set[client] = client.run_on_scheduler(probes.wait_for_resources_at_most, seconds)
    except Exception as e:  # an old scheduler: tasks wait as Dask decides
        logger.debug("could not limit how long tasks wait for resources: %r", e)
        _limits_set[client] = None


def _show(resources: dict[str, float]) -> str:
    return "{" + ", ".join(f"{k!r}: {v:g}" for k, v in sorted(resources.items())) + "}"


def _flag(resources: dict[str, float]) -> str:
    return " ".join(f"{k}={v:g}" for k, v in sorted(resources.items()))


def _offers(offered: dict[str, dict[str, float]]) -> str:
    kinds: dict[str, int] = {}
    for have in offered.values():
        shown = _show(have) if have else "no resources"
        kinds[shown] = kinds.get(shown, 0) + 1
    return "; ".join(f"{n} with {shown}" for shown, n in sorted(kinds.items()))


_stores_checked: weakref.WeakKeyDictionary[Client, set[str]] = weakref.WeakKeyDictionary()


def check_local_stores(client: Client, steps: list[Step]) -> None:
    """Warn once (per client and store) when a local-path store meets workers on other hosts.

    A ``file://`` store is a path on whichever machine runs the task: each
    checkpoint lands on the disk of the worker that wrote it, so this process,
    other workers and a resume elsewhere cannot find it.  Workers whose host
    name differs from this process's are named, with the fix: a path every
    machine mounts at the same place, or an object store.
    """
    stores: dict[str, Any] = {}
    for step in steps:
        p = step.spec.persist if isinstance(step, PlannedTask) else None
        if p is not None and p.store.url not in stores:
            stores[p.store.url] = p.store
    checked = _stores_checked.setdefault(client, set())
    todo = [s for url, s in stores.items() if url not in checked and _is_local(s)]
    if not todo:
        return
    spawned = _checks(client).spawned
    workers = spawned.workers() if spawned is not None else None
    if workers and all(workers.values()):  # every worker was started here, on this host
        checked.update(store.url for store in todo)
        return
    here = socket.gethostname()
    hosts: dict[str, str] = client.run(socket.gethostname)
    others = {w: h for w, h in sorted(hosts.items()) if h != here}
    for store in todo:
        checked.add(store.url)
        if not others:
            continue
        shown = ", ".join(f"{w} on {h!r}" for w, h in list(others.items())[:5])
        more = f" and {len(others) - 5} more" if len(others) > 5 else ""
        warnings.warn(
            f"result store {store.url} is a local path, but {len(others)} Dask worker(s) run "
            f"on other hosts than this one ({here!r}): {shown}{more}. Each checkpoint is "
            "written to the disk of the machine that ran the task, where this process and a "
            "resume elsewhere cannot find it. Use a path every machine mounts at the same "
            "place (a shared filesystem), or an object store such as s3://bucket/prefix.",
            LocalStoreWarning, stacklevel=2,
        )


def _is_local(store: Any) -> bool:
    try:
        return bool(store.is_local)
    except Exception:  # a filesystem that cannot be opened here is checked elsewhere
        return False
