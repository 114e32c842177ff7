"""Flows on a Dask cluster secured with TLS: real ``dask scheduler`` / ``dask worker`` processes.

The cluster is what an operator starts by hand with ``--protocol tls`` and
``--tls-ca-file/--tls-cert/--tls-key``: a scheduler on 127.0.0.1 and one worker
(with its nanny), both presenting a certificate signed by a CA made here
(:mod:`tests.tls_certs`).  Dask's TLS is mutual: the scheduler also checks the
client's certificate against that CA.

taskflow connects by ``tls://`` address, with its ``security=`` or with Dask's
own ``distributed.comm.tls`` configuration.  A client without a certificate, with
one from another CA, or speaking plain TCP is refused at once, with a taskflow
error naming the address rather than a hang or a raw Dask/``ssl`` error.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dask
import pytest
from distributed import Client
from distributed.security import Security

from taskflow.exceptions import SchedulerUnreachableError
from taskflow.executors import DaskExecutor
from taskflow.states import StateType
from tests import flows
from tests.dask_processes import START_TIMEOUT, DaskProcesses
from tests.tls_certs import make_ca, make_cert

CONNECT_TIMEOUT = 3.0  # seconds; a refusal must come before it, not by it

# Dask's TLS settings of a client; None everywhere is "this process has no TLS set up".
NO_TLS_CONFIG: dict[str, Any] = {
    "distributed.comm.tls.ca-file": None,
    "distributed.comm.tls.client.cert": None,
    "distributed.comm.tls.client.key": None,
    "distributed.comm.require-encryption": None,
}


@dataclass(frozen=True)
class Certs:
    """PEM files: the cluster's CA, the certificate it signed, and an outsider's."""

    ca_file: str
    cert: str
    key: str
    other_ca_file: str
    other_cert: str
    other_key: str

    def security(self) -> Security:
        """What a legitimate client passes: the cluster's CA and a certificate it signed."""
        return Security(tls_ca_file=self.ca_file, tls_client_cert=self.cert,
                        tls_client_key=self.key, require_encryption=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    directory = tmp_path_factory.mktemp("tls-certs")
    ca = make_ca(directory, "cluster-ca")
    cert, key = make_cert(directory, "cluster-node", ca)  # scheduler, worker and client
    other = make_ca(directory, "other-ca")  # self-signed, unknown to the cluster
    other_cert, other_key = make_cert(directory, "intruder", other)
    return Certs(ca.cert_file, cert, key, other.cert_file, other_cert, other_key)


@pytest.fixture(scope="module")
def tls_cluster(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The ``tls://`` address of a scheduler with one worker, both started with TLS options."""
    cluster = DaskProcesses(tmp_path_factory.mktemp("tls-cluster"))
    tls = ("--tls-ca-file", certs.ca_file, "--tls-cert", certs.cert, "--tls-key", certs.key)
    try:
        address = cluster.scheduler("--port", "0", "--protocol", "tls", *tls)
        cluster.worker(address, "--nthreads", "2", *tls)
        with Client(address, security=certs.security(), timeout=START_TIMEOUT) as client:
            cluster.wait_for_workers(client, 1)
        yield address
    finally:
        cluster.stop()


def _peer_common_name(client: Client) -> str:
    """The common name in the certificate the scheduler presented on this client's connection."""
    peercert = client.scheduler_comm.comm.extra_info["peercert"]
    return dict(pair[0] for pair in peercert["subject"])["commonName"]


def _assert_runs_on_tls(run: Any, ex: DaskExecutor, address: str, caplog: Any) -> None:
    assert run.state.is_successful(), run.state
    assert run.result() == 45
    assert {name: s.type for name, s in run.task_states.items()} == {
        "extract": StateType.SUCCESS,
        "total": StateType.SUCCESS,
    }
    assert ex.address == address and ex.address.startswith("tls://")
    assert _peer_common_name(ex.client) == "cluster-node"  # the CA-signed scheduler answered
    # the task ran in the TLS worker, and its log record came back over TLS
    workers = [
        r.worker for r in caplog.records
        if r.name == "taskflow.task_runs" and getattr(r, "task_run_name", "") == "total"
    ]
    assert workers and all(w.startswith("tls://127.0.0.1:") for w in workers), workers


def _refusal(address: str, **executor_kwargs: Any) -> tuple[SchedulerUnreachableError, float]:
    """Run a flow on ``address`` with no TLS config besides ``executor_kwargs``: its error, time."""
    with dask.config.set({**NO_TLS_CONFIG, "taskflow.executor.connect-timeout": f"{CONNECT_TIMEOUT}s"}):
        ex = DaskExecutor(address=address, **executor_kwargs)
        start = time.monotonic()
        try:
            with pytest.raises(SchedulerUnreachableError) as info:
                flows.etl.run(executor=ex, n=10)
        finally:
            ex.close()
    return info.value, time.monotonic() - start


def _assert_names(error: SchedulerUnreachableError, address: str, *words: str) -> None:
    """The error names ``address`` and says ``words``; it does not blame an absent scheduler."""
    message = str(error)
    assert error.address == address
    assert repr(address) in message, message
    # the scheduler is there and answered at once: "no scheduler answered" would mislead
    assert "no Dask scheduler answered" not in message, message
    for word in words:
        assert re.search(word, message, re.IGNORECASE), f"{word!r} not in: {message}"


# -- a legitimate client ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(60)
@pytest.mark.parametrize("given", ["security", "dask config"])
def test_a_flow_runs_on_a_tls_cluster_with_certificates_from_security_or_dask_config(
    tls_cluster, certs, caplog, given
):
    caplog.set_level(logging.INFO, logger="taskflow.task_runs")
    if given == "security":  # the executor's `security` alone is enough
        settings, kwargs = NO_TLS_CONFIG, {"security": certs.security()}
    else:  # no security=: Dask's config applies
        settings, kwargs = {
            "distributed.comm.tls.ca-file": certs.ca_file,
            "distributed.comm.tls.client.cert": certs.cert,
            "distributed.comm.tls.client.key": certs.key,
            "distributed.comm.require-encryption": True,
        }, {}
    with dask.config.set(settings):
        ex = DaskExecutor(address=tls_cluster, **kwargs)
        try:
            run = flows.etl.run(executor=ex, n=10)
            _assert_runs_on_tls(run, ex, tls_cluster, caplog)
        finally:
            ex.close()


# -- clients the cluster refuses ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(30)
def test_a_client_without_a_certificate_gets_an_error_naming_the_address_at_once(tls_cluster):
    error, elapsed = _refusal(tls_cluster)

    assert elapsed < CONNECT_TIMEOUT, f"took {elapsed:.1f} s: a refusal, not a timeout"
    _assert_names(error, tls_cluster, "TLS", "certificate")


@pytest.mark.slow
@pytest.mark.timeout(30)
@pytest.mark.parametrize("trusts", ["the cluster CA", "only its own CA"])
def test_a_client_with_a_certificate_from_another_ca_is_refused_at_once(
    tls_cluster, certs, trusts
):
    # "the cluster CA": the scheduler rejects the client's certificate;
    # "only its own CA": the client cannot verify the scheduler's either.
    ca_file = certs.ca_file if trusts == "the cluster CA" else certs.other_ca_file
    security = Security(tls_ca_file=ca_file, tls_client_cert=certs.other_cert,
                        tls_client_key=certs.other_key, require_encryption=True)

    error, elapsed = _refusal(tls_cluster, security=security)

    assert elapsed < CONNECT_TIMEOUT, f"took {elapsed:.1f} s: a refusal, not a timeout"
    _assert_names(error, tls_cluster, "TLS", "certificate")


@pytest.mark.slow
@pytest.mark.timeout(30)
@pytest.mark.parametrize("with_certificate", [False, True], ids=["plain", "with-certificate"])
def test_a_tcp_client_cannot_talk_to_the_tls_scheduler(tls_cluster, certs, with_certificate):
    # the tcp:// form of the address: what a user who copied host:port would type
    tcp_address = tls_cluster.replace("tls://", "tcp://", 1)
    kwargs = {"security": certs.security()} if with_certificate else {}

    error, elapsed = _refusal(tcp_address, **kwargs)

    assert elapsed < CONNECT_TIMEOUT, f"took {elapsed:.1f} s: a refusal, not a timeout"
    _assert_names(error, tcp_address, "TLS", re.escape("tls://"))


@pytest.mark.slow
@pytest.mark.timeout(30)
def test_a_certificate_file_that_does_not_exist_is_named_in_the_error(tls_cluster, certs, tmp_path):
    missing = str(tmp_path / "no-such-cert.pem")
    security = Security(tls_ca_file=certs.ca_file, tls_client_cert=missing,
                        tls_client_key=certs.key, require_encryption=True)
    error, elapsed = _refusal(tls_cluster, security=security)

    assert elapsed < CONNECT_TIMEOUT
    _assert_names(error, tls_cluster, "TLS files", "no-such-cert.pem")
