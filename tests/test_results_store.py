"""The result store on its own: serializers, frames, atomic writes, signing, checks.

Local disk with ``tmp_path``, ``memory://``, and S3 through a moto server.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import warnings

import dask
import numpy as np
import pandas as pd
import pytest

from taskflow.results import (
    CorruptResultError,
    Persisted,
    ResultError,
    ResultStore,
    ResultStoreError,
    SignatureError,
    get_serializer,
    load_url,
)
from taskflow.results.frame import frame, read_header
from tests.s3_fixtures import moto_endpoint_fixture, s3_fixture  # noqa: F401


@pytest.fixture(params=["file", "memory", "s3"])
def store(request, tmp_path):
    """The same tests on local disk, in memory and on S3 (moto)."""
    if request.param == "file":
        yield ResultStore(f"file://{tmp_path}/store")
    elif request.param == "memory":
        url = f"memory://store-{os.getpid()}-{abs(hash(str(tmp_path)))}"
        yield ResultStore(url)
        ResultStore(url).delete("")
    else:
        s3 = request.getfixturevalue("s3")
        yield ResultStore(f"s3://{s3['bucket']}/prefix", storage_options=s3["options"])


class Upper:
    """A custom serializer: text, upper-cased on the way in."""

    name = "upper"
    executes_code = False

    def dumps(self, value):
        return value.upper().encode()

    def loads(self, data):
        return bytes(data).decode()


@pytest.mark.parametrize(
    ("serializer", "value"),
    [
        ("pickle", {"a": [1, 2.5, None], "b": (1, "x")}),
        ("json", {"a": [1, 2.5, None], "b": "x"}),
        ("npy", np.arange(12, dtype="int32").reshape(3, 4)),
        ("parquet", pd.DataFrame({"x": [1, 2], "y": ["a", "b"]})),
        (Upper(), "shout"),
    ],
    ids=["pickle", "json", "npy", "parquet", "custom"],
)
def test_each_serializer_round_trips_through_every_store(store, serializer, value):
    location = store.write("a/b/value", value, serializer)
    assert location == store.url + "/a/b/value"
    back = store.load("a/b/value", serializer)
    if isinstance(value, np.ndarray):
        assert back.dtype == value.dtype and (back == value).all()
    elif isinstance(value, pd.DataFrame):
        pd.testing.assert_frame_equal(back, value)
    elif isinstance(serializer, Upper):
        assert back == "SHOUT"
    else:
        assert back == value
    assert store.exists("a/b/value") and not store.exists("a/b/other")


def test_pickled_arrays_and_bytes_round_trip_uncopied_and_load_writable(store):
    arr = np.arange(10**6, dtype="float64")
    fortran = np.asfortranarray(np.ones((300, 200)))
    store.write("nested", {"arr": arr, "f": fortran, "blob": b"xyz" * 1000, "n": 3})
    back = store.load("nested")
    assert (back["arr"] == arr).all() and back["f"].flags.f_contiguous and back["n"] == 3
    back["arr"] += 1  # writable, as before it was stored
    assert back["blob"] == b"xyz" * 1000
    store.write("raw", b"\x00\x01" * 10**6)
    raw = store.load("raw")
    assert type(raw) is bytes and raw == b"\x00\x01" * 10**6


def test_a_result_read_with_another_serializer_is_refused_naming_both(store):
    store.write("v", [1, 2], "json")
    with pytest.raises(CorruptResultError, match="written with serializer 'json', not 'pickle'"):
        store.load("v", "pickle")


def test_a_missing_result_is_a_clear_error(store):
    with pytest.raises(ResultError, match="no result at .*/nothing/here"):
        store.load("nothing/here")


def test_json_and_npy_refuse_what_they_cannot_write_without_running_code():
    with pytest.raises(TypeError):
        get_serializer("json").dumps(object())
    with pytest.raises(ValueError):
        get_serializer("npy").dumps(np.array([object()], dtype=object))
    with pytest.raises(TypeError, match="npy writes numpy arrays, not list"):
        get_serializer("npy").dumps([1, 2])
    with pytest.raises(TypeError, match="parquet writes pandas DataFrames, not dict"):
        get_serializer("parquet").dumps({"x": 1})


def test_a_truncated_or_corrupted_result_file_is_refused_not_loaded(tmp_path):
    store = ResultStore(f"file://{tmp_path}")
    store.write("good", list(range(1000)))
    path = tmp_path / "good"
    data = path.read_bytes()

    (tmp_path / "short").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptResultError, match="short is truncated"):
        store.load("short")

    flipped = bytearray(data)
    flipped[-10] ^= 0xFF
    (tmp_path / "flipped").write_bytes(bytes(flipped))
    with pytest.raises(CorruptResultError, match="flipped is corrupted: its checksum does not match"):
        store.load("flipped")

    (tmp_path / "foreign").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(CorruptResultError, match="foreign is not a taskflow result file"):
        store.load("foreign")


def test_the_header_records_serializer_time_and_length():
    header, payload = frame(b"abc", "json", written_at=12.5)
    info = read_header(header, where="x")
    assert (info.serializer, info.written_at, info.length, info.signed) == ("json", 12.5, 3, False)


# -- signing -----------------------------------------------------------------------------
def test_pickles_are_signed_when_a_key_is_set_and_a_wrong_key_is_refused(tmp_path):
    store = ResultStore(f"file://{tmp_path}")
    with dask.config.set({"taskflow.results.signing-key": "k1"}):
        store.write("signed", {"x": 1})
        assert store.header("signed").signed
        assert store.load("signed") == {"x": 1}
    with dask.config.set({"taskflow.results.signing-key": "other"}):
        with pytest.raises(SignatureError, match="does not match the configured signing key"):
            store.load("signed")
    with pytest.raises(SignatureError, match="is signed, but no signing key is configured"):
        store.load("signed")


def test_an_unsigned_pickle_is_refused_when_a_signing_key_is_set(tmp_path):
    store = ResultStore(f"file://{tmp_path}")
    store.write("plain", {"x": 1})
    store.write("text", {"x": 1}, "json")
    with dask.config.set({"taskflow.results.signing-key": "k1"}):
        with pytest.raises(SignatureError, match="not signed, but a signing key is configured"):
            store.load("plain")
        assert store.load("text", "json") == {"x": 1}  # json runs no code: not signed


def test_a_tampered_signed_pickle_is_refused_before_it_is_unpickled(tmp_path):
    store = ResultStore(f"file://{tmp_path}")
    marker = tmp_path / "pwned"
    with dask.config.set({"taskflow.results.signing-key": "k1"}):
        store.write("victim", "harmless")
        evil = pickle.dumps(_Evil(str(marker)))
        header, _ = frame(evil, "pickle", written_at=1.0, key=b"guessed")
        (tmp_path / "victim").write_bytes(header + evil)
        with pytest.raises(SignatureError):
            store.load("victim")
    assert not marker.exists()


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


# -- atomic writes -----------------------------------------------------------------------
def test_a_local_write_leaves_no_temporary_file_and_replaces_the_old_result(tmp_path):
    store = ResultStore(f"file://{tmp_path}")
    store.write("d/x", 1)
    store.write("d/x", 2)
    assert sorted(os.listdir(tmp_path / "d")) == ["x"]
    assert store.load("d/x") == 2


def test_a_store_without_fsync_still_replaces_results_atomically(tmp_path):
    store = ResultStore(f"file://{tmp_path}", fsync=False)
    store.write("d/x", list(range(10)))
    store.write("d/x", "second")
    assert os.listdir(tmp_path / "d") == ["x"] and store.load("d/x") == "second"
    assert pickle.loads(pickle.dumps(store)).fsync is False


def test_a_temporary_file_left_by_a_dead_writer_is_removed_by_the_next_write(tmp_path):
    store = ResultStore(f"file://{tmp_path}")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)
    from taskflow.results.local import _HOST
    from taskflow.results.local import TMP as _TMP

    (tmp_path / "d").mkdir()
    stray = tmp_path / "d" / f".x{_TMP}{pid}-abcd1234@{_HOST}"
    stray.write_bytes(b"half a result")
    other = tmp_path / "d" / f".y{_TMP}{pid}-abcd1234@{_HOST}"  # another place: not touched
    other.write_bytes(b"half")
    store.write("d/x", 1)
    assert not stray.exists() and other.exists()
    assert store.load("d/x") == 1


def test_a_temporary_file_of_a_live_writer_is_left_alone(tmp_path):
    store = ResultStore(f"file://{tmp_path}")
    from taskflow.results.local import _HOST
    from taskflow.results.local import TMP as _TMP

    (tmp_path / "d").mkdir()
    busy = tmp_path / "d" / f".x{_TMP}{os.getppid()}-abcd1234@{_HOST}"
    busy.write_bytes(b"being written")
    store.write("d/x", 1)
    assert busy.exists()


def test_s3_objects_appear_only_complete_with_one_upload(s3):
    store = ResultStore(f"s3://{s3['bucket']}/runs", storage_options=s3["options"])
    big = np.arange(3 * 2**20, dtype="float64")  # 24 MB
    store.write("big.npy", big, "npy")
    assert s3["fs"].ls(f"{s3['bucket']}/runs") == [f"{s3['bucket']}/runs/big.npy"]
    assert (store.load("big.npy", "npy") == big).all()
    assert (load_url(store.location("big.npy"), "npy", s3["options"]) == big).all()


# -- checks and credentials --------------------------------------------------------------
def test_a_missing_bucket_is_reported_naming_the_url(s3):
    store = ResultStore("s3://no-such-bucket/x", storage_options=s3["options"])
    with pytest.raises(ResultStoreError, match="result store s3://no-such-bucket/x: bucket "
                                               "'no-such-bucket' does not exist"):
        store.check()


def test_refused_credentials_are_reported_naming_the_url(s3, monkeypatch):
    import moto.settings

    store = ResultStore(f"s3://{s3['bucket']}/x", storage_options=s3["options"])
    store.check()
    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # moto checks keys now
    fresh = ResultStore(f"s3://{s3['bucket']}/y",
                        storage_options={**s3["options"], "skip_instance_cache": True})
    with pytest.raises(ResultStoreError, match=f"result store s3://{s3['bucket']}/y: access refused"):
        fresh.check()


def test_a_local_store_is_created_when_checked(tmp_path):
    ResultStore(f"file://{tmp_path}/new/store").check()
    assert (tmp_path / "new" / "store").is_dir()


def test_secrets_in_storage_options_warn_and_never_travel_to_workers():
    with pytest.warns(UserWarning, match=r"storage_options hold secrets \(key, secret, "
                                         r"client_kwargs.aws_session_token\)"):
        store = ResultStore("s3://b/p", storage_options={
            "key": "AKIA", "secret": "s3cr3t", "anon": False,
            "client_kwargs": {"endpoint_url": "http://x", "aws_session_token": "tok"},
        })
    sent = pickle.loads(pickle.dumps(store))
    assert sent.storage_options == {"anon": False, "client_kwargs": {"endpoint_url": "http://x"}}
    assert b"s3cr3t" not in pickle.dumps(Persisted(store, "p", "pickle"))
    assert store.storage_options["secret"] == "s3cr3t"  # still used in this process
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ResultStore("s3://b/p", storage_options={"client_kwargs": {"endpoint_url": "http://x"}})


def test_fsync_follows_the_config_unless_given(tmp_path):
    assert ResultStore(f"file://{tmp_path}").fsync is False
    with dask.config.set({"taskflow.results.fsync": True}):
        assert ResultStore(f"file://{tmp_path}").fsync is True
        assert ResultStore(f"file://{tmp_path}", fsync=False).fsync is False


def test_temporary_files_left_by_killed_writes_are_removed_by_the_next_run_using_the_store(
    tmp_path, counts
):
    import time

    import dask

    from taskflow.executors import LocalExecutor
    from taskflow.results.local import _HOST, TMP
    from tests import result_flows as rf
    from tests.polling import wait_for

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    deep = tmp_path / "store" / "some-flow" / "run" / "deep"
    deep.mkdir(parents=True)
    gone = deep / f".a.pkl{TMP}{int(dead.stdout)}-abcd1234@{_HOST}"  # its writer is dead
    old = deep / f".b.pkl{TMP}1-abcd1234@elsewhere"  # another host, untouched for 2 hours
    fresh = deep / f".c.pkl{TMP}1-abcd1234@elsewhere"  # another host, being written
    for f in (gone, old, fresh):
        f.write_bytes(b"half a result")
    os.utime(old, (time.time() - 7200, time.time() - 7200))

    with dask.config.set({"taskflow.results.store": f"file://{tmp_path}/store"}):
        run = rf.all_checkpointed.run(n=2, counts=counts, executor=LocalExecutor())
    assert run.state.is_successful(), run.state
    wait_for(lambda: not gone.exists() and not old.exists(), 20,  # the sweep runs apart
             "the stray temporary files to be removed")
    assert fresh.exists()
