"""What one task key carries to a worker: a compact spec, and the run's facts once.

The scheduler pickles each task's spec on its own, once per task it sends a
worker, so whatever every task run of a window shares (the flow run's
:class:`~taskflow.engine.steps.RunInfo`, and the :class:`~taskflow.task.Task`
objects: by reference, or whole functions by value for a flow defined in a
script or a notebook) would travel, and be pickled by the scheduler, once per
task.  Here it travels once per worker process instead:

* :class:`RunFacts` holds what the task runs of one window of a flow run share,
  under a random ``token``;
* :class:`SentTask` is the function behind a task key: the task run's own parts
  (its name, key, upstream names, arguments, the index of its Task in the
  facts), and the facts, which it pickles whole only where they must be: from
  the client (one graph, one copy of the facts), and in *carriers* (the
  window's tasks that can start at once: all of them in a small window such as
  a run's first, a few in a wide one); every other task sent to a worker
  carries the token (14 bytes).  A run's later windows send the facts of its
  earlier ones again, under the same token, for the Tasks those hold, so a
  worker that ran the first window's tasks has what the later ones need.

A worker keeps the facts it has seen (:data:`_ALIVE` while anything refers to
them, the last :data:`_KEPT_AT_MOST` used ones besides).  A task whose facts the
worker does not have (it joined the cluster late, restarted, or got no carrier
first) asks the scheduler for them, once: the scheduler holds them as long as
any task of the window is there (:func:`facts_on_scheduler`).

Examples
--------
>>> import pickle
>>> from taskflow.engine.steps import RunInfo
>>> facts = RunFacts(RunInfo("f", "r1", "taskflow", 1, "h", 30), ())
>>> copy = pickle.loads(pickle.dumps(facts))
>>> copy.token == facts.token, copy.origin, pickle.loads(pickle.dumps(copy)) is copy
(True, False, True)
"""
from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from typing import Any

from taskflow.engine.steps import NO_KWARGS, Group, Key, RunInfo, Slot, TaskRunSpec
from taskflow.engine.task_runner import in_order
from taskflow.exceptions import TaskflowError
from taskflow.executors.dask_whole import Whole, hold, unwrap
from taskflow.executors.dask_worker import run_kept_on_worker, run_on_worker
from taskflow.results.policy import PersistSpec

__all__ = ["RunFacts", "SentTask", "facts_on_scheduler"]


class RunFacts:
    """What the task runs of one window of a flow run share, under a random token."""

    __slots__ = ("token", "run", "tasks", "origin", "__weakref__")

    def __init__(self, run: RunInfo, tasks: tuple[Any, ...], token: bytes | None = None,
                 origin: bool = True) -> None:
        self.token = os.urandom(12) if token is None else token
        self.run, self.tasks = run, tasks
        # made here (the client), not unpickled: always sent whole.  Not remembered in
        # _ALIVE: a scheduler in this same process unpickles its own copy (not one of
        # these), which sends the token
        self.origin = origin

    def __reduce__(self) -> tuple[Any, ...]:
        return (_facts, (self.token, self.run, self.tasks))

    def __repr__(self) -> str:
        return f"<RunFacts {self.token.hex()} of run {self.run.run_id[:8]}, {len(self.tasks)} tasks>"


# token -> facts, while anything in this process refers to them (on the scheduler: the
# tasks it holds); and the last ones a task ran with (on a worker: specs do not live long)
_ALIVE: weakref.WeakValueDictionary[bytes, RunFacts] = weakref.WeakValueDictionary()
_KEPT: OrderedDict[bytes, RunFacts] = OrderedDict()
_KEPT_AT_MOST = 32
_lock = threading.Lock()


def _facts(token: bytes, run: RunInfo, tasks: tuple[Any, ...]) -> RunFacts:
    """Unpickled facts: the copy this process has already, else these (remembered)."""
    found = _ALIVE.get(token)
    if found is not None:
        return found
    with _lock:
        found = _ALIVE.get(token)
        if found is None:
            found = _ALIVE[token] = RunFacts(run, tasks, token, origin=False)
    return found


def _keep(facts: RunFacts) -> None:
    """Keep ``facts`` alive here for the window's next tasks (a worker's specs come and go)."""
    if _KEPT.get(facts.token) is facts:
        return
    with _lock:
        _KEPT[facts.token] = facts
        while len(_KEPT) > _KEPT_AT_MOST:
            _KEPT.popitem(last=False)


def facts_on_scheduler(token: bytes) -> RunFacts | None:
    """Through the scheduler's ``run_function``: the facts of ``token`` it holds, if any."""
    return _ALIVE.get(token)


def _fetch(token: bytes) -> RunFacts:
    """The facts of ``token``, asked of the scheduler (a worker that has not seen them)."""
    from distributed import get_worker
    from distributed.protocol import pickle
    from distributed.utils import sync

    found = _ALIVE.get(token)
    if found is not None:
        return found
    worker = get_worker()
    response = sync(worker.loop, worker.scheduler.run_function,
                    function=pickle.dumps(facts_on_scheduler), args=pickle.dumps((token,)))
    facts = response.get("result") if response.get("status") == "OK" else None
    if not isinstance(facts, RunFacts):
        raise TaskflowError(
            f"worker {worker.address} could not get the facts of its flow run "
            f"(token {token.hex()}) from the scheduler: {response.get('exception') or 'none there'}",
            token=token.hex(),
        )
    return facts


# a SentTask's map index when it stands for alike children, whose Dask tasks pass theirs
_LAST = -1

# the fields of a SentTask after its facts, and what each is when left out of its pickle
_FIELDS = ("index", "name", "key", "upstream", "args", "kept", "kwargs", "templated",
           "map_index", "persist", "carrier", "whole")
_DEFAULTS: tuple[Any, ...] = (None, False, NO_KWARGS, True, None, None, False, False)
_FIRST_DEFAULTED = len(_FIELDS) - len(_DEFAULTS)  # index, name, key, upstream are always sent

_SPEC_FIELDS = ("run", "name", "key", "task", "args", "kwargs", "upstream", "templated",
                "map_index", "persist")


def _spec_maker() -> Any:
    """``TaskRunSpec(*fields)``, made in half the time: its slots set one by one (it is
    frozen: its ``__init__`` sets each through ``object.__setattr__``), once per task run."""
    import dataclasses

    if tuple(f.name for f in dataclasses.fields(TaskRunSpec)) != _SPEC_FIELDS:
        return TaskRunSpec  # pragma: no cover - the spec changed: its own constructor
    s0, s1, s2, s3, s4, s5, s6, s7, s8, s9 = (TaskRunSpec.__dict__[n].__set__ for n in _SPEC_FIELDS)
    new = object.__new__

    def make(run: RunInfo, name: str, key: Key, task: Any, args: tuple[Any, ...],
             kwargs: dict[str, Any], upstream: tuple[str | Group, ...], templated: bool,
             map_index: int | None, persist: PersistSpec | None) -> TaskRunSpec:
        spec = new(TaskRunSpec)
        s0(spec, run); s1(spec, name); s2(spec, key); s3(spec, task); s4(spec, args)  # noqa: E702
        s5(spec, kwargs); s6(spec, upstream); s7(spec, templated); s8(spec, map_index)  # noqa: E702
        s9(spec, persist)
        return spec

    return make


_make_spec = _spec_maker()


class SentTask:
    """The function behind a task run's Dask key: its spec as it travels.

    Called by Dask with the upstream values, it rebuilds the task run's
    :class:`~taskflow.engine.steps.TaskRunSpec` from its parts and the facts of
    its window, and runs it (:func:`~taskflow.executors.dask_worker.run_on_worker`).
    Compared and hashed by identity, and tokenized by run and name.
    """

    __slots__ = ("facts", *_FIELDS)

    facts: RunFacts | bytes
    index: int
    name: str
    key: Key
    upstream: tuple[str | Group, ...]
    args: tuple[Any, ...] | None
    kept: bool
    kwargs: dict[str, Any]
    templated: bool
    map_index: int | None
    persist: PersistSpec | None
    carrier: bool
    whole: bool  # a map runs over its output: a long list is held whole (dask_whole)

    @classmethod
    def of(cls, spec: TaskRunSpec, facts: RunFacts, index: int, *, kept: bool = False,
           carrier: bool = False, whole: bool = False) -> SentTask:
        """The sent form of ``spec``, whose Task is ``facts.tasks[index]``."""
        args: tuple[Any, ...] | None = spec.args
        if (spec.templated and not spec.kwargs and len(spec.args) == len(spec.upstream)
                and all(type(a) is Slot and a.index == i for i, a in enumerate(spec.args))):
            args = None
        return _sent(facts, index, spec.name, spec.key, spec.upstream, args, kept, spec.kwargs,
                     spec.templated, spec.map_index, spec.persist, carrier, whole)

    @classmethod
    def alike(cls, spec: TaskRunSpec, facts: RunFacts, index: int) -> SentTask:
        """One for all the alike children of a map (``PlannedTask.alike``) in a window,
        ``spec`` being any of them: each child's Dask task passes its index last."""
        assert isinstance(spec.key, tuple) and spec.map_index is not None
        sent = cls.of(spec, facts, index)
        sent.name, sent.key, sent.map_index = spec.name.rpartition("[")[0], spec.key[0], _LAST
        return sent

    def __call__(self, *upstream: Any) -> Any:
        facts = self.facts
        if type(facts) is not RunFacts:  # the worker had not seen them when this arrived
            facts = _ALIVE.get(facts) or _fetch(facts)  # type: ignore[arg-type]
            self.facts = facts
        if not facts.origin:
            _keep(facts)
        for v in upstream:
            if type(v) is Whole or type(v) is list:  # a list a map runs over, held whole
                upstream = _unwrapped(upstream, self.upstream)
                break
        name, key, map_index = self.name, self.key, self.map_index
        if map_index == _LAST:  # one of alike children: its index comes last
            map_index = upstream[-1]
            upstream = upstream[:-1]
            name, key = f"{name}[{map_index}]", (key, map_index)
        args = self.args if self.args is not None else in_order(len(self.upstream))
        spec = _make_spec(facts.run, name, key, facts.tasks[self.index], args,
                          self.kwargs, self.upstream, self.templated, map_index,
                          self.persist)
        out = (run_kept_on_worker if self.kept else run_on_worker)(spec, *upstream)
        return hold(out) if self.whole else out

    def __reduce__(self) -> tuple[Any, ...]:
        facts: Any = self.facts
        if type(facts) is RunFacts and not (facts.origin or self.carrier):
            facts = facts.token  # from the scheduler to a worker: the worker has them, or asks
        values = (facts, self.index, self.name, self.key, self.upstream, self.args, self.kept,
                  self.kwargs, self.templated, self.map_index, self.persist, self.carrier,
                  self.whole)
        end = len(values)
        while end > _FIRST_DEFAULTED + 1 and values[end - 1] == _DEFAULTS[end - 2 - _FIRST_DEFAULTED]:
            end -= 1
        return (_sent, values[:end])

    def __dask_tokenize__(self) -> tuple[str, str, str]:
        facts = self.facts
        run = facts.run.run_id if type(facts) is RunFacts else facts.hex()  # type: ignore[union-attr]
        return ("taskflow.SentTask", run, self.name)

    def __repr__(self) -> str:
        return f"<SentTask {self.name!r}>"


def _unwrapped(upstream: tuple[Any, ...], names: tuple[str | Group, ...]) -> tuple[Any, ...]:
    """``upstream`` with each :class:`~taskflow.executors.dask_whole.Whole` unwrapped,
    in a group's values too."""
    out = list(upstream)
    for i, v in enumerate(out):
        if type(v) is Whole:
            out[i] = v.value
        elif (type(v) is list and i < len(names) and type(names[i]) is Group
                and any(type(x) is Whole for x in v)):
            out[i] = [unwrap(x) for x in v]
    return tuple(out)


def _sent(facts: RunFacts | bytes, index: int, name: str, key: Key,
          upstream: tuple[str | Group, ...], args: tuple[Any, ...] | None = None,
          kept: bool = False, kwargs: dict[str, Any] = NO_KWARGS, templated: bool = True,
          map_index: int | None = None, persist: PersistSpec | None = None,
          carrier: bool = False, whole: bool = False) -> SentTask:
    """A SentTask from its fields (how one is unpickled)."""
    if type(facts) is bytes:
        facts = _ALIVE.get(facts) or facts
    t = SentTask.__new__(SentTask)
    t.facts, t.index, t.name, t.key, t.upstream, t.args = facts, index, name, key, upstream, args
    t.kept, t.kwargs, t.templated, t.map_index, t.persist, t.carrier, t.whole = (
        kept, kwargs, templated, map_index, persist, carrier, whole)
    return t
