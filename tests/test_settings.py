"""Every taskflow setting is checked before a run (or a command) starts: a bad value is
named with the fix, and nothing of the run is started or recorded."""
from __future__ import annotations

import os
import pickle

import dask
import pytest
import yaml
from click.testing import CliRunner

import taskflow
from taskflow import SettingError, settings
from taskflow.cli import cli
from taskflow.executors import LocalExecutor
from taskflow.history.store import HistoryStore
from tests import flows as tf


def test_every_key_of_the_defaults_has_a_kind_and_the_defaults_pass():
    with open(os.path.join(os.path.dirname(taskflow.__file__), "taskflow.yaml")) as f:
        sections = yaml.safe_load(f)["taskflow"]
    keys = {f"{section}.{key}" for section, values in sections.items() for key in values}
    assert keys == set(settings.KINDS)
    settings.check()


@pytest.mark.parametrize("key, bad, takes", [
    ("events.settle-timeout", "soon", "a duration"),
    ("history.flush-timeout", -5, "a duration"),
    ("map.split-above", "big", "a size"),
    ("history.batch-size", 0, "at least 1"),
    ("dask.submit-window", 2.5, "a whole number"),
    ("history.enabled", "no", "true or false"),
    ("logging.level", "chatty", "a logging level"),
    ("events.topic", "", "a non-empty string"),
    ("server.port", 70000, "a TCP port"),
    ("executor.cluster-kwargs", [1, 2], "a mapping"),
])
def test_a_bad_value_is_named_with_what_it_takes_and_where_to_set_it(key, bad, takes):
    with dask.config.set({f"taskflow.{key}": bad}), pytest.raises(SettingError) as info:
        settings.check()
    message = str(info.value)
    assert message.startswith(f"taskflow.{key} must be ")
    assert takes in message.split(", not ")[0]
    assert repr(bad) in message and "dask.config.set" in message
    env = "DASK_TASKFLOW__" + key.upper().replace(".", "__").replace("-", "_")
    assert env in message
    # the variable named is one Dask reads as that setting
    assert dask.config.collect_env({env: "x"})["taskflow"][key.split(".")[0]]
    again = pickle.loads(pickle.dumps(info.value))
    assert (again.key, again.value, str(again)) == (f"taskflow.{key}", bad, message)


def test_good_values_of_each_kind_pass():
    good = {"events.settle-timeout": 3, "map.split-above": "1 GiB", "history.batch-size": 1,
            "logging.level": "DEBUG", "server.port": 0, "executor.adapt": {"maximum": 4},
            "history.url": None}
    with dask.config.set({f"taskflow.{k}": v for k, v in good.items()}):
        settings.check()


def test_a_run_with_a_bad_setting_is_refused_before_it_starts_or_is_recorded(tmp_path):
    url = f"sqlite:///{tmp_path / 'history.db'}"
    with dask.config.set({"taskflow.history.url": url, "taskflow.events.settle-timeout": "soon"}), \
            pytest.raises(SettingError, match="taskflow.events.settle-timeout"):
        tf.etl.run(n=3, executor=LocalExecutor())
    with dask.config.set({"taskflow.history.url": url}):
        assert HistoryStore(url).runs() == []  # nothing recorded, not even a Crashed run
        assert tf.etl.run(n=3, executor=LocalExecutor()).state.is_successful()


def test_a_command_with_a_bad_setting_says_so_and_exits_non_zero(tmp_path):
    url = f"sqlite:///{tmp_path / 'history.db'}"
    with dask.config.set({"taskflow.history.stale-after": "later"}):
        out = CliRunner().invoke(cli, ["--history", url, "runs"])
    assert out.exit_code != 0
    assert "taskflow.history.stale-after must be a duration" in out.output
    assert "Traceback" not in out.output
