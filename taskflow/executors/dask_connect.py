"""Connecting a DaskExecutor: a scheduler address, a cluster class, or an embedded LocalCluster.

Where runs go is chosen in this order: what the executor was given (an address,
or a cluster class with kwargs and adaptive scaling), else the
``taskflow.executor`` config (``address``, or ``cluster-class`` with
``cluster-kwargs`` and ``adapt``), else an embedded LocalCluster (worker
processes, dashboard on 127.0.0.1).  TLS comes from the client's ``security``
or Dask's ``distributed.comm.tls`` config.

Every way to fail says what is wrong and how to fix it: no scheduler at the
address, a cluster class whose package is missing (naming what to pip install),
a TLS address without certificates, certificates the scheduler refuses, a
``tcp://`` address for a client that requires encryption.

The embedded LocalCluster's workers import taskflow's worker side as they start
(a Dask worker preload, beside any the user configured), so a first run's first
tasks do not wait for it: tens of milliseconds of CPU on each worker, paid while
the cluster starts, where nothing else waits on those workers yet.

A LocalCluster started here is described to the worker checks
(:mod:`~taskflow.executors.dask_spawned`): its workers got this process's
executable and ``sys.path``, so what that makes certain is not asked of them.
"""
from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import dask
from distributed import Client
from distributed.comm.addressing import parse_address
from distributed.comm.core import CommClosedError

from taskflow import config
from taskflow.exceptions import SchedulerUnreachableError, TaskflowError
from taskflow.executors.dask_checks import started_here
from taskflow.executors.dask_spawned import spawned_by, start_path

__all__ = ["close_client", "connect", "import_path"]


def connect(
    address: str | None,
    cluster_class: type | str | None,
    cluster_kwargs: Mapping[str, Any],
    adapt_kwargs: Mapping[str, Any] | None,
    client_kwargs: Mapping[str, Any],
    from_config: bool = True,
) -> tuple[Client, Any]:
    """A connected client, and the cluster started for it (None for an address).

    With neither ``address`` nor ``cluster_class`` and ``from_config``, the
    ``taskflow.executor`` config decides.
    """
    timeout = dask.utils.parse_timedelta(config.get("executor.connect-timeout"))
    cluster_kwargs = dict(cluster_kwargs)
    if address is None and cluster_class is None and from_config:
        address = config.get("executor.address")
        cluster_class = config.get("executor.cluster-class")
        if address is not None and cluster_class is not None:
            raise TaskflowError(
                "dask config sets both taskflow.executor.address and "
                "taskflow.executor.cluster-class; set one of them"
            )
        if cluster_class is not None:
            cluster_kwargs = {**(config.get("executor.cluster-kwargs") or {}), **cluster_kwargs}
            if adapt_kwargs is None:
                adapt_kwargs = config.get("executor.adapt")
    if address is not None:
        return _client_at(address, timeout, client_kwargs), None
    if cluster_class is None:
        from distributed import LocalCluster

        cls: Any = LocalCluster
        kwargs = {
            "host": "127.0.0.1",
            "dashboard_address": "127.0.0.1:8787",
            **(config.get("executor.local-cluster") or {}),
            **cluster_kwargs,
        }
        kwargs["preload"] = with_worker_side(kwargs.get("preload"))
    else:
        cls = import_path(cluster_class, "cluster class") if isinstance(cluster_class, str) else cluster_class
        kwargs = cluster_kwargs
    if client_kwargs.get("security") is not None:
        kwargs.setdefault("security", client_kwargs["security"])
    before = start_path()
    cluster = cls(**kwargs)
    spawned = spawned_by(cluster, before)  # its workers, as they started: known without asking
    if adapt_kwargs is not None:
        cluster.adapt(**dict(adapt_kwargs))
    client = Client(cluster, timeout=timeout, **client_kwargs)
    started_here(client, spawned)
    return client, cluster


WORKER_SIDE = "taskflow.executors.dask_spec"  # what a task key's function imports


def with_worker_side(preload: Any) -> list[str]:
    """The embedded cluster's worker preloads: the ones given (else Dask's
    ``distributed.worker.preload``), then taskflow's worker side.

    >>> with_worker_side(["mymodule"])
    ['mymodule', 'taskflow.executors.dask_spec']
    >>> with_worker_side("taskflow.executors.dask_spec")
    ['taskflow.executors.dask_spec']
    >>> with_worker_side(5)
    Traceback (most recent call last):
    ...
    taskflow.exceptions.TaskflowError: the embedded LocalCluster's worker preload is 5: ...
    """
    if preload is None:
        preload = dask.config.get("distributed.worker.preload", default=[]) or []
    given = [preload] if isinstance(preload, str) else preload
    if not isinstance(given, (list, tuple)) or not all(isinstance(p, str) for p in given):
        raise TaskflowError(
            f"the embedded LocalCluster's worker preload is {preload!r}: give a module name, "
            "a file path or a list of them (taskflow.executor.local-cluster's 'preload', or "
            "distributed.worker.preload)"
        )
    given = list(given)
    return given if WORKER_SIDE in given else [*given, WORKER_SIDE]


def _client_at(address: str, timeout: float, client_kwargs: Mapping[str, Any]) -> Client:
    try:
        _check_tls_setup(address, client_kwargs.get("security"))
        return Client(address, timeout=timeout, **client_kwargs)
    except SchedulerUnreachableError:
        raise
    except CommClosedError as e:  # a scheduler answered, then closed the connection
        raise _closed_error(address, e) from None
    except (OSError, TimeoutError) as e:
        raise SchedulerUnreachableError(
            f"no Dask scheduler answered at {address!r} within {timeout:g} s ({e}). "
            "Check the address and that `dask scheduler` runs there, or leave the "
            "address unset to use an embedded LocalCluster.",
            address=address,
        ) from None


def import_path(path: str, what: str) -> Any:
    """The object at ``package.module.Name``, or an error naming what to pip install."""
    module, _, name = path.rpartition(".")
    if not module:
        raise TaskflowError(f"{what} {path!r} must be an import path like 'package.module.Class'")
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        package = module.split(".")[0].replace("_", "-")
        if package == "dask-cloudprovider" and module.count("."):  # its clouds are extras
            package = f"dask-cloudprovider[{module.split('.')[1]}]"
        raise TaskflowError(
            f"{what} {path!r} cannot be imported: {e}. Install the package that "
            f"provides it (for example `pip install {package}`).",
            path=path,
        ) from None
    try:
        return getattr(mod, name)
    except AttributeError:
        raise TaskflowError(f"{what} {path!r}: module {module!r} has no {name!r}", path=path) from None


_SECURITY_HINT = (
    "Pass security=distributed.security.Security(tls_ca_file=..., tls_client_cert=..., "
    "tls_client_key=...) to DaskExecutor, or set distributed.comm.tls.ca-file, "
    "distributed.comm.tls.client.cert and distributed.comm.tls.client.key in the Dask config."
)


def _check_tls_setup(address: str, security: Any) -> None:
    """Refuse, naming the address, what Dask would refuse with a raw TypeError or RuntimeError."""
    from distributed.security import Security

    if security is None:
        security = Security()  # what distributed.Client does: Dask's distributed.comm.tls config
    if not isinstance(security, Security):
        return  # security=True (temporary credentials): Dask's own business
    scheme, location = parse_address(address)
    try:
        args = security.get_connection_args("client")
    except OSError as e:  # a certificate or key file that is missing or unreadable
        files = [f"{name}={path!r}" for name in ("tls_ca_file", "tls_client_cert", "tls_client_key")
                 if isinstance(path := getattr(security, name, None), str)
                 and not os.access(path, os.R_OK)]
        raise SchedulerUnreachableError(
            f"cannot connect to the Dask scheduler at {address!r}: the TLS files of this "
            f"client cannot be read ({', '.join(files) or e}). {_SECURITY_HINT}", address=address,
        ) from None
    if scheme == "tls" and args["ssl_context"] is None:
        raise SchedulerUnreachableError(
            f"cannot connect to the Dask scheduler at {address!r}: the address uses TLS but "
            f"this client has no TLS certificate and CA. {_SECURITY_HINT}",
            address=address,
        )
    if scheme == "tcp" and args["require_encryption"]:
        raise SchedulerUnreachableError(
            f"cannot connect to the Dask scheduler at {address!r}: this client requires "
            "encryption (require_encryption) and tcp:// is not encrypted. Use the "
            f"scheduler's TLS address, 'tls://{location}'.",
            address=address,
        )


def _closed_error(address: str, e: BaseException) -> SchedulerUnreachableError:
    """The error for a scheduler that answered, then closed the connection (TLS refusals)."""
    detail = str(e) or repr(e.__cause__)
    if parse_address(address)[0] == "tls":
        hint = (
            "The TLS handshake failed: tls_ca_file must be the CA that signed the "
            "scheduler's certificate, and the client certificate must be signed by a CA "
            f"the scheduler trusts. {_SECURITY_HINT}"
        )
    else:
        hint = (
            "If the scheduler uses TLS, connect to its tls:// address with "
            "security=distributed.security.Security(...)."
        )
    return SchedulerUnreachableError(
        f"the Dask scheduler at {address!r} closed the connection ({detail}). {hint}",
        address=address,
    )


def close_client(client: Client) -> None:
    """Close ``client`` without Dask's reconnect tracebacks, in any order of closing.

    A client whose scheduler went away (its cluster was closed first, the
    scheduler died) keeps trying to reconnect; closing it cancels that attempt,
    which Dask logs at ERROR with the traceback of every failed connection and a
    ``CancelledError``.  Nothing is wrong then: the user asked to close.  While
    this closes the client, those records (a ``CancelledError`` or a failed
    reconnection logged by ``distributed.client``) are dropped; anything else
    is still logged.

    Examples
    --------
    >>> close_client(client)  # doctest: +SKIP
    """
    with _reconnect_noise_dropped():
        try:
            client.close()
        except Exception as e:  # closing what is already gone
            logging.getLogger("taskflow.executors").debug("closing %r: %r", client, e)


class _ReconnectNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, (asyncio.CancelledError, CommClosedError, OSError)):
            return False
        return "reconnect" not in record.getMessage()


_noise = _ReconnectNoise()
_noise_lock = threading.Lock()
_noise_users = 0


@contextlib.contextmanager
def _reconnect_noise_dropped() -> Iterator[None]:
    global _noise_users
    log = logging.getLogger("distributed.client")
    with _noise_lock:
        _noise_users += 1
        if _noise_users == 1:
            log.addFilter(_noise)
    try:
        yield
    finally:
        with _noise_lock:
            _noise_users -= 1
            if _noise_users == 0:
                log.removeFilter(_noise)
