"""Smoke test of the benchmark suite: ``python -m benchmarks.core --quick`` runs and reports."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from benchmarks.workloads import WORKLOAD_NAMES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_quick_benchmark_runs_and_reports_every_workload(tmp_path):
    out = tmp_path / "core.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.core", "--quick", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    table = proc.stdout
    assert "Targets:" in table
    rows = {line.split()[0] for line in table.splitlines() if line.strip()}
    missing = [name for name in WORKLOAD_NAMES if name not in rows]
    assert not missing, f"workloads missing from the table: {missing}\n{table}"
    doc = json.loads(out.read_text())
    assert sorted(doc["workloads"]) == sorted(WORKLOAD_NAMES)
    for result in doc["workloads"].values():
        assert set(result["ways"]) == {"graph", "submit", "taskflow"}
