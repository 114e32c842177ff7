"""The `taskflow` command, through click's CliRunner and as a real process."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import dask
import pytest
from click.testing import CliRunner

from taskflow.cli import cli, parse_parameters
from taskflow.history import open_history

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOWS = os.path.join(ROOT, "tests", "cli_flows.py")


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'history.db'}"


def invoke(url, *args):
    return CliRunner().invoke(cli, ["--history", url, *args])


def run_id_of(result) -> str:
    match = re.search(r"flow run ([0-9a-f]{32})", result.stderr)
    assert match, result.output
    return match.group(1)


# -- taskflow run ---------------------------------------------------------------------------
def test_run_prints_the_state_and_the_result_and_exits_zero(url):
    result = invoke(url, "run", f"{FLOWS}:squares", "-p", "n=4", "-p", "label=hello", "--local")
    assert result.exit_code == 0, result.output
    assert "state: SUCCESS" in result.stdout
    assert "result: {'label': 'hello', 'total': 14}" in result.stdout
    assert "tasks: 6/6 done, 0 failed" in result.stderr
    with open_history(url) as history:
        record = history.get_run(run_id_of(result))
    assert record.state == "SUCCESS" and record.params == {"n": 4, "label": "hello"}


def test_parameter_values_are_json_when_they_parse_and_text_otherwise():
    assert parse_parameters(["n=10", "xs=[1, 2]", "s=hello world", "t=true", "q=\"7\"", "e="]) == {
        "n": 10, "xs": [1, 2], "s": "hello world", "t": True, "q": "7", "e": ""}


def test_a_failed_run_exits_one_and_names_the_failed_task(url):
    result = invoke(url, "run", f"{FLOWS}:broken", "--local")
    assert result.exit_code == 1
    assert "state: FAILED" in result.stdout
    assert "explode: FAILED" in result.stderr and "cannot take 1" in result.stderr
    assert "about to fail on 1" in result.stderr  # warnings of tasks are shown while it runs
    assert "Traceback" not in result.output


def test_the_progress_bar_counts_task_runs_done_out_of_all(url):
    result = invoke(url, "run", f"{FLOWS}:squares", "-p", "n=5", "--local", "--progress")
    assert result.exit_code == 0, result.output
    last = result.stderr.split("\r")[-1]
    assert "7/7 done, 0 failed, 0 running" in last and last.startswith("[#####")


def test_run_on_a_scheduler_address_with_a_flow_file_outside_any_package(url, tmp_path,
                                                                        process_client):
    path = tmp_path / "standalone.py"
    path.write_text(textwrap.dedent("""
        from taskflow import flow, task

        @task
        def triple(x):
            return 3 * x

        @flow
        def tripled(n: int = 2):
            return triple.map(list(range(4)))

        if __name__ == "__main__":
            raise SystemExit("the main block must not run")
    """))
    address = process_client.scheduler.address
    result = invoke(url, "run", str(path), "--address", address)
    assert result.exit_code == 0, result.output
    assert "result: [0, 3, 6, 9]" in result.stdout
    assert f"dashboard: {process_client.dashboard_link}" in result.stderr
    with open_history(url) as history:
        tasks = history.task_runs(run_id_of(result))
    assert {t.worker for t in tasks if t.name.startswith("triple[")} <= set(
        process_client.scheduler_info()["workers"])


# -- errors a person can act on ----------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["run", "nowhere.py:etl"], "file 'nowhere.py' does not exist"),
    (["run", f"{FLOWS}:nope"], "has no flow named 'nope'; its flows are: broken, squares"),
    (["run", FLOWS], "defines 2 flows (broken, squares); say which one"),
    (["run", f"{FLOWS}:squares", "-p", "m=3"], "has no parameter 'm'; its parameters are: n=3"),
    (["run", f"{FLOWS}:squares", "-p", "n"], "must look like NAME=VALUE"),
    (["run", f"{FLOWS}:squares", "--local", "--address", "tcp://x:1"], "give one of --address, --cluster-class or --local, not --address and --local"),
    (["run", "no_such_module:flow"], "no file or module 'no_such_module'"),
    (["show", "ffffffff"], "no flow run with id 'ffffffff'"),
    (["logs", "ffffffff"], "`taskflow runs` lists recent runs"),
    (["visualize", f"{FLOWS}:squares", "-o", "graph.bmp"], "cannot tell the image format"),
])
def test_usage_errors_print_one_line_and_exit_two(url, args, message):
    result = invoke(url, *args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], lines


def test_an_unreachable_address_is_a_usage_error(url):
    with dask.config.set({"taskflow.executor.connect-timeout": "1s"}):
        result = invoke(url, "run", f"{FLOWS}:squares", "--address", "tcp://127.0.0.1:1")
    assert result.exit_code == 2
    assert "no Dask scheduler answered at 'tcp://127.0.0.1:1'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_debug_shows_the_traceback(url):
    result = CliRunner().invoke(cli, ["--history", url, "--debug", "show", "ffff"])
    assert result.exit_code == 2
    assert "Traceback" in result.stderr and "UnknownRunError" in result.stderr


# -- reading the history ----------------------------------------------------------------------
def test_runs_lists_recent_runs_filtered_by_flow_state_and_limit(url):
    ok = run_id_of(invoke(url, "run", f"{FLOWS}:squares", "--local"))
    bad = run_id_of(invoke(url, "run", f"{FLOWS}:broken", "--local"))
    result = invoke(url, "runs")
    assert result.exit_code == 0
    header, *rows = result.stdout.strip().splitlines()
    assert header.split() == ["RUN", "ID", "FLOW", "STATE", "STARTED", "DURATION", "MESSAGE"]
    assert [r.split()[:3] for r in rows] == [[bad[:8], "broken", "FAILED"],
                                             [ok[:8], "squares", "SUCCESS"]]
    assert invoke(url, "runs", "--state", "failed").stdout.count("\n") == 2
    assert ok[:8] in invoke(url, "runs", "--flow", "squares").stdout
    assert bad[:8] not in invoke(url, "runs", "--flow", "squares").stdout
    assert len(invoke(url, "runs", "--limit", "1").stdout.strip().splitlines()) == 2
    assert invoke(url, "runs", "--state", "bogus").exit_code == 2


def test_show_prints_the_run_and_its_task_runs_from_a_prefix(url):
    run_id = run_id_of(invoke(url, "run", f"{FLOWS}:broken", "--local"))
    result = invoke(url, "show", run_id[:6], "--traceback")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"flow run   {run_id}" in out and "state      FAILED" in out
    assert "executor   LocalExecutor()" in out
    table = out[out.index("TASK"):]
    assert table.splitlines()[0].split() == ["TASK", "STATE", "ATTEMPTS", "DURATION", "WORKER",
                                             "MESSAGE"]
    explode = next(line for line in table.splitlines() if line.startswith("explode"))
    assert explode.split()[:4] == ["explode", "FAILED", "1", explode.split()[3]]
    assert "local" in explode and "cannot take 1" in explode
    assert "square  " in table and "TRIGGER_FAILED" in table
    assert "--- explode ---" in out and "ValueError: cannot take 1" in out


def test_logs_prints_the_records_of_a_run_and_of_one_task(url):
    run_id = run_id_of(invoke(url, "run", f"{FLOWS}:squares", "-p", "label=L", "--local"))
    result = invoke(url, "logs", run_id)
    assert result.exit_code == 0
    assert re.search(r"INFO +summed \| summing 3 squares for L", result.stdout)
    assert invoke(url, "logs", run_id, "--task", "summed").stdout == result.stdout
    empty = invoke(url, "logs", run_id, "--task", "square")
    assert empty.exit_code == 0 and "no log records of task 'square'" in empty.stderr


def test_visualize_writes_a_png_coloured_by_a_run(url, tmp_path):
    run_id = run_id_of(invoke(url, "run", f"{FLOWS}:broken", "--local"))
    out = tmp_path / "graph.png"
    result = invoke(url, "visualize", f"{FLOWS}:broken", "-o", str(out), "--run", run_id[:8])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {out}" in result.stdout


# -- the real console script --------------------------------------------------------------------
def _command() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "taskflow")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "taskflow.cli"]


@pytest.mark.slow
def test_the_taskflow_command_runs_flows_and_reads_history_in_real_processes(url):
    env = {**os.environ, "DASK_TASKFLOW__HISTORY__URL": url, "PYTHONPATH": ROOT}

    def taskflow(*args):
        return subprocess.run([*_command(), *args], capture_output=True, text=True, env=env,
                              cwd=ROOT, timeout=120)

    ok = taskflow("run", "tests/cli_flows.py:squares", "-p", "n=4", "--local")
    assert ok.returncode == 0, ok.stderr
    assert "result: {'label': 'run', 'total': 14}" in ok.stdout
    run_id = re.search(r"flow run ([0-9a-f]{32})", ok.stderr).group(1)
    failed = taskflow("run", "tests/cli_flows.py:broken", "--local")
    assert failed.returncode == 1 and "state: FAILED" in failed.stdout
    shown = taskflow("show", run_id[:8])
    assert shown.returncode == 0 and "square[3]" in shown.stdout
    usage = taskflow("run", "tests/cli_flows.py:squares", "-p", "x=1")
    assert usage.returncode == 2 and usage.stderr.count("\n") == 1
    assert "Traceback" not in usage.stderr
