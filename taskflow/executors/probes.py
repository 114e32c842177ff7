"""Small functions taskflow runs on the workers and the scheduler, pickled by value.

This module imports only the standard library, and the Dask executor registers
it with :func:`cloudpickle.register_pickle_by_value`, so its functions run
through ``Client.run`` and ``Client.run_on_scheduler`` even where taskflow is
not installed (the version check must be able to say so):

* :func:`check_worker` -- what a worker is checked for once, in one call: its
  versions and the task modules it cannot import;
* :func:`import_worker_side` -- taskflow's worker side, imported before a run's
  first task needs it (:func:`~taskflow.executors.dask_checks.warm_workers`);
* :func:`versions` -- Python and distribution versions, from distribution
  metadata (:func:`importlib.metadata.version`), the same way on the client and
  on the workers, on every version of distributed (whose own
  ``get_versions(packages=...)`` looks packages up by import name on some);
* :func:`worker_resources` -- what each worker offers (``--resources GPU=1``);
* :func:`wait_for_resources_at_most` -- the scheduler's ``no-workers-timeout``,
  set when none is, for adaptive clusters.

Examples
--------
>>> v = versions(["dask", "no-such-distribution"])
>>> sorted(v), v["no-such-distribution"]
(['dask', 'no-such-distribution', 'python'], None)
"""
from __future__ import annotations

from typing import Any

__all__ = ["check_worker", "import_worker_side", "missing_modules", "versions", "wait_for_resources_at_most",
           "worker_resources"]


def versions(distributions: list[str]) -> dict[str, str | None]:
    """``{"python": "3.11.7", dist: version or None, ...}`` in this process."""
    import importlib.metadata
    import sys

    out: dict[str, str | None] = {"python": ".".join(str(p) for p in sys.version_info[:3])}
    for dist in distributions:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def missing_modules(modules: list[str]) -> dict[str, str]:
    """The modules of ``modules`` this process cannot import, with the error."""
    import importlib

    missing = {}
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as e:
            missing[name] = f"{type(e).__name__}: {e}"
    return missing


def import_worker_side() -> bool:
    """Import taskflow's worker side here (what a task key's function needs); False
    where it cannot be imported (the worker checks say why)."""
    import importlib

    try:
        importlib.import_module("taskflow.executors.dask_spec")
    except Exception:
        return False
    return True


def check_worker(distributions: list[str] | None, modules: list[str]) -> dict[str, Any]:
    """Everything a worker is checked for, in one call: ``{"versions": ..., "missing": ...}``.

    ``versions`` (only when ``distributions`` is given) is :func:`versions`;
    ``missing`` is :func:`missing_modules` of ``modules``.  Versions come first, so
    a worker that cannot import taskflow itself still reports them.
    """
    out: dict[str, Any] = {}
    if distributions is not None:
        out["versions"] = versions(distributions)
    out["missing"] = missing_modules(modules) if modules else {}
    return out


def worker_resources(dask_scheduler: Any) -> dict[str, dict[str, float]]:
    """On the scheduler: each worker's address and the resources it offers."""
    return {addr: dict(ws.resources) for addr, ws in dask_scheduler.workers.items()}


def wait_for_resources_at_most(seconds: float, dask_scheduler: Any = None) -> float | None:
    """On the scheduler: fail tasks no worker can run after ``seconds``, unless a limit is set.

    Returns the limit in force afterwards (the scheduler's own, when it had one).
    """
    if getattr(dask_scheduler, "no_workers_timeout", None) is None:
        dask_scheduler.no_workers_timeout = seconds
    return dask_scheduler.no_workers_timeout
