"""Smoke test of the results benchmark: ``python -m benchmarks.results --quick`` runs and reports."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_quick_results_benchmark_reports_throughput_and_writes_nothing_when_off(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.results", "--quick", "--total", "16", "--tasks", "50",
         "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=200,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Checkpoint throughput" in proc.stdout and "Targets:" in proc.stdout
    doc = json.loads(out.read_text())
    assert set(doc["local"]["mb_per_s"]) == {"fsspec", "checkpoint", "fsspec+fsync",
                                             "checkpoint+fsync"}
    assert set(doc["s3"]["mb_per_s"]) == {"fsspec", "checkpoint"}
    assert doc["local"]["bytes"] == doc["s3"]["bytes"] == 16 * 2**20
    assert doc["fanout"]["files_written_with_checkpointing_off"] == 0
    assert doc["fanout"]["checkpointing_on"]["files_written"] > 0
