"""A stored result that fails its check is never trusted: the task whose file it is runs again.

Truncated, corrupted, foreign, unsigned or wrongly signed files (in a signed
store) are cache misses for the task that owns them, with a warning naming the
file and why; nothing reads the bad bytes, and no code in them runs.
"""
from __future__ import annotations

import logging
import os
import pickle

import dask
import pytest

from taskflow import StateType
from taskflow.executors import DaskExecutor, LocalExecutor
from taskflow.results.frame import frame
from tests import fault_flows as ff
from tests import result_flows as rf
from tests.flows import count

KEY = "taskflow-test-key"


def ran(counts: str, name: str) -> int:
    return count(os.path.join(counts, name))


def damage(path, how: str, marker: str) -> None:
    data = path.read_bytes()
    evil = pickle.dumps(ff.Evil(marker))
    if how == "truncated":
        path.write_bytes(data[: len(data) - 3])
    elif how == "corrupted":
        path.write_bytes(data[:-2] + bytes([data[-2] ^ 0xFF]) + data[-1:])
    elif how == "foreign":  # a bare pickle, no taskflow frame
        path.write_bytes(evil)
    elif how == "unsigned":  # framed and checksummed, but not signed
        header, parts = frame(evil, "pickle", written_at=1.0)
        path.write_bytes(b"".join([header, *parts]))
    elif how == "wrongly-signed":
        header, parts = frame(evil, "pickle", written_at=1.0, key=b"guessed")
        path.write_bytes(b"".join([header, *parts]))


def warnings_about(caplog, url: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and url in r.getMessage()]


def check_recomputed(run, counts, caplog, location: str, why: str, marker) -> None:
    assert run.state.is_successful(), run.state
    assert run.result() == 6
    assert run.task_states["kept"].type is StateType.SUCCESS, run.task_states["kept"]
    assert ran(counts, "kept") == 2
    said = warnings_about(caplog, location)
    assert said and why in said[0] and "computing it again" in said[0], said
    assert not os.path.exists(marker)  # no code in the bad file ran


@pytest.mark.parametrize("how,why", [
    ("truncated", "is truncated"),
    ("corrupted", "checksum does not match"),
    ("foreign", "not a taskflow result file"),
])
def test_a_damaged_target_file_is_computed_again_by_its_own_task(
    executor2, store_url, counts, tmp_path, caplog, how, why
):
    caplog.set_level(logging.WARNING)
    first = ff.trusted_target.run(n=4, counts=counts, executor=executor2)
    assert first.result() == 6
    location = first.task_states["kept"].result_location
    path = tmp_path / "store" / "trusted_target" / "4" / "kept.pkl"
    assert location.endswith("trusted_target/4/kept.pkl") and path.exists()
    marker = tmp_path / "ran"
    damage(path, how, str(marker))

    again = ff.trusted_target.run(n=4, counts=counts, executor=executor2)
    check_recomputed(again, counts, caplog, location, why, marker)
    # the new result replaced the bad file: the next run trusts it
    third = ff.trusted_target.run(n=4, counts=counts, executor=executor2)
    assert third.task_states["kept"].type is StateType.CACHED
    assert ran(counts, "kept") == 2


@pytest.mark.parametrize("where", ["local", "threads"])
@pytest.mark.parametrize("how,why", [
    ("unsigned", "not signed, but a signing key is configured"),
    ("wrongly-signed", "does not match the configured signing key"),
])
def test_in_a_signed_store_an_unsigned_or_wrongly_signed_file_is_computed_again_unread(
    request, store_url, counts, tmp_path, caplog, how, why, where
):
    # a threads cluster shares this process's config (the signing key); worker
    # processes would need it in their own environment
    caplog.set_level(logging.WARNING)
    executor = LocalExecutor() if where == "local" else \
        DaskExecutor(client=request.getfixturevalue("thread_client"))
    with dask.config.set({"taskflow.results.signing-key": KEY}):
        ff.trusted_target.run(n=4, counts=counts, executor=executor)
        path = tmp_path / "store" / "trusted_target" / "4" / "kept.pkl"
        marker = tmp_path / "ran"
        damage(path, how, str(marker))
        again = ff.trusted_target.run(n=4, counts=counts, executor=executor)
    check_recomputed(again, counts, caplog, f"{store_url}/trusted_target/4/kept.pkl", why, marker)


def test_a_damaged_checkpoint_of_a_resumed_run_is_computed_again(
    executor2, store_url, counts, tmp_path, caplog
):
    caplog.set_level(logging.WARNING)
    flag = tmp_path / "flag"
    flag.write_text("fail")
    first = rf.pipeline.run(n=4, counts=counts, flag=str(flag), executor=executor2)
    assert first.task_states["late"].type is StateType.FAILED
    flag.unlink()
    location = first.task_states["square"].result_location
    path = location[len("file://"):]
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 1)

    resumed = rf.pipeline.run(resume=first.run_id, executor=executor2)
    assert resumed.result() == 14
    assert resumed.task_states["load"].type is StateType.CACHED
    assert resumed.task_states["square"].type is StateType.SUCCESS
    assert [ran(counts, t) for t in ("load", "square", "late")] == [1, 2, 2]
    assert any("is truncated" in m for m in warnings_about(caplog, location))


def test_a_damaged_cache_entry_is_a_cache_miss(executor2, store_url, counts, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    first = rf.caching.run(x=2, counts=counts, executor=executor2)
    location = first.task_states["cached_double"].result_location
    path = location[len("file://"):]
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:-1] + bytes([data[-1] ^ 0xFF]))

    again = rf.caching.run(x=2, counts=counts, executor=executor2)
    assert again.result() == (4, 6)
    assert again.task_states["cached_double"].type is StateType.SUCCESS
    assert ran(counts, "cached_double") == 2
    assert any("checksum does not match" in m for m in warnings_about(caplog, location))
