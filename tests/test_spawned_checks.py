"""Workers of the LocalCluster taskflow starts are checked by what is known of their start.

Their versions and the modules their ``sys.path`` finds where this process found
them need no round trip (``taskflow/executors/dask_spawned.py``); everything else
is still asked of the workers: modules found under ``sys.path`` entries added
after the start, and workers that joined later.
"""
from __future__ import annotations

import importlib
import sys
import time
import warnings

import pytest
from distributed import Client

from taskflow import LocalStoreWarning, TaskflowError, flow
from taskflow.exceptions import WorkerMismatchError
from taskflow.executors import DaskExecutor, dask_checks, probes
from taskflow.executors.dask_spawned import Spawned
from tests import fault_flows as ff
from tests import flows

CLUSTER = dict(n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0")


@pytest.fixture
def worker_runs(monkeypatch):
    """The names of the functions run on workers with ``Client.run``."""
    return _spy(monkeypatch, lambda function, args, kwargs: function.__name__)


@pytest.fixture
def worker_checks(monkeypatch):
    """The worker checks asked with ``Client.run``: ``[(modules, workers)]``."""
    return _spy(monkeypatch, lambda function, args, kwargs: (
        (list(args[1]), kwargs.get("workers")) if function is probes.check_worker else None))


def _spy(monkeypatch, what):
    seen: list = []
    run = Client.run

    def spying_run(self, function, *args, **kwargs):
        item = what(function, args, kwargs)
        if item is not None:
            seen.append(item)
        return run(self, function, *args, **kwargs)

    monkeypatch.setattr(Client, "run", spying_run)
    return seen


def _write_module(folder, name: str, body: str = "") -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.py").write_text(
        f"from taskflow import task\n{body}\n@task\ndef {name}_task(x):\n    return x + 1\n")


def test_a_module_found_elsewhere_by_its_name_on_the_start_path_is_not_taken_as_importable(
    tmp_path, monkeypatch
):
    start, other = tmp_path / "start", tmp_path / "other"
    _write_module(start, "shadowed")
    _write_module(other, "shadowed")
    monkeypatch.syspath_prepend(str(other))
    monkeypatch.delitem(sys.modules, "shadowed", raising=False)
    importlib.import_module("shadowed")  # this process loaded other/shadowed.py

    on_start_path = Spawned([str(start)], [str(start)], ids=frozenset(), scheduler=None)
    on_other_path = Spawned([str(other)], [str(other)], ids=frozenset(), scheduler=None)
    assert not on_start_path.importable("shadowed")
    assert on_other_path.importable("shadowed")
    assert not on_other_path.importable("no_such_module_anywhere")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_workers_of_the_embedded_cluster_are_not_asked_what_their_start_makes_certain(
    worker_runs, store_url, counts
):
    ex = DaskExecutor(cluster_kwargs=CLUSTER)
    try:
        assert flows.chain.run(executor=ex, x=1).result() == 4  # tests.flows: on the start path
        assert flows.etl.run(executor=ex, n=4).result() == 6
        with warnings.catch_warnings():
            warnings.simplefilter("error", LocalStoreWarning)  # its workers are on this host
            run = ff.trusted_target.run(n=4, counts=counts, executor=ex)  # a file:// store
        assert run.state.is_successful(), run.state
        assert worker_runs == []  # no version, import or host name asked
    finally:
        ex.close()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_module_the_embedded_workers_cannot_import_is_still_a_clear_error(
    tmp_path, monkeypatch, worker_checks
):
    ex = DaskExecutor(cluster_kwargs=CLUSTER)
    try:
        ex.client  # noqa: B018 - the cluster starts: its workers get today's sys.path
        _write_module(tmp_path, "added_after_start")
        monkeypatch.syspath_prepend(str(tmp_path))  # this process sees it, the workers do not
        added_after_start = importlib.import_module("added_after_start")

        @flow
        def uses_it():
            return added_after_start.added_after_start_task(1)

        with pytest.raises(TaskflowError, match=r"cannot import module 'added_after_start'"
                                                r".*added_after_start_task"):
            uses_it.run(executor=ex)
        assert [modules for modules, _ in worker_checks] == [["added_after_start"]]
        # nothing was sent: both workers are still there and run what they can import
        assert len(ex.client.nthreads()) == 2
        assert flows.chain.run(executor=ex, x=1).result() == 4
    finally:
        ex.close()


def _third_worker(ex: DaskExecutor) -> str:
    """Scale the embedded cluster to 3 workers; the address of the one that joined."""
    first = set(ex.client.nthreads())
    ex._cluster.scale(3)
    deadline = time.monotonic() + 60
    while len(ex.client.nthreads()) < 3:
        assert time.monotonic() < deadline, "the third worker did not start"
        time.sleep(0.05)
    (new,) = set(ex.client.nthreads()) - first
    return new


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_worker_that_joins_the_embedded_cluster_later_is_asked(worker_checks):
    ex = DaskExecutor(cluster_kwargs=CLUSTER)
    try:
        assert flows.chain.run(executor=ex, x=1).result() == 4
        new = _third_worker(ex)

        assert flows.chain.run(executor=ex, x=1).result() == 4
        assert worker_checks == [(["tests.flows"], [new])]
        assert flows.chain.run(executor=ex, x=1).result() == 4
        assert len(worker_checks) == 1  # checked once
    finally:
        ex.close()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_workers_forked_from_a_forkserver_are_asked(worker_checks):
    import dask

    # a forkserver's children have the sys.path of when the server started, not of their start
    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        ex = DaskExecutor(cluster_kwargs={**CLUSTER, "n_workers": 1})
        try:
            assert flows.chain.run(executor=ex, x=1).result() == 4
            assert worker_checks == [(["tests.flows"], None)]  # everyone, as for any cluster
        finally:
            ex.close()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_this_process_versions_are_read_only_when_a_worker_reports_its_own(monkeypatch):
    read: list[bool] = []
    real = dask_checks._my_versions

    def mine():  # this process, as if its dask differed from every worker's
        read.append(True)
        return {**real(), "dask": "0.0.1"}

    monkeypatch.setattr(dask_checks, "_my_versions", mine)
    ex = DaskExecutor(cluster_kwargs=CLUSTER)
    try:
        assert flows.chain.run(executor=ex, x=1).result() == 4
        assert read == []  # the embedded workers' versions are this process's: nothing read
        new = _third_worker(ex)
        with pytest.raises(WorkerMismatchError, match=rf"worker {new}: dask \S+ on the worker, "
                                                      r"0\.0\.1 here"):
            flows.chain.run(executor=ex, x=1)  # the worker that joined later is judged
        assert read
    finally:
        ex.close()
