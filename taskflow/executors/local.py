"""Run a plan in this process, one step after another (for debugging).

The same worker-side runner as on Dask, with the same semantics (triggers,
retries, timeouts, markers), so ``pdb`` and ``breakpoint()`` work inside tasks.
Outputs are dropped as soon as no later step needs them.
"""
from __future__ import annotations

import time
from collections import Counter
from typing import Any

from taskflow.engine.plan import Plan, PlannedTask, Probe
from taskflow.engine.markers import state_probe
from taskflow.engine.task_runner import run_task
from taskflow.executors.base import Executor, OnEvent, Outcome

__all__ = ["LocalExecutor"]


class LocalExecutor(Executor):
    """Runs every task of a flow in the calling process, sequentially.

    Examples
    --------
    >>> from taskflow.executors import LocalExecutor
    >>> run = etl.run(n=10, executor=LocalExecutor())  # doctest: +SKIP
    """

    def __repr__(self) -> str:
        return "LocalExecutor()"

    def execute(self, plan: Plan, on_event: OnEvent) -> Outcome:
        wanted = set(plan.wanted_keys)
        needed = Counter(d for s in plan.steps if isinstance(s, PlannedTask) for d in s.deps)
        needed.update(s.of for s in plan.steps if isinstance(s, Probe))
        values: dict[Any, Any] = {}
        for step in plan.steps:
            if isinstance(step, Probe):
                values[step.key] = state_probe(values[step.of])
                deps = [step.of]
            else:
                deps = step.deps
                values[step.key] = run_task(
                    step.spec, [values[d] for d in deps], emit=on_event, wait=time.sleep,
                    worker="local",
                )
            for d in deps:
                needed[d] -= 1
                if needed[d] == 0 and d not in wanted:
                    del values[d]
        return Outcome(values={k: values[k] for k in plan.return_keys})
