"""What the Dask executor checks before it sends tasks: that workers can run them.

* every task pickles (a lock or a client in a closure is named, not a hang);
* workers can import the modules of tasks that travel by reference;
* workers run the same Python (major.minor), dask, distributed, cloudpickle and
  taskflow as this process: a task pickled by one cloudpickle or Python and
  loaded by another fails in ways that name neither, so a mismatch is refused
  up front, naming the worker and both versions.

Versions come from the workers' own ``versions`` handler (what
``Client.get_versions`` asks them); imports from ``Client.run``.  Each worker
is checked once, by address: a run looks at which workers are there (one small
call to the scheduler) and asks only those it has not checked yet, so workers
that join later (adaptive scaling) are checked at the next run.
"""
from __future__ import annotations

import functools
import importlib
import threading
import weakref
from typing import Any

import cloudpickle
from distributed import Client
from distributed.versions import get_versions

from taskflow import config
from taskflow.engine.steps import PlannedTask, Step
from taskflow.exceptions import TaskflowError, UnpicklableTaskError, WorkerMismatchError
from taskflow.task import import_task

__all__ = ["check_picklable", "check_versions", "check_workers_import"]

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
        try:
            reduced = t.__reduce__()
            if reduced[0] is import_task:
                by_reference.setdefault(reduced[1][0], t.name)
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


def _missing_modules(modules: list[str]) -> dict[str, str]:
    """On a worker: the modules it cannot import, with the error."""
    missing = {}
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as e:
            missing[name] = f"{type(e).__name__}: {e}"
    return missing


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

    def look(self, client: Client) -> set[str]:
        """The workers now (one small call to the scheduler); forget those that left."""
        self.workers = set(client.nthreads())
        self.looked = True
        self.versions &= self.workers
        for gone in set(self.imports) - self.workers:
            del self.imports[gone]
        return self.workers


_checked: weakref.WeakKeyDictionary[Client, _Checked] = weakref.WeakKeyDictionary()
_checked_lock = threading.Lock()


def _checks(client: Client) -> _Checked:
    with _checked_lock:
        checks = _checked.get(client)
        if checks is None:
            checks = _checked[client] = _Checked()
        return checks


def check_workers_import(client: Client, modules: dict[str, str]) -> None:
    """Fail early, naming the module, when workers cannot import a task's module.

    Tasks defined in an importable module travel by reference: a worker without
    that module would fail to even read the task and the run would stall.  Each
    module is checked once per worker (the workers seen at the start of the run),
    in one ``Client.run`` on the workers that have not imported it yet.
    """
    if not modules:
        return
    checks = _checks(client)
    with checks.lock:
        workers = checks.workers if checks.looked else checks.look(client)
        todo: dict[str, list[str]] = {}
        for worker in sorted(workers):
            missing = sorted(set(modules) - checks.imports.get(worker, set()))
            if missing:
                todo.setdefault(" ".join(missing), []).append(worker)
        for names, targets in todo.items():
            wanted = names.split(" ")
            answers = client.run(_missing_modules, wanted, workers=targets)
            for worker, missing in sorted(answers.items()):
                for module, error in missing.items():
                    raise TaskflowError(
                        f"Dask worker {worker} cannot import module {module!r}, which defines "
                        f"task {modules[module]!r} ({error}). Install it on the workers (your "
                        "package, or PYTHONPATH), or define the flow in the script you run: "
                        "tasks defined in __main__ travel with the flow.",
                        worker=worker, module=module,
                    )
                checks.imports.setdefault(worker, set()).update(wanted)


@functools.lru_cache(maxsize=1)
def _my_versions() -> dict[str, Any]:
    """This process's versions, as Dask reports a worker's (they do not change)."""
    return get_versions(packages=["dask-taskflow"])["packages"]


def check_versions(client: Client) -> None:
    """Refuse workers whose Python or key packages differ from this process's.

    Python must match in major.minor (pickled code objects do not cross them);
    ``dask``, ``distributed``, ``cloudpickle`` and ``dask-taskflow`` must match
    exactly.  Off with ``taskflow.executor.check-versions: false``.

    Called at the start of every run: it looks at which workers are there (one
    small call to the scheduler) and asks only the new ones for their versions
    (the workers' own ``versions`` handler, which answers whatever their Python
    and packages are), so a run on known workers pays one round trip.
    """
    checks = _checks(client)
    with checks.lock:
        if not checks.looked:  # the first run: ask everyone (this also says who is there)
            new: list[str] | None = None
        else:
            new = sorted(checks.look(client) - checks.versions)
        if not config.get("executor.check-versions"):
            if new is None:
                checks.look(client)
            return
        if new == []:
            return
        answers: Any = client.sync(
            client.scheduler.broadcast, msg={"op": "versions", "packages": ["dask-taskflow"]},
            workers=new, on_error="ignore",
        )
        if new is None:
            checks.workers, checks.looked = set(answers), True
        mine = _my_versions()
        bad: dict[str, list[str]] = {}
        for worker, info in sorted(answers.items()):
            problems = mismatches(mine, info.get("packages", {}) if isinstance(info, dict) else {})
            if problems:
                bad[worker] = problems
            else:
                checks.versions.add(worker)
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


def mismatches(client: dict[str, Any], worker: dict[str, Any]) -> list[str]:
    """What differs between a client's and a worker's package versions.

    Examples
    --------
    >>> here = {"python": "3.11.9.final.0", "dask": "2026.8.0", "cloudpickle": "3.1.1"}
    >>> mismatches(here, {**here, "python": "3.11.4.final.0"})
    []
    >>> mismatches(here, {**here, "python": "3.12.1.final.0", "cloudpickle": None})
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
