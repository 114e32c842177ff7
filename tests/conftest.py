"""Shared fixtures: real Dask clusters, and one `executor` fixture run three ways.

The same behaviour tests run on LocalExecutor, on a LocalCluster of threads and
on a LocalCluster of worker processes.  Clusters are session-scoped (a process
cluster takes a second or two to start); tests that kill workers or need a clean
cluster start their own with ``own_cluster`` (tests/clusters.py: closed after the
test, leaks checked).
"""
from __future__ import annotations

import contextlib
import os
import sys

import dask
import pytest
from distributed import Client, LocalCluster

from taskflow.executors import DaskExecutor, LocalExecutor
from tests.clusters import CLUSTER_KW, no_leaks, start_cluster

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
# Worker processes started by tests (dask worker subprocesses) import tests.flows.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in [ROOT, os.environ.get("PYTHONPATH", "")] if p
)

@pytest.fixture(scope="session", autouse=True)
def _history_in_a_temp_dir(tmp_path_factory):
    """Runs made by the suite go to a throw-away history, not the user's."""
    url = f"sqlite:///{tmp_path_factory.mktemp('history') / 'history.db'}"
    os.environ["DASK_TASKFLOW__HISTORY__URL"] = url  # for subprocesses the tests start
    with dask.config.set({"taskflow.history.url": url}):
        yield url


@pytest.fixture
def own_cluster():
    """Start clusters of the test's own: ``own_cluster(n_workers=1, threads=1,
    processes=True, **LocalCluster_kwargs)`` gives a Client.  They close when the test
    ends; then the test fails if it left threads, processes or clients behind."""
    with no_leaks(), contextlib.ExitStack() as stack:
        yield start_cluster(stack)


@pytest.fixture(scope="session")
def process_client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, **CLUSTER_KW) as cluster:
        with Client(cluster) as client:
            yield client


@pytest.fixture(scope="session")
def thread_client():
    kw = {**CLUSTER_KW, "host": None}  # in-process comms take no host
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, **kw) as cluster:
        with Client(cluster) as client:
            yield client


@pytest.fixture(params=["local", "threads", "processes"])
def executor(request):
    """The same test on LocalExecutor, a threads LocalCluster and a processes one."""
    if request.param == "local":
        return LocalExecutor()
    client = request.getfixturevalue(f"{'thread' if request.param == 'threads' else 'process'}_client")
    return DaskExecutor(client=client)


@pytest.fixture(params=["local", "processes"])
def executor2(request):
    """LocalExecutor and a processes LocalCluster (for the slower scenarios)."""
    if request.param == "local":
        return LocalExecutor()
    return DaskExecutor(client=request.getfixturevalue("process_client"))


@pytest.fixture
def process_executor(process_client):
    return DaskExecutor(client=process_client)


@pytest.fixture(autouse=True)
def _quiet_settle():
    # keep failing-path tests fast if an event were ever missing
    with dask.config.set({"taskflow.events.settle-timeout": "5s"}):
        yield


# -- results ------------------------------------------------------------------------------
@pytest.fixture
def counts(tmp_path):
    """A folder where result-test tasks count their executions (one file per task)."""
    path = tmp_path / "counts"
    path.mkdir()
    return str(path)


@pytest.fixture
def store_url(tmp_path):
    """A local store, the default of every flow in the test (taskflow.results.store)."""
    url = f"file://{tmp_path}/store"
    with dask.config.set({"taskflow.results.store": url}):
        yield url
