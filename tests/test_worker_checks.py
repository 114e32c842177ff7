"""Workers are checked before tasks are sent: versions, and cluster specs from config.

The version tests use real ``dask worker`` processes whose environment really
differs from the client's: a folder first on their ``PYTHONPATH`` holds another
installed version of a package (its distribution metadata says 9.9.9), which is
what a worker built from an older or newer image reports.
"""
from __future__ import annotations

import shutil
from importlib import metadata

import cloudpickle
import dask
import pytest
from distributed import Client

from taskflow import TaskflowError, WorkerMismatchError
from taskflow.executors import DaskExecutor
from tests import flows
from tests.dask_processes import START_TIMEOUT, DaskProcesses


def _other_version(root, dist: str, version: str, package: str | None = None) -> str:
    """A folder where ``dist`` is installed at ``version`` (copying the package's code)."""
    folder = root / f"{dist}-{version}"
    folder.mkdir()
    meta = folder / f"{dist.replace('-', '_')}-{version}.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    if package is not None:
        module = __import__(package)
        shutil.copytree(module.__path__[0], folder / package)
    return str(folder)


@pytest.fixture(scope="module")
def mixed_cluster(tmp_path_factory):
    """A scheduler, one worker like this process, and two with other versions."""
    root = tmp_path_factory.mktemp("mixed")
    cluster = DaskProcesses(root)
    try:
        address = cluster.scheduler("--port", "0")
        cluster.worker(address, "--nthreads", "1", "--name", "same")
        cluster.worker(address, "--nthreads", "1", "--name", "old-taskflow",
                       pythonpath=[_other_version(root, "dask-taskflow", "9.9.9")])
        cluster.worker(address, "--nthreads", "1", "--name", "other-cloudpickle",
                       pythonpath=[_other_version(root, "cloudpickle", "9.9.9", "cloudpickle")])
        with Client(address, timeout=START_TIMEOUT) as client:
            cluster.wait_for_workers(client, 3)
            names = {w["name"]: a for a, w in client.scheduler_info()["workers"].items()}
        yield address, names
    finally:
        cluster.stop()


def _tasks_seen(dask_scheduler) -> int:
    return len(dask_scheduler.task_prefixes)


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.filterwarnings("ignore::distributed.versions.VersionMismatchWarning")
def test_workers_with_other_versions_are_refused_before_any_task_runs(mixed_cluster):
    address, workers = mixed_cluster
    ex = DaskExecutor(address=address)
    try:
        with pytest.raises(WorkerMismatchError) as info:
            flows.chain.run(executor=ex, x=1)
        msg = str(info.value)
        here = metadata.version("dask-taskflow")
        assert "2 Dask worker(s)" in msg
        assert f"worker {workers['old-taskflow']}: taskflow (dask-taskflow) 9.9.9 on the " \
               f"worker, {here} here" in msg
        assert f"worker {workers['other-cloudpickle']}: cloudpickle 9.9.9 on the worker, " \
               f"{cloudpickle.__version__} here" in msg
        assert workers["same"] not in msg
        assert "same versions" in msg and "check-versions" in msg
        assert info.value.context["workers"] == sorted([workers["old-taskflow"],
                                                        workers["other-cloudpickle"]])
        assert ex.client.run_on_scheduler(_tasks_seen) == 0  # nothing was sent

        # the operator's escape hatch: the code really is the same here, so it runs
        with dask.config.set({"taskflow.executor.check-versions": False}):
            run = flows.chain.run(executor=ex, x=1)
        assert run.state.is_successful(), run.state
    finally:
        ex.close()


def _spec_cluster_config() -> dict:
    return {
        "taskflow.executor.cluster-class": "distributed.SpecCluster",
        "taskflow.executor.cluster-kwargs": {
            "scheduler": {"cls": "distributed.Scheduler",
                          "options": {"host": "127.0.0.1", "dashboard_address": ":0"}},
            "worker": {"cls": "distributed.Nanny",
                       "options": {"nthreads": 1, "host": "127.0.0.1", "dashboard": False}},
        },
        "taskflow.executor.adapt": {"minimum": 0, "maximum": 2},
    }


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_cluster_class_from_dask_config_starts_with_no_worker_and_adapts():
    from taskflow.executors import default_executor

    with dask.config.set(_spec_cluster_config()):
        ex = default_executor()
        assert default_executor() is ex  # one per process and settings
        try:
            client = ex.client
            cluster = ex._cluster
            assert type(cluster).__name__ == "SpecCluster"
            assert len(client.scheduler_info()["workers"]) == 0
            run = flows.etl.run(n=20)  # no executor given: the default one, from config
            assert run.state.is_successful(), run.state
            assert run.result() == 190
            assert 1 <= len(cluster.workers) <= 2  # adaptive scaling started them
        finally:
            ex.close()
    assert default_executor() is not ex  # other settings, another executor


def test_address_and_cluster_class_both_in_config_is_a_clear_error():
    with dask.config.set({"taskflow.executor.address": "tcp://127.0.0.1:1",
                          "taskflow.executor.cluster-class": "distributed.LocalCluster"}):
        with pytest.raises(TaskflowError, match="both taskflow.executor.address and "
                                                "taskflow.executor.cluster-class"):
            DaskExecutor().client  # noqa: B018


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.filterwarnings("ignore::distributed.versions.VersionMismatchWarning")
def test_workers_that_join_later_are_checked_at_the_next_run(tmp_path, monkeypatch):
    from taskflow import flow

    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "late_only.py").write_text(
        "from taskflow import task\n\n@task\ndef late_task(x):\n    return x + 1\n")
    monkeypatch.syspath_prepend(str(folder))
    import late_only  # noqa: E402

    @flow
    def uses_it():
        return late_only.late_task(1)

    cluster = DaskProcesses(tmp_path)
    try:
        # the scheduler reads the graph, so it imports the module too
        address = cluster.scheduler("--port", "0", env={"PYTHONPATH": str(folder)})
        cluster.worker(address, "--nthreads", "1", "--name", "first", pythonpath=[str(folder)])
        ex = DaskExecutor(address=address)
        try:
            cluster.wait_for_workers(ex.client, 1)
            assert uses_it.run(executor=ex).result() == 2

            cluster.worker(address, "--nthreads", "1", "--name", "without-module")
            cluster.wait_for_workers(ex.client, 2)
            names = {w["name"]: a for a, w in ex.client.scheduler_info()["workers"].items()}
            with pytest.raises(TaskflowError, match=rf"worker {names['without-module']} cannot "
                                                    r"import module 'late_only'.*late_task"):
                uses_it.run(executor=ex)

            cluster.worker(address, "--nthreads", "1", "--name", "old-taskflow",
                           pythonpath=[str(folder), _other_version(tmp_path, "dask-taskflow", "9.9.9")])
            cluster.wait_for_workers(ex.client, 3)
            names = {w["name"]: a for a, w in ex.client.scheduler_info()["workers"].items()}
            with pytest.raises(WorkerMismatchError) as info:
                uses_it.run(executor=ex)
            assert info.value.context["workers"] == [names["old-taskflow"]]
            assert ex.client.run_on_scheduler(_tasks_seen) == 1  # only the first run's task
        finally:
            ex.close()
    finally:
        cluster.stop()


@pytest.mark.timeout(120)
def test_workers_import_taskflow_s_worker_side_while_a_starting_run_is_planned(own_cluster):
    from tests.polling import wait_for

    client = own_cluster(n_workers=2)
    loaded = "'taskflow.executors.dask_spec' in __import__('sys').modules"
    assert list(client.run(eval, loaded).values()) == [False, False]  # fresh workers
    ex = DaskExecutor(client=client)
    ex.prepare()  # as every run does before its flow is traced: nothing is waited for
    wait_for(lambda: list(client.run(eval, loaded).values()) == [True, True], START_TIMEOUT,
             "the workers to import taskflow's worker side")
    ex.prepare()  # once per client: asked again, nothing is sent
    run = flows.one_task.run(executor=ex, x=1)
    assert run.state.is_successful(), run.state


@pytest.mark.timeout(120)
def test_the_embedded_cluster_s_workers_import_the_worker_side_as_they_start_beside_the_user_s_preloads(tmp_path):
    mine = tmp_path / "my_preload.py"
    mine.write_text("def dask_setup(worker):\n    worker.my_preload_ran = True\n")
    loaded = "'taskflow.executors.dask_spec' in __import__('sys').modules"
    settings = {"taskflow.executor.local-cluster": {"n_workers": 1, "threads_per_worker": 1,
                                                    "dashboard_address": "127.0.0.1:0"},
                "distributed.worker.preload": [str(mine)]}
    with dask.config.set(settings):
        ex = DaskExecutor()
        try:
            client = ex.client  # starts the cluster; no task has run on it yet
            assert list(client.run(eval, loaded).values()) == [True]
            ran = client.run(lambda dask_worker: getattr(dask_worker, "my_preload_ran", False))
            assert list(ran.values()) == [True]  # the user's preload still runs
            run = flows.one_task.run(executor=ex, x=1)
            assert run.state.is_successful(), run.state
        finally:
            ex.close()
