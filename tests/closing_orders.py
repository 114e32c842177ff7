"""Close a cluster and taskflow's executor in the order given on the command line.

``python -m tests.closing_orders cluster-first`` runs a flow on a LocalCluster
through ``DaskExecutor(address=...)``, then closes the cluster before the
executor; ``executor-first`` the other way round; ``cluster-only`` never closes
the executor (the interpreter's exit does).  Whatever prints on stderr is what a
user would see.
"""
from __future__ import annotations

import sys

from distributed import LocalCluster

from taskflow.executors import DaskExecutor
from tests import flows


def main(order: str) -> None:
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                           dashboard_address="127.0.0.1:0")
    ex = DaskExecutor(address=cluster.scheduler_address)
    assert flows.etl.run(n=10, executor=ex).result() == 45
    if order == "cluster-first":
        cluster.close()
        ex.close()
    elif order == "executor-first":
        with ex:
            pass
        cluster.close()
    elif order == "cluster-only":
        cluster.close()
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
