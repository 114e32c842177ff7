"""Mapping workloads, taskflow against plain Dask (``client.map`` and one graph).

Run from the repository root::

    python -m benchmarks.mapping               # full sizes (100,000 children: minutes)
    python -m benchmarks.mapping --quick       # small sizes, 1 repetition
    python -m benchmarks.mapping --only map_10k,map_runtime_10k --reps 3

Same machinery, table and rules as :mod:`benchmarks.core`; the workloads are in
:func:`benchmarks.workloads.make_map_workloads`.  Targets (issue 3): 100,000
children with the client growing under 500 MB, and taskflow within 1.5x of the
same map written with ``client.map``.
"""
from __future__ import annotations

import sys

from benchmarks.core import main

if __name__ == "__main__":
    sys.exit(main(suite="map"))
