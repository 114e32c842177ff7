"""The test helpers' own cluster and leak checks (tests/clusters.py) catch what they promise."""
from __future__ import annotations

import contextlib
import threading

import pytest

from taskflow.executors import DaskExecutor
from tests import flows
from tests.clusters import no_leaks, start_cluster


def test_a_thread_left_running_fails_the_test_naming_it():
    stop = threading.Event()
    try:
        with pytest.raises(pytest.fail.Exception, match="thread 'left-behind'"):
            with no_leaks(timeout=0.2):
                threading.Thread(target=stop.wait, name="left-behind", daemon=True).start()
    finally:
        stop.set()


@pytest.mark.timeout(60)
def test_a_client_left_open_fails_the_test_and_a_closed_cluster_leaves_nothing():
    with no_leaks(), contextlib.ExitStack() as stack:
        client = start_cluster(stack)(n_workers=1, processes=False)
        assert flows.chain.run(executor=DaskExecutor(client=client)).state.is_successful()
    with pytest.raises(pytest.fail.Exception, match="open client"):
        with no_leaks(timeout=0.2), contextlib.ExitStack() as stack:
            client = start_cluster(stack)(n_workers=1, processes=False)
            stack.pop_all()  # forget to close it
    client.close()
    client.cluster.close()


def test_the_own_cluster_fixture_gives_a_client_of_a_fresh_cluster(own_cluster):
    client = own_cluster(n_workers=1, threads=2)
    assert list(client.nthreads().values()) == [2]
    assert flows.chain.run(executor=DaskExecutor(client=client)).state.is_successful()
