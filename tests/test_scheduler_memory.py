"""What the scheduler keeps per task of a wide run: one span annotation per run, not per task."""
from __future__ import annotations

import dask
from distributed import span

from taskflow.executors.dask_spans import PLUGIN, install
from tests import wide_flows as wf

SMALL = {"taskflow.dask.submit-window": 10, "taskflow.dask.first-window": 3}


def test_a_wide_maps_children_share_one_span_annotation_on_the_scheduler(process_executor):
    with dask.config.set(SMALL):
        run = wf.spans_of_children.run(n=200, executor=process_executor)
    assert run.state.is_successful(), run.state
    seen = run.result()
    assert seen["children"] == 200
    # the first window goes before the plugin is asked for (its three children keep
    # their own); every later window's children hold one shared object
    assert seen["distinct"] <= SMALL["taskflow.dask.first-window"] + 1
    # the same value as before: the run's span, and the dashboard groups them under it
    (value,) = seen["values"]
    assert "'span'" in value and "flow spans_of_children" in value
    (group_span,) = seen["group spans"]
    assert "flow spans_of_children" in group_span


def test_every_child_still_gets_its_runs_span_on_its_worker(process_executor):
    with dask.config.set(SMALL):
        run = wf.spans_of_children.run(n=60, executor=process_executor)
    spans = [dict(s) for s in run.result()["spans"]]
    assert len(spans) == 60
    assert all(s["name"][0] == "flow spans_of_children" for s in spans)
    assert len({tuple(s["ids"]) for s in spans}) == 1  # one span, the run's


def _distinct_annotations(dask_scheduler, keys) -> int:
    return len({id(dask_scheduler.tasks[k].annotations) for k in keys})


def test_a_graph_not_of_a_flow_run_keeps_its_own_annotations(process_client):
    assert install(process_client)
    assert PLUGIN in process_client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.plugins))
    with span("not a flow"):
        futures = process_client.map(lambda x: x + 1, range(20), key=[f"mine-{i}" for i in range(20)])
    assert process_client.gather(futures) == list(range(1, 21))
    n = process_client.run_on_scheduler(_distinct_annotations, keys=[f.key for f in futures])
    assert n == 20
    del futures


def test_installing_twice_adds_one_plugin(process_client):
    assert install(process_client) and install(process_client)
    plugins = process_client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.plugins))
    assert plugins.count(PLUGIN) == 1


def _wanted_by(dask_scheduler, key) -> list[str] | None:
    ts = dask_scheduler.tasks.get(key)
    return None if ts is None else sorted(cs.client_key for cs in ts.who_wants or ())


def _inc(x: int) -> int:
    return x + 1


def test_kept_keys_are_wanted_by_the_clients_keeper_and_go_when_the_client_goes(process_client):
    from distributed import Client, wait

    from taskflow.executors.dask_keepers import PREFIX
    from taskflow.executors.dask_wants import Wants
    from tests.polling import wait_for

    with Client(process_client.scheduler.address) as driver:
        future = driver.submit(_inc, 1, key="kept-by-keeper")
        wait(future)
        wants = Wants(driver)
        wants.want(["kept-by-keeper"])  # as a run keeps what later windows need
        keeper = PREFIX + driver.id
        wait_for(lambda: keeper in (process_client.run_on_scheduler(
            _wanted_by, key="kept-by-keeper") or []), 30, "the keeper to want the key")
        future.release()  # no future: the keeper alone keeps it, the client is told nothing
        wait_for(lambda: process_client.run_on_scheduler(
            _wanted_by, key="kept-by-keeper") == [keeper], 30, "the keeper alone to want it")
    # the client went (as a killed driver would): its keeper goes with it, and the key
    wait_for(lambda: process_client.run_on_scheduler(_wanted_by, key="kept-by-keeper") is None,
             30, "the key to go with the client's keeper")


def test_released_kept_keys_are_forgotten(process_client):
    from distributed import wait

    from taskflow.executors.dask_wants import Wants
    from tests.polling import wait_for

    future = process_client.submit(_inc, 2, key="kept-then-released")
    wait(future)
    wants = Wants(process_client)
    wants.want(["kept-then-released"])
    future.release()
    wants.release()
    wait_for(lambda: process_client.run_on_scheduler(
        _wanted_by, key="kept-then-released") is None, 30, "the released key to be forgotten")


def test_plugins_go_straight_to_a_scheduler_in_this_process_and_by_message_to_any_other(process_client):
    from distributed import Client

    from taskflow.executors.dask_plugins import local_scheduler, on_scheduler

    here = local_scheduler(process_client)  # the session's LocalCluster runs its scheduler here
    assert here is not None and here.address == process_client.scheduler.address
    assert on_scheduler(process_client, lambda dask_scheduler: dask_scheduler is here) is True
    with Client(process_client.scheduler.address) as by_address:  # no cluster object: a message
        assert local_scheduler(by_address) is None
        assert on_scheduler(by_address, lambda dask_scheduler: len(dask_scheduler.tasks) >= 0)
        assert install(by_address)
    assert install(process_client)
    assert list(here.plugins).count(PLUGIN) == 1


def test_many_released_keys_reach_the_scheduler_in_steps_of_a_bounded_size(own_cluster, monkeypatch):
    """A wide map's children are released at once when its fan-in's parts are sent: in
    one step of the scheduler's loop (a million keys) that held it for over 30 s."""
    from distributed import wait

    from taskflow.executors import dask_wants
    from taskflow.executors.dask_plugins import local_scheduler
    from taskflow.executors.dask_wants import Wants
    from tests.polling import wait_for

    monkeypatch.setattr(dask_wants, "_PER_MESSAGE", 100)
    client = own_cluster(n_workers=1)
    scheduler = local_scheduler(client)
    steps: list[tuple[int, int]] = []  # (loop turn, keys) per release message of the keeper
    handle = scheduler.stream_handlers["client-releases-keys"]
    ticks = [0]

    def tick() -> None:  # counts the loop's turns: messages in one read share a count
        ticks[0] += 1
        scheduler.loop.call_later(0.001, tick)

    def recording(keys, client, stimulus_id=None):
        if client.startswith("taskflow-keeper"):  # the futures' own releases aside
            steps.append((ticks[0], len(keys)))
        return handle(keys=keys, client=client, stimulus_id=stimulus_id)

    scheduler.stream_handlers["client-releases-keys"] = recording
    scheduler.loop.add_callback(tick)
    futures = client.map(_inc, range(450), key=[("paced", i) for i in range(450)])
    wait(futures)
    wants = Wants(client)
    wants.want([f.key for f in futures])
    del futures
    wants.release()
    wait_for(lambda: sum(n for _, n in steps) == 450, 30, "every key to be released")
    assert [n for _, n in steps] == [100, 100, 100, 100, 50]
    assert len({t for t, _ in steps}) == 5  # each message a turn of the loop of its own
    wait_for(lambda: not any(k in scheduler.tasks for k in [("paced", i) for i in range(450)]),
             30, "the released keys to be forgotten")
