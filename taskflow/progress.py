"""Progress of one flow run: task runs done, failed and running, as they happen.

:class:`RunProgress` is a run observer that counts the state events of the first
run that starts after it is registered; :class:`ProgressBar` draws those counts
on a terminal line from its own thread, a few times a second, so the event
hook stays a dict assignment.  The ``taskflow run`` command uses both; they
work the same from a notebook or a script.

The total counts every task of the flow: each task run the plan knows, and
each mapped task that has no children (yet: it grows when a mapped task
learns its length at run time; or ever: its upstream failed, or it mapped
over nothing) as one.  Mapped parents with children are not counted, their
children are.

At a million task runs: an event costs a few dict and array look-ups and
allocates nothing that stays (each task run's last state is one byte of a
:class:`~taskflow.state_table.StateTable`, mapped children in one array per
mapped task, no object per child); the bar redraws at most once per
``interval``, and what it asks of the plan (its total, which mapped tasks have
no children: a look at each graph node) is asked again only after twenty times
what it took, so a flow of a million nodes does not spend its client's CPU
redrawing.

Examples
--------
>>> from taskflow.engine.observers import add_observer, remove_observer
>>> progress = add_observer(RunProgress())
>>> # run = etl.run(n=10) ...
>>> remove_observer(progress)
>>> progress.counts()
Counts(total=0, done=0, failed=0, running=0)
>>> ProgressBar.render(Counts(total=10, done=4, failed=1, running=2), width=10, elapsed=3.0)
'[####------]  4/10 done, 1 failed, 2 running  0:03'
"""
from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from taskflow.engine.events import peek
from taskflow.engine.observers import RunObserver
from taskflow.state_table import StateTable
from taskflow.states import FAILED_TYPES, FINISHED_TYPES, RUNNING_TYPES

if TYPE_CHECKING:
    from taskflow.engine.plan import Plan
    from taskflow.executors.base import Executor
    from taskflow.runs import RunnableFlow

__all__ = ["Counts", "ProgressBar", "RunProgress"]



class Counts(NamedTuple):
    """Task runs of one flow run, by progress."""

    total: int
    done: int
    failed: int
    running: int


class RunProgress(RunObserver):
    """Counts the task runs of the first flow run started after registration.

    Parameters
    ----------
    on_start : callable, optional
        Called as ``on_start(run_id, flow_name, dashboard_link)`` when the run
        starts (in the thread that runs the flow).
    """

    def __init__(self, on_start: Callable[[str, str, str | None], None] | None = None) -> None:
        self.run_id: str | None = None
        self.dashboard_link: str | None = None
        self._plan: Plan | None = None
        self._states = StateTable()
        self._tally: dict[str, int] = {"done": 0, "failed": 0, "running": 0}
        self._on_start = on_start
        self._facts: tuple[int, frozenset[str]] | None = None  # the plan's total, childless
        self._facts_due = 0.0  # when to ask the plan again

    def run_started(self, *, flow: RunnableFlow, plan: Plan, executor: Executor,
                    dashboard_link: str | None, **kwargs: Any) -> None:
        if self.run_id is not None:
            return
        self.run_id, self._plan, self.dashboard_link = plan.run.run_id, plan, dashboard_link
        if self._on_start is not None:
            self._on_start(plan.run.run_id, flow.name, dashboard_link)

    def event(self, *, event: dict[str, Any], **kwargs: Any) -> None:
        seen = peek(event)
        if seen is not None and seen[0] == self.run_id:
            name, state, index = seen[1], seen[3], event.get("map_index")
            states = self._states
            before = states.state(name, index)
            states.set(name, index, state)
            if before is not None:
                self._count(before, -1)
            self._count(state, 1)

    def _count(self, state: str, by: int) -> None:
        tally = self._tally
        if state in FINISHED_TYPES:
            tally["done"] += by
        if state in FAILED_TYPES:
            tally["failed"] += by
        if state in RUNNING_TYPES:
            tally["running"] += by

    def counts(self, fresh: bool = False) -> Counts:
        """The counts now (safe from any thread; cheap at a million task runs: the
        counts are kept as events come, only mapped parents are looked at here)."""
        plan = self._plan
        if plan is None:
            return Counts(0, 0, 0, 0)
        tally = dict(self._tally)
        if fresh:
            self._facts = None
        total, standing = self._plan_facts(plan)  # mapped tasks without children count as one
        for parent in set(plan.parents) - standing:  # their children are counted instead
            state = self._states.state(parent)
            if state is not None:
                tally["done"] -= state in FINISHED_TYPES
                tally["failed"] -= state in FAILED_TYPES
                tally["running"] -= state in RUNNING_TYPES
        done = tally["done"]
        return Counts(max(total, done), done, tally["failed"], tally["running"])

    def _plan_facts(self, plan: Plan) -> tuple[int, frozenset[str]]:
        """The plan's task-run total and childless mapped tasks, asked again only after
        twenty times what asking took (they look at every graph node)."""
        now = time.monotonic()
        if self._facts is None or now >= self._facts_due:
            self._facts = (plan.task_run_count(), frozenset(plan.childless()))
            took = time.monotonic() - now
            self._facts_due = time.monotonic() + 20 * took
        return self._facts


class ProgressBar:
    """Redraws ``progress.counts()`` on one terminal line until stopped.

    Parameters
    ----------
    progress : RunProgress
    stream : file, optional
        Default: ``sys.stderr``.
    interval : float
        Seconds between redraws.
    """

    def __init__(self, progress: RunProgress, stream: IO[str] | None = None,
                 interval: float = 0.2) -> None:
        self.progress = progress
        self.stream = stream or sys.stderr
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="taskflow-progress", daemon=True)
        self._started = time.monotonic()
        self._width = 0

    @staticmethod
    def render(c: Counts, width: int = 30, elapsed: float = 0.0) -> str:
        """One line: a bar, then ``done/total``, failed, running and elapsed time."""
        filled = int(width * c.done / c.total) if c.total else 0
        digits = len(str(c.total))
        minutes, seconds = divmod(int(elapsed), 60)
        return (f"[{'#' * filled}{'-' * (width - filled)}] {c.done:>{digits}}/{c.total} done, "
                f"{c.failed} failed, {c.running} running  {minutes}:{seconds:02d}")

    def _draw(self, fresh: bool = False) -> None:
        line = self.render(self.progress.counts(fresh), elapsed=time.monotonic() - self._started)
        pad = max(0, self._width - len(line))
        self._width = len(line)
        self.stream.write("\r" + line + " " * pad)
        self.stream.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if self.progress.run_id is not None:
                self._draw()

    def start(self) -> ProgressBar:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop redrawing; draw the last counts and end the line."""
        self._stop.set()
        self._thread.join()
        if self.progress.run_id is not None:
            self._draw(fresh=True)
            self.stream.write("\n")
            self.stream.flush()
