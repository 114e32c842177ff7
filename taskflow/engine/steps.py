"""The steps of a plan: what an executor runs, and what a worker receives.

Plain data, built by :mod:`taskflow.engine.plan`.  A :class:`TaskRunSpec` goes
to the worker inside a task's Dask key; the other steps are small helpers an
executor runs next to data (a state :class:`Probe`, a :class:`Length` fact, an
:class:`Item` taken out of a list).
"""
from __future__ import annotations

import itertools
import operator
import os
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Union

from taskflow.engine.markers import StateMarker
from taskflow.nesting import substitute
from taskflow.results.policy import PersistSpec

if TYPE_CHECKING:
    from taskflow.task import Task

__all__ = [
    "AT_MAP_INDEX", "Batch", "Dep", "Group", "Item", "Key", "Length", "Pick", "PlannedTask", "Probe", "RunInfo",
    "SentChild", "Slot", "Step", "TaskRunSpec",
]


Key = Union[str, tuple[Any, ...]]

# The keyword arguments of every task run called without any (one dict, never changed:
# a call copies it): 64 bytes less per run of a million.
NO_KWARGS: dict[str, Any] = {}


@dataclass(frozen=True)
class RunInfo:
    """Facts about the flow run that every task run carries (shared, pickled once)."""

    flow_name: str
    run_id: str
    topic: str
    client_pid: int
    client_host: str
    log_level: int
    limits: tuple[tuple[str, int], ...] = ()  # concurrency limits by tag, sorted
    hook_timeout: float | None = None  # seconds a state hook may run (taskflow.hooks.timeout)

    def is_client_process(self) -> bool:
        """True when running inside the process that runs the flow."""
        pid, host = _this_process()
        return pid == self.client_pid and host == self.client_host

    def __reduce__(self) -> tuple[Any, ...]:
        # a bare tuple: it travels with every task of the run, so keep it small; made
        # again once per run in a process, not once per task run (_run_info)
        return (_run_info, _run_fields(self))


# the run facts unpickled last in this process, by their fields: every task run of a
# flow run carries the same, so a worker makes one RunInfo per run, not one per task
_RUNS: dict[tuple[Any, ...], RunInfo] = {}
_RUNS_KEPT = 64


def _run_info(*values: Any) -> RunInfo:
    try:
        return _RUNS[values]
    except KeyError:
        pass
    except TypeError:  # unhashable (not made by RunInfo.__reduce__)
        return RunInfo(*values)
    if len(_RUNS) >= _RUNS_KEPT:
        _RUNS.clear()
    run = _RUNS[values] = RunInfo(*values)
    return run


_process: tuple[int, str] = (-1, "")


def _this_process() -> tuple[int, str]:
    """This process's id and host name (asked once per process: it is asked per task run)."""
    global _process
    pid = os.getpid()
    if _process[0] != pid:
        _process = (pid, socket.gethostname())
    return _process


@dataclass(frozen=True, slots=True)
class Slot:
    """Position ``index`` in the list of upstream values a task run receives."""

    index: int

    def __reduce__(self) -> tuple[Any, ...]:
        # a dataclass with slots pickles through dataclasses.fields() (slow, and once per
        # upstream of every task run the scheduler sends a worker); the first slots are
        # made once per process (_Slot_at)
        return (_Slot_at, (self.index,))


_SLOTS: list[Slot] = []


def _Slot_at(index: int) -> Slot:
    """``Slot(index)``, shared for the first few (immutable: any copy will do)."""
    if 0 <= index < 32:
        if not _SLOTS:
            _SLOTS.extend(Slot(i) for i in range(32))
        return _SLOTS[index]
    return Slot(index)


class _AtMapIndex:
    """The index of :data:`AT_MAP_INDEX`: the task run's own map index."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "AT_MAP_INDEX"

    def __reduce__(self) -> str:
        return "AT_MAP_INDEX"  # the one instance, by name


#: A :class:`Pick` index meaning "the task run's own map index": child ``i`` of a map
#: takes element ``i``, so every child of that map has the same arguments (one
#: template for all, :class:`PlannedTask` ``alike``)
AT_MAP_INDEX: Any = _AtMapIndex()


@dataclass(frozen=True, slots=True)
class Pick:
    """Element ``index`` of upstream value ``slot`` (a small source, indexed in the task);
    by default (:data:`AT_MAP_INDEX`) the element at the task run's map index."""

    slot: int
    index: int | tuple[int, int] = AT_MAP_INDEX

    def __reduce__(self) -> tuple[Any, ...]:
        if self.index is AT_MAP_INDEX:
            return (Pick, (self.slot,))
        return (Pick, (self.slot, self.index))


@dataclass(frozen=True)
class Group:
    """An upstream that arrives as the list of a mapped task's children outputs."""

    name: str
    size: int

    def names(self) -> list[str]:
        return [f"{self.name}[{i}]" for i in range(self.size)]


@dataclass(frozen=True, eq=False, slots=True)
class TaskRunSpec:
    """What a worker needs to run one task run.

    Compared and hashed by identity, and tokenized by run and name: Dask
    tokenizes every object embedded in a graph, and walking the task's function
    for each of thousands of specs would cost more than running them.
    """

    run: RunInfo
    name: str
    key: Key
    task: Task[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    upstream: tuple[str | Group, ...]
    templated: bool = True
    map_index: int | None = None
    persist: PersistSpec | None = None

    def __dask_tokenize__(self) -> tuple[str, str, str]:
        return ("taskflow.TaskRunSpec", self.run.run_id, self.name)

    def __reduce__(self) -> tuple[Any, ...]:
        # positional, without field names: one of these goes to a worker per task run
        return (TaskRunSpec, _spec_fields(self))

    def sent(self) -> TaskRunSpec:
        """This spec without its arguments: what the client keeps of a task run sent
        to a cluster (which has its own copy), a few hundred bytes less per run."""
        return TaskRunSpec(self.run, self.name, self.key, self.task, (), NO_KWARGS,
                           self.upstream, False, self.map_index, self.persist)

    def build_arguments(self, values: list[Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The call's arguments, with each :class:`Slot` replaced by its value."""
        if not self.templated:
            return self.args, self.kwargs

        def leaf(v: Any) -> Any:
            if type(v) is Slot:
                return values[v.index]
            if type(v) is Pick:
                if v.index is AT_MAP_INDEX:
                    return values[v.slot][self.map_index]
                if isinstance(v.index, tuple):
                    return values[v.slot][v.index[0]][v.index[1]]
                return values[v.slot][v.index]
            return v

        return substitute(self.args, leaf), substitute(self.kwargs, leaf)


_SPEC_FIELDS = tuple(f.name for f in fields(TaskRunSpec))
# what __reduce__ sends: the fields in order, read in one C call (once per task run sent)
_spec_fields = operator.attrgetter(*_SPEC_FIELDS)
_run_fields = operator.attrgetter(*(f.name for f in fields(RunInfo)))


# a key, a group of keys (a list, or a mapped task's children as a sequence made when
# read: no list of a million keys kept), or the marker of an upstream that could not run
Dep = Union[Key, Sequence[Key], StateMarker]


@dataclass(slots=True)
class PlannedTask:
    """A task run: its spec, the keys it depends on (aligned with ``spec.upstream``).

    ``alike``: a mapped child that differs from its siblings only by its index (its
    name ``node[i]``, key ``(base, i)`` and map index); its arguments, upstream and
    deps are the very objects its alike siblings have, so an executor can send one
    template for all of them.
    """

    spec: TaskRunSpec
    deps: list[Dep]
    keep: bool = False
    alike: bool = False

    @property
    def key(self) -> Key:
        return self.spec.key

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def annotations(self) -> dict[str, Any]:
        """Dask annotations for this run's key (resources, priority)."""
        t = self.spec.task
        out: dict[str, Any] = {}
        if t.resources:
            out["resources"] = dict(t.resources)
        if t.priority:
            out["priority"] = t.priority
        return out

    def dep_keys(self) -> list[Key]:
        """Every key this run depends on, groups flattened."""
        out: list[Key] = []
        for d in self.deps:
            if isinstance(d, (str, tuple)):
                out.append(d)
            elif not isinstance(d, StateMarker):  # a group: a mapped task's children
                out.extend(d)
        return out


class SentChild:
    """What the client keeps of a mapped child sent to a cluster (which has the rest):
    its key, its dependencies and upstream names (shared by the children of a node,
    mostly), its node's name and ``keep``.  Reads as a :class:`PlannedTask` and as its
    spec (``name``, ``key``, ``map_index``, ``upstream``, :meth:`dep_keys`) for what
    the client asks after the run; about 180 bytes less than one, per child.
    """

    __slots__ = ("key", "deps", "upstream", "_node")

    def __init__(self, planned: PlannedTask, node: tuple[str, bool], shared: dict[Any, Any]) -> None:
        spec = planned.spec
        self.key = spec.key
        deps: Any = tuple(planned.deps)
        if all(type(d) is str for d in deps):  # the same for every child (a map over a list)
            deps = shared.setdefault(deps, deps)
        self.deps = deps
        self.upstream = spec.upstream
        self._node = node  # (node name, keep), one per node

    @property
    def name(self) -> str:
        return f"{self._node[0]}[{self.key[1]}]"

    @classmethod
    def of(cls, key: Key, deps: Any, upstream: tuple[str | Group, ...],
           node: tuple[str, bool]) -> SentChild:
        """A SentChild from its parts (what a plan keeps of its node's children)."""
        child = cls.__new__(cls)
        child.key, child.deps, child.upstream, child._node = key, deps, upstream, node
        return child

    @property
    def node(self) -> str:
        """Its mapped node's name (``load`` for ``load[3]``)."""
        return self._node[0]

    @property
    def map_index(self) -> int:
        return self.key[1]  # type: ignore[no-any-return]

    @property
    def keep(self) -> bool:
        return self._node[1]

    @property
    def spec(self) -> SentChild:
        return self

    def dep_keys(self) -> list[Key]:
        return PlannedTask.dep_keys(self)  # type: ignore[arg-type]


@dataclass
class Probe:
    """Reports the state of ``of`` without moving its data (for ordering edges)."""

    key: Key
    of: Key


@dataclass
class Length:
    """A fact the plan needs: the length of ``of`` (with ``nested``, of each element)."""

    key: Key
    of: Key
    nested: bool = False


@dataclass
class Item:
    """Element ``index`` of ``of`` (``(outer, inner)`` for a flattened source), on a worker."""

    key: Key
    of: Key
    index: int | tuple[int, int]


Step = Union[PlannedTask, Probe, Length, Item]


class Batch:
    """Steps that became known, in an order where every step comes after the steps it
    depends on, and events for mapped parents that resolved.

    A batch may be made as it is taken: a map of a million children is planned a
    window at a time (:meth:`take`), so its first children can run before the last
    are planned.  :attr:`steps` makes (and returns) every step not taken yet;
    :attr:`events` grows as steps are made.

    Examples
    --------
    >>> b = Batch(source=iter([Probe("a_state-1", "a-1"), Probe("b_state-1", "b-1")]))
    >>> [s.key for s in b.take(1)], b.exhausted, [s.key for s in b.steps]
    (['a_state-1'], False, ['b_state-1'])
    """

    __slots__ = ("_made", "_source", "events")

    def __init__(self, steps: list[Step] | None = None,
                 events: list[dict[str, Any]] | None = None,
                 source: Iterator[Step] | None = None) -> None:
        self._made: list[Step] = list(steps or [])
        self._source = source
        self.events: list[dict[str, Any]] = list(events or [])

    @property
    def steps(self) -> list[Step]:
        """Every step not taken yet (made now if it was not)."""
        self.force()
        return self._made

    def force(self) -> None:
        """Make every step still to be made (the plan is about to change)."""
        if self._source is not None:
            source, self._source = self._source, None
            self._made.extend(source)

    def take(self, n: int) -> list[Step]:
        """The next ``n`` steps at most (fewer when the batch ends), made if needed."""
        while len(self._made) < n and self._source is not None:
            more = list(itertools.islice(self._source, n - len(self._made)))
            if not more:
                self._source = None
            self._made.extend(more)
        out, self._made = self._made[:n], self._made[n:]
        return out

    def fits(self, n: int) -> bool:
        """True when the steps not taken yet are ``n`` at most (makes ``n + 1`` at most)."""
        while len(self._made) <= n and self._source is not None:
            more = list(itertools.islice(self._source, n + 1 - len(self._made)))
            if not more:
                self._source = None
            self._made.extend(more)
        return len(self._made) <= n

    @property
    def exhausted(self) -> bool:
        """True when every step was taken."""
        if not self._made and self._source is not None:
            self._made.extend(itertools.islice(self._source, 1))
            if not self._made:
                self._source = None
        return not self._made and self._source is None

    def __repr__(self) -> str:
        return f"<Batch {len(self._made)} made{', more to make' if self._source else ''}>"
