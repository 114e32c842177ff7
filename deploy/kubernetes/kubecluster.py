"""Run a flow on a Dask cluster that the dask-kubernetes operator starts for this run.

What it needs:

* a Kubernetes cluster with the Dask operator installed::

      helm install --repo https://helm.dask.org --create-namespace -n dask-operator \\
          --generate-name dask-kubernetes-operator

* ``pip install dask-kubernetes`` here, and a kubeconfig that may create DaskCluster
  resources in the current namespace;
* the image of ``deploy/Dockerfile`` pushed where the cluster pulls from, named in
  ``TASKFLOW_IMAGE`` (default ``dask-taskflow:0.1.0``);
* the same Python (major.minor), dask, distributed, cloudpickle and taskflow here as in
  the image: taskflow refuses workers that differ.

Usage (from the repository root)::

    TASKFLOW_IMAGE=registry.example.com/dask-taskflow:0.1.0 \\
        python deploy/kubernetes/kubecluster.py examples/etl.py:etl -p n=1000

The cluster (a scheduler pod and 1 to 10 worker pods, scaled on load) is deleted when
the run ends.  ``deploy/kubernetes/taskflow.yaml`` does the same through Dask config,
for ``taskflow run`` and ``taskflow serve``.
"""
from __future__ import annotations

import json
import os
import sys

from taskflow.cli import main as cli_main

CLUSTER_CLASS = "dask_kubernetes.operator.KubeCluster"
# Adaptive scaling between these numbers of workers (Cluster.adapt keywords).
ADAPT = {"minimum": 1, "maximum": 10}


def cluster_kwargs() -> dict:
    """Keyword arguments of ``KubeCluster``."""
    return {
        "name": "taskflow-{uuid}",  # KubeCluster fills in {uuid}: one cluster per run
        "image": os.environ.get("TASKFLOW_IMAGE", "dask-taskflow:0.1.0"),
        "n_workers": 2,
        "resources": {
            "requests": {"cpu": "1", "memory": "2Gi"},
            "limits": {"cpu": "1", "memory": "2Gi"},
        },
    }


if __name__ == "__main__":
    # `taskflow run TARGET -p ...` on a cluster of this class; in Python the same is
    # flow.run(executor=DaskExecutor(cluster_class=CLUSTER_CLASS,
    #          cluster_kwargs=cluster_kwargs(), adapt_kwargs=ADAPT)), then executor.close()
    # (which deletes the DaskCluster resource).
    cli_main(["run", *sys.argv[1:], "--cluster-class", CLUSTER_CLASS,
              "--cluster-kwargs", json.dumps(cluster_kwargs()), "--adapt", json.dumps(ADAPT)])
