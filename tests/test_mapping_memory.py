"""Mapping keeps data on the workers and memory bounded (real processes cluster)."""
import threading
import time

import psutil
import pytest
from distributed import Client, LocalCluster

from taskflow.executors import DaskExecutor
from tests import map_flows as mf


class _Peak:
    """Samples a number in a thread until stopped; keeps the peak."""

    def __init__(self, read, every: float = 0.02) -> None:
        self.read, self.every, self.peak = read, every, read()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, self.read())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


@pytest.fixture(scope="module")
def roomy():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", memory_limit="6GiB") as cluster:
        with Client(cluster) as client:
            yield client


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_mapping_over_a_run_time_list_of_arrays_moves_nothing_through_the_client(roomy):
    me = psutil.Process()
    ex = DaskExecutor(client=roomy)
    mf.arrays_mapped.run(count=2, mb=1, executor=ex)  # warm up imports on workers
    workers = set(roomy.scheduler_info()["workers"])
    t0, rss0 = time.time(), me.memory_info().rss
    with _Peak(lambda: me.memory_info().rss) as peak:
        run = mf.arrays_mapped.run(count=20, mb=25, executor=ex)
    assert run.result() == sum(range(20))
    # what the workers sent to anyone but another worker (socket reads are not in
    # the process's read counters, so ask the senders)
    received = sum(
        t["total"]
        for log in roomy.run(lambda dask_worker: list(dask_worker.transfer_outgoing_log)).values()
        for t in log
        if t["start"] >= t0 - 1 and t["who"] not in workers
    )
    assert received < 1 * 2**20, f"workers sent {received} bytes to the client"
    assert peak.peak - rss0 < 50 * 2**20, f"client grew {(peak.peak - rss0) / 2**20:.0f} MB"


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_chain_of_two_maps_runs_depth_first_with_bounded_cluster_memory(roomy):
    def managed() -> int:
        return roomy.run_on_scheduler(
            lambda dask_scheduler: sum(ws.nbytes for ws in dask_scheduler.workers.values())
        )

    ex = DaskExecutor(client=roomy)
    with _Peak(managed, every=0.05) as peak:
        run = mf.arrays_chain.run(count=40, mb=50, executor=ex)
    assert run.result() == sum(range(40))
    all_at_once = 40 * 50 * 2**20
    # depth-first: each 50 MB array is reduced soon after it is made, so only a few
    # are alive at once; breadth-first would hold all 40 (2,000 MB)
    print(f"peak managed memory {peak.peak / 2**20:.0f} MB of {all_at_once / 2**20:.0f} MB")
    assert peak.peak < 0.25 * all_at_once
