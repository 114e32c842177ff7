"""Run a flow on AWS Fargate, on a Dask cluster that dask-cloudprovider starts for this run.

What it needs:

* ``pip install "dask-cloudprovider[aws]"`` here;
* AWS credentials (environment, profile or role) allowed to create ECS clusters, task
  definitions, IAM roles, security groups and CloudWatch log groups (see the
  dask-cloudprovider documentation of ``FargateCluster`` for the list);
* the image of ``deploy/Dockerfile`` pushed to a registry Fargate pulls from (ECR),
  named in ``TASKFLOW_IMAGE``;
* a network path from here to the scheduler's port 8786 (by default the scheduler
  gets a public IP and a security group open on 8786 and 8787: fine for a trial, not
  for production data; see ``fargate_use_private_ip``, ``vpc``, ``subnets`` and
  ``security_groups``);
* the same Python (major.minor), dask, distributed, cloudpickle and taskflow here as in
  the image: taskflow refuses workers that differ.

Usage (from the repository root)::

    TASKFLOW_IMAGE=123456789012.dkr.ecr.eu-west-1.amazonaws.com/dask-taskflow:0.1.0 \\
    AWS_REGION=eu-west-1 \\
        python deploy/aws/fargate.py examples/etl.py:etl -p n=1000

The ECS cluster, its tasks and the roles made for it are removed when the run ends.
Without code: ``taskflow run ... --cluster-class dask_cloudprovider.aws.FargateCluster
--cluster-kwargs '{"image": "...", "n_workers": 2}'``.
"""
from __future__ import annotations

import json
import os
import sys

from taskflow.cli import main as cli_main

CLUSTER_CLASS = "dask_cloudprovider.aws.FargateCluster"
# Adaptive scaling between these numbers of workers (Cluster.adapt keywords).
ADAPT = {"minimum": 1, "maximum": 10}


def cluster_kwargs() -> dict:
    """Keyword arguments of ``FargateCluster``."""
    kwargs = {
        "image": os.environ.get("TASKFLOW_IMAGE") or sys.exit(
            "set TASKFLOW_IMAGE to the deploy/Dockerfile image pushed to ECR"),
        "region_name": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
        "n_workers": 2,
        "worker_cpu": 1024,  # 1 vCPU
        "worker_mem": 4096,  # MiB
        # Appended to `dask-scheduler --idle-timeout ...`: the taskflow page.
        "scheduler_extra_args": ["--preload", "taskflow.dashboard"],
        "scheduler_timeout": "15 minutes",  # an idle scheduler stops itself
    }
    store = os.environ.get("DASK_TASKFLOW__RESULTS__STORE")  # e.g. s3://bucket/prefix
    if store:
        # Workers write results with the task role's rights, not your keys. Scope this
        # down (or pass task_role_arn=) outside a trial.
        kwargs["environment"] = {"DASK_TASKFLOW__RESULTS__STORE": store}
        kwargs["task_role_policies"] = ["arn:aws:iam::aws:policy/AmazonS3FullAccess"]
    return kwargs


if __name__ == "__main__":
    # `taskflow run TARGET -p ...` on a cluster of this class; in Python the same is
    # flow.run(executor=DaskExecutor(cluster_class=CLUSTER_CLASS,
    #          cluster_kwargs=cluster_kwargs(), adapt_kwargs=ADAPT)), then executor.close()
    # (which removes the ECS cluster).
    cli_main(["run", *sys.argv[1:], "--cluster-class", CLUSTER_CLASS,
              "--cluster-kwargs", json.dumps(cluster_kwargs()), "--adapt", json.dumps(ADAPT)])
