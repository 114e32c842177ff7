"""Dask collections inside tasks, on a cluster of one worker with one thread."""
import os
import subprocess
import sys

import pytest
from distributed import Client, LocalCluster

from taskflow.executors import DaskExecutor
from tests import map_flows as mf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def one_thread():
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        yield DaskExecutor(client=client)


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_task_computes_a_dask_array_on_its_own_cluster_without_deadlock(one_thread):
    run = mf.dask_inside.run(n=1000, executor=one_thread)
    assert run.result() == 1000.0


@pytest.mark.timeout(60)
def test_a_returned_lazy_collection_reaches_downstream_which_computes_it(one_thread):
    assert mf.dask_passed.run(n=100, executor=one_thread).result() == sum(range(100))


@pytest.mark.slow
def test_get_dask_client_without_any_cluster_fails_the_task_with_what_to_do():
    # in a fresh process, so that no default Client of the test session is around
    code = (
        "from taskflow.executors import LocalExecutor\n"
        "from tests import map_flows as mf\n"
        "run = mf.dask_inside.run(n=10, executor=LocalExecutor())\n"
        "print(run.task_states['array_sum'].type.value, run.task_states['array_sum'].message)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=ROOT, check=True).stdout
    assert out.startswith("FAILED") and "no Dask cluster" in out
