"""What `taskflow visualize`, `show`, `logs`, `runs` and `run` tell a person, as real processes."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from taskflow.history import open_history
from taskflow.history.store import WriteBatch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOWS = os.path.join(ROOT, "tests", "read_flows.py")


def taskflow_cli(*args, history, cwd=ROOT):
    env = {**os.environ, "PYTHONPATH": ROOT, "DASK_TASKFLOW__HISTORY__URL": history}
    return subprocess.run([sys.executable, "-m", "taskflow.cli", *args], capture_output=True,
                          text=True, env=env, timeout=180, cwd=cwd)


@pytest.fixture
def history(tmp_path):
    return f"sqlite:///{tmp_path / 'history.db'}"


def run_id_of(result) -> str:
    match = re.search(r"flow run ([0-9a-f]{32})", result.stderr)
    assert match, result.stderr
    return match.group(1)


def test_visualize_with_a_run_draws_that_runs_parameter_values(history, tmp_path):
    run = taskflow_cli("run", f"{FLOWS}:typed", "--local", "-p", "count=7", "-p", "label=seven",
                       history=history)
    assert run.returncode == 0, run.stderr
    out = tmp_path / "typed.dot"
    drawn = taskflow_cli("visualize", f"{FLOWS}:typed", "-o", str(out), "--run",
                         run_id_of(run)[:8], history=history)
    assert drawn.returncode == 0, drawn.stderr
    source = out.read_text()
    assert 'label="count = 7"' in source and "label = 'seven'" in source, source
    assert "label = 'x'" not in source  # not the default


def test_show_and_logs_list_mapped_children_in_index_order(history):
    now = time.time()
    with open_history(history) as store:  # children reported out of order, as they do on a cluster
        store.write(WriteBatch(started=[dict(id="ab" * 16, flow_name="many", parameters="{}",
                                             state="SUCCESS", started_at=now, heartbeat=now)]))
        names = ["numbers", "noisy[10]", "noisy[2]", "noisy[1]", "summed"]
        store.write(WriteBatch(
            tasks=[dict(run_id="ab" * 16, name=n, seq=i, key="", state="SUCCESS", attempts=1,
                        message="", started_at=now, ended_at=now, worker="w", traceback=None,
                        result_location=None, updated_at=now,
                        map_index=int(n[6:-1]) if "[" in n else None)
                   for i, n in enumerate(names)],
            logs=[dict(run_id="ab" * 16, task=n, level=20, logger="taskflow.task_runs",
                       message=f"hello from {n}", created=now + i, worker="w")
                  for i, n in enumerate(names)]))
    show = taskflow_cli("show", "abab", history=history)
    assert show.returncode == 0, show.stderr
    table = show.stdout[show.stdout.index("TASK"):].splitlines()[1:]
    assert [row.split()[0] for row in table] == ["numbers", "noisy[1]", "noisy[2]", "noisy[10]",
                                                 "summed"]
    logs = taskflow_cli("logs", "abab", history=history)
    assert [ln.split("| hello from ")[1] for ln in logs.stdout.splitlines()] == [
        "numbers", "noisy[1]", "noisy[2]", "noisy[10]", "summed"]
    by_time = taskflow_cli("logs", "abab", "--by-time", history=history)
    assert [ln.split("| hello from ")[1] for ln in by_time.stdout.splitlines()] == names


def test_the_final_summary_counts_every_task_of_the_flow(history):
    run = taskflow_cli("run", f"{FLOWS}:map_never_expands", "--local", history=history)
    assert run.returncode == 1
    assert "tasks: 3/3 done, 3 failed" in run.stderr  # the map that never expanded counts too
    ok = taskflow_cli("run", f"{FLOWS}:many_children", "-p", "n=12", "--local", history=history)
    assert "tasks: 14/14 done, 0 failed" in ok.stderr


@pytest.mark.slow
def test_a_run_lasts_as_long_in_its_log_line_in_runs_and_in_show(history):
    # on the embedded LocalCluster: starting the cluster is not part of the run
    run = taskflow_cli("run", f"{FLOWS}:retried", "-p", "times=1", "--verbose", history=history)
    assert run.returncode == 0, run.stderr
    logged = re.search(r"flow run [0-9a-f]{8} finished in (\d+\.\d\d) s", run.stderr).group(1)
    run_id = run_id_of(run)
    runs = taskflow_cli("runs", "--limit", "1", history=history)
    row = runs.stdout.strip().splitlines()[1]
    assert row.startswith(run_id[:8]) and f" {logged}s " in row, (logged, row)
    show = taskflow_cli("show", run_id, history=history)
    assert f"(took {logged}s)" in show.stdout, (logged, show.stdout)
