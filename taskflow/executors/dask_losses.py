"""What Dask lost during a run, and why, in sentences a person can act on.

* :func:`scheduler_lost` -- did the client lose its scheduler (or get closed)?
  Dask then cancels every future with a ``CancelledError`` subclass, the same
  class as a user's cancel; the reason and the client's status tell them apart.
* :func:`gone_reason` -- the message of a run whose infrastructure went away
  (its CRASHED states, :attr:`~taskflow.executors.base.Outcome.crashed`).
* :func:`loss` -- why one key could not be computed (a worker kept dying, no
  worker offered its resources in time...), and the key at the origin.
* :func:`quietly` -- a clean-up step whose failure never hides the error being
  handled.
"""
from __future__ import annotations

import logging
from typing import Any

from distributed import Client
from distributed.scheduler import KilledWorker, NoValidWorkerError, NoWorkerError

__all__ = ["gone_reason", "loss", "quietly", "scheduler_lost"]

logger = logging.getLogger("taskflow.executors")


def scheduler_lost(client: Client, error: BaseException | None = None) -> bool:
    """Did ``client`` lose its scheduler (the cause of ``error``, if given)?

    Dask cancels every future of a client whose scheduler connection broke
    (reason ``scheduler-connection-lost``) and raises a ``CancelledError``
    subclass: the same class as a user's cancel, so the reason and the client's
    status tell them apart.
    """
    groups = getattr(error, "error_groups", None) or ()
    if any(getattr(g, "reason", None) == "scheduler-connection-lost" for g in groups):
        return True
    if getattr(error, "reason", None) == "scheduler-connection-lost":
        return True
    return getattr(client, "status", "running") not in ("running", "newly-created")


def gone_reason(client: Client, address: str, run_id: str) -> str:
    """Why a run's infrastructure went away, for its CRASHED states."""
    if getattr(client, "status", "") in ("closing", "closed"):
        what = f"the Dask client connected to {address} was closed during the run"
    else:
        what = (f"the connection to the Dask scheduler at {address} was lost during the run "
                "(scheduler stopped or unreachable)")
    return f"{what}; resume it with resume={run_id!r} on a running cluster"


def quietly(cleanup: Any, *args: Any) -> None:
    """Run a clean-up step whose failure must not hide the error being handled.

    E.g. cancelling futures on a client that closed raises ``ClosedClientError``;
    the error that made us clean up is the one a person needs to see.
    """
    try:
        cleanup(*args)
    except Exception as e:
        logger.debug("clean-up step %r failed (ignored): %r", cleanup, e)


def loss(future: Any) -> tuple[str, Any]:
    if future.status == "cancelled":
        return ("Dask cancelled it (the scheduler went away or the client disconnected)", None)
    exc = future.exception()
    if isinstance(exc, KilledWorker):
        return (
            f"the worker running it died and Dask gave up after {exc.allowed_failures + 1} "
            f"attempts (last worker {exc.last_worker.address})",
            exc.task,
        )
    if isinstance(exc, NoValidWorkerError):
        return (
            f"no worker offering the resources it asks for "
            f"({dict(exc.resource_restrictions or {})}) joined within {exc.timeout:g} s "
            "(taskflow.executor.resource-timeout, or the scheduler's "
            "distributed.scheduler.no-workers-timeout)",
            exc.task,
        )
    if isinstance(exc, NoWorkerError):
        return (f"no worker joined the cluster within {exc.timeout:g} s "
                "(distributed.scheduler.no-workers-timeout)", exc.task)
    return (f"Dask could not run it: {type(exc).__name__}: {exc}", None)
