"""Run a plan in this process, one step after another (for debugging).

The same worker-side runner as on Dask, with the same semantics (triggers,
retries, timeouts, markers, mapping), so ``pdb`` and ``breakpoint()`` work
inside tasks.  Outputs are dropped as soon as no later step needs them.
Concurrency limits by tag hold trivially within a run (one task at a time);
runs in several threads of one process share a threading semaphore per tag
(:func:`taskflow.concurrency.local_slots`).
"""
from __future__ import annotations

import time
from collections import Counter, deque
from typing import Any

from taskflow.concurrency import local_slots
from taskflow.engine.collections import LocalCollections
from taskflow.engine.markers import StateMarker, item_of, length_of, state_probe
from taskflow.engine.plan import Batch, Item, Length, Plan, PlannedTask, Probe, Step
from taskflow.engine.task_runner import run_task
from taskflow.executors.base import Executor, OnEvent, Outcome

__all__ = ["LocalExecutor"]


def _deps(step: Step) -> list[Any]:
    if isinstance(step, PlannedTask):
        return step.dep_keys()
    return [step.of]


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
        values: dict[Any, Any] = {}
        queue: deque[Step] = deque()
        uses: Counter[Any] = Counter()
        keep: set[Any] = set()
        later: set[Any] = set()

        def take(batch: Batch) -> None:
            nonlocal later
            for event in batch.events:
                on_event(event)
            for step in batch.steps:
                uses.update(_deps(step))
                if isinstance(step, PlannedTask) and step.keep:
                    keep.add(step.key)
            queue.extend(batch.steps)
            later = plan.needed_later()

        run_id = plan.run.run_id
        self.cancellations.started(run_id)
        try:
            take(plan.start())
            while queue and not self.cancellations.reason(run_id):
                step = queue.popleft()
                if isinstance(step, Probe):
                    values[step.key] = state_probe(values[step.of])
                elif isinstance(step, Item):
                    values[step.key] = item_of(values[step.of], step.index)
                elif isinstance(step, Length):
                    values[step.key] = length_of(values[step.of], step.nested)
                    take(plan.add_lengths({step.key: values[step.key]}))
                else:
                    upstream = [
                        d if isinstance(d, StateMarker)
                        else values[d] if isinstance(d, (str, tuple))
                        else [values[k] for k in d]
                        for d in step.deps
                    ]
                    values[step.key] = run_task(
                        step.spec, upstream, emit=on_event, wait=time.sleep, worker="local",
                        slots=local_slots,
                        collections=_COLLECTIONS,
                    )
                for d in _deps(step):
                    uses[d] -= 1
                    if uses[d] <= 0 and d not in keep and d not in later:
                        values.pop(d, None)
            return Outcome(values={k: values[k] for k in plan.return_keys() if k in values},
                           cancelled=self.cancellations.reason(run_id))
        finally:
            self.cancellations.finished(run_id)


_COLLECTIONS = LocalCollections()  # returned collections: persisted by Dask's default scheduler
