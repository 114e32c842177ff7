"""Parameters checked against the flow's type hints before anything runs."""
from __future__ import annotations

import datetime
import os
import subprocess
import sys

import pytest

from taskflow import ParameterError
from taskflow.executors import LocalExecutor
from tests import read_flows

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOWS = os.path.join(ROOT, "tests", "read_flows.py")


def taskflow_cli(*args, history):
    env = {**os.environ, "PYTHONPATH": ROOT, "DASK_TASKFLOW__HISTORY__URL": history}
    return subprocess.run([sys.executable, "-m", "taskflow.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120, cwd=ROOT)


@pytest.fixture
def history(tmp_path):
    return f"sqlite:///{tmp_path / 'history.db'}"


def test_a_value_that_does_not_fit_its_type_hint_is_one_line_naming_it_and_exits_two(history):
    result = taskflow_cli("run", f"{FLOWS}:typed", "-p", "count=abc", history=history)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == ["Error: flow 'typed': parameter count='abc' is not a valid int (Input "
                     "should be a valid integer, unable to parse string as an integer)"]
    assert "flow run" not in result.stderr  # nothing started


def test_command_line_text_is_converted_to_the_hinted_types(history):
    result = taskflow_cli("run", f"{FLOWS}:typed", "--local", "-p", "count=3",
                          "-p", "day=2026-11-01", "-p", "xs=[1, \"2\"]", "-p", "label=123",
                          history=history)
    assert result.returncode == 0, result.stderr
    assert ("result: \"3 datetime.date(2026, 11, 1) [1, 2] '123'\"" in result.stdout), result.stdout


def test_flow_run_with_a_bad_value_fails_before_any_cluster_or_task():
    with pytest.raises(ParameterError, match=r"parameter xs=\[1, 'x'\] is not a valid list\[int\] "
                                             r"\(\[1\]: Input should be a valid integer"):
        # no executor given: a failure after the check would start a LocalCluster
        read_flows.typed.run(count=1, xs=[1, "x"])


def test_values_that_fit_are_kept_as_given_and_unambiguous_ones_converted():
    bound = read_flows.typed.bind_parameters({"count": "7", "day": "2026-11-01"})
    assert bound["count"] == 7 and bound["day"] == datetime.date(2026, 11, 1)
    xs = [1, 2]
    assert read_flows.typed.bind_parameters({"count": 1, "xs": xs})["xs"] is xs
    run = read_flows.typed.run(LocalExecutor(), count="2")
    assert run.parameters["count"] == 2 and run.result().startswith("2 ")
