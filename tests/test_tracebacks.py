"""Tracebacks of tasks run on workers name the user's file and line."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ETL = textwrap.dedent("""
    from taskflow import flow, task


    def helper(x):
        return 1 / x


    @task
    def divide(x: int) -> float:
        return helper(x)


    @flow
    def etl(x: int = 0):
        return divide(x)
""")


def taskflow_cli(*args, history, cwd):
    env = {**os.environ, "PYTHONPATH": ROOT, "DASK_TASKFLOW__HISTORY__URL": history}
    return subprocess.run([sys.executable, "-m", "taskflow.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120, cwd=cwd)


@pytest.mark.slow
def test_a_flow_file_run_on_worker_processes_has_tracebacks_naming_its_file_and_lines(
        tmp_path, process_client):
    (tmp_path / "flows").mkdir()
    path = tmp_path / "flows" / "etl.py"
    path.write_text(ETL)  # outside any package: its code travels to the workers by value
    history = f"sqlite:///{tmp_path / 'history.db'}"
    run = taskflow_cli("run", "flows/etl.py:etl", "--address", process_client.scheduler.address,
                       history=history, cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    run_id = re.search(r"flow run ([0-9a-f]{32})", run.stderr).group(1)
    show = taskflow_cli("show", run_id, "--traceback", history=history, cwd=tmp_path)
    text = show.stdout
    assert "<dynamic-code>" not in text
    assert f'File "{path}", line 11, in divide\n    return helper(x)\n' in text, text
    assert f'File "{path}", line 6, in helper\n    return 1 / x\n' in text, text
