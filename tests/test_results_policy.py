"""Pure decisions of the results layer, and option validation: no store, no cluster."""
from __future__ import annotations

import datetime as dt
import pickle

import pytest

from taskflow import FlowDefinitionError, flow, task
from taskflow.engine.plan import build_plan
from taskflow.engine.setup import asks_storage
from taskflow.executors import LocalExecutor
from taskflow.results import ResultStore, SerializationError, task_input_hash
from taskflow.results.caching import CacheContext
from taskflow.results.policy import (
    PersistSettings,
    cache_hit,
    cache_path,
    checkpoint_path,
    format_target,
    record_path,
    resolve_checkpoint,
    target_fields,
)

NOW = dt.datetime(2026, 11, 1, 4, 5, 6, tzinfo=dt.timezone.utc)


def fields(**params):
    return target_fields(flow_name="nightly", task_name="features", run_id="r1", map_index=None,
                         parameters=params, now=NOW)


def test_checkpoint_is_decided_by_the_task_then_the_flow_then_the_config():
    assert resolve_checkpoint(None, None, False) is False
    assert resolve_checkpoint(None, None, True) is True
    assert resolve_checkpoint(None, True, False) is True
    assert resolve_checkpoint(None, False, True) is False
    assert resolve_checkpoint(True, False, False) is True
    assert resolve_checkpoint(False, True, True) is False


def test_a_target_is_formatted_with_flow_task_run_parameters_and_dates():
    f = fields(day="2026-11-01")
    assert format_target("{flow_name}/{day}/{task_name}.parquet", f) == \
        "nightly/2026-11-01/features.parquet"
    assert format_target("{run_id}/{today}/{now}", f) == "r1/2026-11-01/2026-11-01T04-05-06"
    assert format_target("{today:%Y/%m}/{now:%H}", f) == "2026/11/04"


def test_a_target_uses_map_index_only_for_mapped_runs():
    f = target_fields(flow_name="f", task_name="t", run_id="r", map_index=7, parameters={},
                      now=NOW)
    assert format_target("parts/{map_index:03d}.json", f) == "parts/007.json"
    with pytest.raises(FlowDefinitionError, match="uses {map_index} but the task is not mapped"):
        format_target("parts/{map_index}.json", fields(), task="t")


def test_a_target_with_an_unknown_field_names_it_and_the_valid_ones():
    with pytest.raises(FlowDefinitionError, match=r"uses \{dya\}, which is neither a flow parameter"):
        format_target("{dya}/x", fields(day="d"), task="features")


def test_built_in_target_fields_win_over_parameters_of_the_same_name():
    assert format_target("{flow_name}", fields(flow_name="param")) == "nightly"


def test_a_target_must_stay_inside_the_store():
    with pytest.raises(FlowDefinitionError, match="not a path inside the store"):
        format_target("../{day}", fields(day="x"))


def test_store_paths_for_checkpoints_caches_and_run_records():
    assert checkpoint_path("etl", "r1", "total", ".pkl") == "etl/r1/total.pkl"
    assert checkpoint_path("etl", "r1", "load[12]", ".json") == "etl/r1/load/12.json"
    assert checkpoint_path("etl", "r1", "sub/inc-2", "") == "etl/r1/sub/inc-2"
    assert cache_path("score", "k-1.2", ".pkl") == "_cache/score/k-1.2.pkl"
    hashed = cache_path("score", "../../etc", "")
    assert hashed.startswith("_cache/score/") and ".." not in hashed
    assert record_path("r1", "load[3]") == "_runs/r1/results/load%5B3%5D.json"


def test_a_cache_entry_is_a_hit_only_within_its_window():
    assert cache_hit(1000.0, None, now=10**9)
    assert cache_hit(1000.0, 60.0, now=1059.0)
    assert not cache_hit(1000.0, 60.0, now=1061.0)
    assert not cache_hit(None, 60.0, now=1000.0)
    assert cache_hit(1000.0, 60.0, now=999.0)  # a clock a little behind the writer's


def double(x):
    return 2 * x


def test_task_input_hash_changes_with_inputs_and_with_source_code():
    t1 = task(double)
    ctx = CacheContext(task=t1, task_run_name="double", flow_name="f", run_id="r")
    assert task_input_hash(ctx, {"x": 1}) == task_input_hash(ctx, {"x": 1})
    assert task_input_hash(ctx, {"x": 1}) != task_input_hash(ctx, {"x": 2})

    def other(x):  # other code
        return x + x

    ctx2 = CacheContext(task=task(other), task_run_name="double", flow_name="f", run_id="r")
    assert task_input_hash(ctx, {"x": 1}) != task_input_hash(ctx2, {"x": 1})


def test_task_input_hash_gives_no_key_for_inputs_that_cannot_be_hashed_deterministically():
    class Opaque:
        def __reduce__(self):
            raise TypeError("no")

    ctx = CacheContext(task=task(double), task_run_name="double", flow_name="f", run_id="r")
    assert task_input_hash(ctx, {"x": Opaque()}) is None


# -- option validation ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"checkpoint": "yes"}, "checkpoint must be True, False or None"),
        ({"target": 3}, "target must be a path template string"),
        ({"target": "{}.json"}, "target is not a valid template"),
        ({"serializer": "yaml"}, "unknown serializer 'yaml'"),
        ({"serializer": object()}, "an object with dumps"),
        ({"cache_key_fn": "hash"}, "cache_key_fn must be a callable"),
        ({"cache_for": 5}, "cache_for needs cache_key_fn"),
        ({"cache_key_fn": task_input_hash, "cache_for": -1}, "cache_for must be a timedelta"),
        ({"cache_key_fn": task_input_hash, "target": "x"}, "two ways to skip a run"),
    ],
)
def test_bad_result_options_of_a_task_are_refused_with_a_clear_error(options, message):
    with pytest.raises(FlowDefinitionError, match=message):
        task(**options)(double)


def test_result_options_are_task_options_and_survive_with_options():
    t = task(checkpoint=True, serializer="json", target="{flow_name}/x.json")(double)
    assert t.options["checkpoint"] is True and t.options["target"] == "{flow_name}/x.json"
    t2 = t.with_options(checkpoint=False, cache_for=None)
    assert t2.checkpoint is False and t2.serializer == "json"
    cached = task(cache_key_fn=task_input_hash, cache_for=dt.timedelta(hours=6))(double)
    assert cached.cache_for == dt.timedelta(hours=6)


def test_bad_result_options_of_a_flow_are_refused_with_a_clear_error():
    with pytest.raises(FlowDefinitionError, match="result_store must be a URL string"):
        flow(result_store=3)(lambda: None)
    with pytest.raises(FlowDefinitionError, match="checkpoint must be True, False or None"):
        flow(checkpoint="always")(lambda: None)


@task(checkpoint=True)
def kept(x):
    return x


@task(target="{flow_name}/{x}.json", serializer="json")
def aimed(x):
    return x


@task(target="parts/{map_index}.json")
def each(x):
    return x


@task(target="parts/all.json")
def each_same(x):
    return x


def test_the_plan_refuses_storage_asked_for_without_a_result_store():
    @flow
    def needs_store(x: int = 1):
        return kept(x)

    with pytest.raises(FlowDefinitionError, match="asks for checkpoint=True but flow 'needs_store' "
                                                  "has no result store"):
        asks_storage(needs_store.graph, {"x": 1}, "r1", PersistSettings())

    @flow(result_store="memory://plan-test")
    def same_place(x: int = 1):
        return each_same.map([1, 2])

    with pytest.raises(FlowDefinitionError, match="is mapped, so its target 'parts/all.json' must use"):
        same_place.run(executor=LocalExecutor())

    @flow(result_store="memory://plan-test")
    def typo(x: int = 1):
        return aimed.with_options(target="{flow_name}/{y}.json")(x)

    with pytest.raises(FlowDefinitionError, match=r"uses \{y\}"):
        typo.run(executor=LocalExecutor())


def test_a_flow_that_stores_nothing_needs_no_store():
    @flow
    def bare(x: int = 1):
        return double_task(x)

    assert not asks_storage(bare.graph, {"x": 1}, "r1", PersistSettings())


def test_the_plan_gives_each_storing_task_run_its_paths_and_nothing_to_the_others():
    store = ResultStore("memory://plan-test")

    @flow
    def mixed(x: int = 1):
        return aimed(kept(x)), each.map([1, 2])

    plan = build_plan(mixed.graph, {"x": 5}, "r1", PersistSettings(store=store))
    plan.start()
    persist = {t.name: t.spec.persist for t in plan.tasks.values()}
    assert persist["kept"].write == "mixed/r1/kept.pkl" and persist["kept"].target is None
    assert persist["aimed"].target == persist["aimed"].write == "mixed/5.json"
    assert persist["aimed"].serializer.name == "json"
    assert [persist[f"each[{i}]"].target for i in (0, 1)] == ["parts/0.json", "parts/1.json"]

    @flow
    def bare(x: int = 1):
        return double_task(x)

    plan = build_plan(bare.graph, {"x": 1}, "r2", PersistSettings(store=store))
    plan.start()
    assert all(t.spec.persist is None for t in plan.tasks.values())


double_task = task(double)


def test_a_resumed_run_points_each_persisted_task_run_at_its_old_result():
    store = ResultStore("memory://plan-test")

    @flow
    def resumable(x: int = 1):
        return double_task(kept(x))

    results = PersistSettings(store=store, resumed={"kept": "resumable/r0/kept.pkl"}, resumed_from="r0")
    plan = build_plan(resumable.graph, {"x": 1}, "r1", results)
    plan.start()
    persist = {t.name: t.spec.persist for t in plan.tasks.values()}
    assert persist["kept"].resume == "resumable/r0/kept.pkl"
    assert persist["kept"].resumed_from == "r0"
    assert persist["double"] is None


def test_a_serialization_error_fails_at_once_and_pickles_with_its_context():
    err = SerializationError("task 't' ...", task="t", serializer="json", type="X")
    back = pickle.loads(pickle.dumps(err))
    assert (back.task, back.serializer, back.type) == ("t", "json", "X")
    from taskflow.engine.transitions import RetryPolicy, after_exception

    state, delay = after_exception(err, attempt=1, policy=RetryPolicy(retries=3), started_at=0.0)
    assert state.is_failed() and delay is None
