"""Mapping workloads, taskflow against plain Dask (``client.map`` and one graph).

Run from the repository root::

    python -m benchmarks.mapping               # full sizes (100,000 children: minutes)
    python -m benchmarks.mapping --quick       # small sizes, 1 repetition
    python -m benchmarks.mapping --only map_10k,map_runtime_10k --reps 3

Same machinery, table and rules as :mod:`benchmarks.core`; the workloads are in
:func:`benchmarks.workloads.make_map_workloads`: maps over a constant list and
over a task's output (run-time length) at 1,000 and 10,000, 100,000 over a
task's output, two maps in a row.  Targets: taskflow within 1.1x of the best
plain-Dask way (issue 14; ``client.map`` over the list known up front, or one
graph), medians of at least 3 interleaved rounds; 100,000 children with the
client growing under 500 MB (issue 3).
"""
from __future__ import annotations

import sys

from benchmarks.core import main

if __name__ == "__main__":
    sys.exit(main(suite="map"))
