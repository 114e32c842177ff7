"""The flow graph: nodes, handles, and the builder that records them.

Inside a flow, calling a task does not run it: the active :class:`FlowBuilder`
records a :class:`TaskNode` and the call returns a :class:`Handle` to it.
Arguments are stored as *templates*: the same nested lists, tuples, dicts and
sets the user passed, with every handle replaced by a :class:`Ref` (to a task
node) or a :class:`ParamRef` (to a flow parameter).  The engine later swaps
those markers for values (:func:`substitute`).

Nothing here runs anything or knows about Dask.
"""
from __future__ import annotations

import contextvars
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from taskflow.arguments import binds, flatten, unmapped
from taskflow.exceptions import FlowDefinitionError
from taskflow.nesting import iter_leaves, substitute

__all__ = [
    "FlowBuilder",
    "FlowGraph",
    "GraphTask",
    "Handle",
    "ParamRef",
    "ParameterNode",
    "Ref",
    "TaskNode",
    "current_builder",
    "substitute",
]

NO_DEFAULT: Any = object()

class GraphTask(Protocol):
    """What the graph needs of a task: :class:`taskflow.task.Task` is one.

    The graph holds tasks without importing :mod:`taskflow.task`, which
    imports this module to record its calls.
    """

    name: str

    @property
    def signature(self) -> inspect.Signature: ...


_builder: contextvars.ContextVar[FlowBuilder | None] = contextvars.ContextVar(
    "taskflow_builder", default=None
)


def current_builder() -> FlowBuilder | None:
    """The builder of the flow being defined right now, if any."""
    return _builder.get()


# The small tasks operators on handles add (``add``, ``getitem``, ``flatten``...): made
# by taskflow.operators, which registers them here when ``import taskflow`` runs (this
# module knows no Task: the graph layer imports upwards nothing).
_operator_tasks: dict[str, Any] = {}


def register_operator_tasks(tasks: dict[str, Any]) -> None:
    """Make ``tasks`` (name to task) the ones operators on handles add."""
    _operator_tasks.update(tasks)


def operator_task(name: str) -> Any:
    """The task operator ``name`` adds to a flow's graph."""
    return _operator_tasks[name]


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to task node ``id`` inside an argument template (one per node,
    shared by every template that uses the node's output)."""

    id: int


@dataclass(frozen=True)
class ParamRef:
    """A reference to flow parameter ``name`` inside an argument template."""

    name: str


@dataclass(frozen=True)
class MapArg:
    """A mapped argument of a mapped task call.

    ``source`` is a :class:`Ref` (a task's output, or a mapped task's children),
    a :class:`ParamRef`, or a tuple of element templates (a constant iterable).
    With ``flatten``, the source is a list of lists and the map runs over their
    concatenation.
    """

    source: Any
    flatten: bool = False


class Handle:
    """What calling a task inside a flow returns: a placeholder for its output.

    Pass it to other tasks, nest it in lists or dicts, return it from the flow.
    It has no value while the flow is being defined, so Python control flow on
    it (``if``, ``len``, iteration) is an error: use conditional tasks
    (``taskflow.case``) or mapping (``task.map``) instead.  Arithmetic,
    comparisons (``<``, ``>``...) and indexing on it add small tasks to the
    graph (:mod:`taskflow.operators`); ``==`` keeps its Python meaning.
    """

    __slots__ = ("_builder", "_ref", "mapped", "name")

    def __init__(
        self, builder: FlowBuilder, ref: Ref | ParamRef, name: str, mapped: bool = False
    ) -> None:
        self._builder = builder
        self._ref = ref
        self.name = name
        self.mapped = mapped

    def __repr__(self) -> str:
        kind = "parameter" if isinstance(self._ref, ParamRef) else "task"
        return f"<Handle of {kind} {self.name!r}>"

    def _what(self) -> str:
        kind = "parameter" if isinstance(self._ref, ParamRef) else "task"
        return f"the output of {kind} {self.name!r}"

    def __bool__(self) -> bool:
        raise FlowDefinitionError(
            f"cannot use {self._what()} in `if`, `and`, `or` or bool() while the flow "
            "is defined: it has no value yet. Branch with conditional tasks instead: "
            "`with taskflow.case(handle, value): ...` runs the tasks inside only when "
            "the handle's value equals `value`.",
            handle=self.name,
        )

    def __iter__(self) -> Iterator[Any]:
        raise FlowDefinitionError(
            f"cannot iterate over {self._what()} while the flow is defined: it has no "
            "value yet. Use `some_task.map(handle)` to run a task on each element.",
            handle=self.name,
        )

    def __len__(self) -> int:
        raise FlowDefinitionError(
            f"cannot take len() of {self._what()} while the flow is defined: it has no "
            "value yet. Compute it inside a task.",
            handle=self.name,
        )

    # -- operators: each becomes a small task (see taskflow.operators) -------------------
    def _op(self, name: str, left: Any, right: Any) -> Handle:
        if current_builder() is not self._builder:
            raise FlowDefinitionError(
                f"`{name}` on {self._what()} works only while its flow is being defined",
                handle=self.name,
            )
        return self._builder.add_task_call(operator_task(name), (left, right), {})

    # ``==``, ``!=`` and hash keep their Python meaning (identity): see taskflow.operators
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__

    def set_upstream(self, *handles: Handle) -> Handle:
        """Make this task wait for ``handles`` (an ordering edge, no data)."""
        for h in handles:
            self._builder.add_order_edge(h, self)
        return self

    def set_downstream(self, *handles: Handle) -> Handle:
        """Make ``handles`` wait for this task (an ordering edge, no data)."""
        for h in handles:
            self._builder.add_order_edge(self, h)
        return self


def _operator(name: str, reflected: bool = False) -> Callable[[Handle, Any], Handle]:
    def method(self: Handle, other: Any) -> Handle:
        return self._op(name, other, self) if reflected else self._op(name, self, other)

    method.__name__ = f"__{'r' if reflected else ''}{name.rstrip('_')}__"
    method.__doc__ = f"A task ``{name}`` in the flow's graph (see taskflow.operators)."
    return method


# h + 1, 1 + h, h[0], h > 3...: each a small task (taskflow.operators names them)
for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "and", "or"):
    setattr(Handle, f"__{_name}__", _operator(_name))
    setattr(Handle, f"__r{_name}__", _operator(_name, reflected=True))
for _name in ("lt", "le", "gt", "ge", "getitem"):
    setattr(Handle, f"__{_name}__", _operator(_name))
del _name


#: The keyword arguments of a call given none: one shared, never-mutated dict.
NO_KWARGS: dict[str, Any] = {}
_NO_IDS: tuple[int, ...] = ()


@dataclass(slots=True)
class TaskNode:
    """One call of a task inside a flow.

    A flow of 100,000 calls holds 100,000 of these, so they are compact: slots,
    upstream ids as tuples (the shared empty one when there are none), the shared
    :data:`NO_KWARGS` for a call without keyword arguments.
    """

    id: int
    name: str
    task: GraphTask
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    data_upstream: tuple[int, ...]
    wait_for: tuple[int, ...]
    map_args: dict[int | str, MapArg] | None = None
    static_length: int | None = None

    @property
    def mapped(self) -> bool:
        return self.map_args is not None

    @property
    def upstream(self) -> tuple[int, ...]:
        """Data upstreams then ordering upstreams, without repeats."""
        if not self.wait_for:
            return self.data_upstream
        return tuple(dict.fromkeys((*self.data_upstream, *self.wait_for)))


@dataclass(frozen=True)
class ParameterNode:
    """A flow parameter; ``default`` is ``NO_DEFAULT`` when it is required."""

    name: str
    default: Any = NO_DEFAULT

    @property
    def required(self) -> bool:
        return self.default is NO_DEFAULT


@dataclass
class FlowGraph:
    """A traced flow: task nodes in a valid run order, parameters, return value."""

    name: str
    nodes: list[TaskNode]
    parameters: dict[str, ParameterNode]
    returns: Any = None
    _by_id: list[TaskNode | None] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        # node ids are 0..n-1 (the order of the calls): a list by id, not a dict
        by_id: list[TaskNode | None] = [None] * (max((n.id for n in self.nodes), default=-1) + 1)
        for n in self.nodes:
            by_id[n.id] = n
        self._by_id = by_id

    def node(self, node_id: int) -> TaskNode:
        found = self._by_id[node_id] if 0 <= node_id < len(self._by_id) else None
        if found is None:
            raise KeyError(node_id)
        return found

    def terminal(self) -> list[TaskNode]:
        """Nodes no other node depends on."""
        used = bytearray(len(self._by_id))  # a byte per node, not a set of 100,000 ints
        for n in self.nodes:
            for u in n.data_upstream:
                used[u] = 1
            for u in n.wait_for:
                used[u] = 1
        return [n for n in self.nodes if not used[n.id]]

    def return_ids(self) -> list[int]:
        """Ids of the task nodes the flow's return value refers to."""
        return list(dict.fromkeys(r.id for r in iter_leaves(self.returns) if isinstance(r, Ref)))


class FlowBuilder:
    """Records task calls, parameters and edges while a flow is defined."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.nodes: list[TaskNode] = []  # by id: node ids are 0, 1, 2... in call order
        self._forward = False  # an ordering edge made a node wait for a later one
        self.parameters: dict[str, ParameterNode] = {}
        self.returns: Any = None
        self._names: dict[str, int] = {}
        self._prefix: list[str] = []
        self.conditions: list[int] = []
        self._token: contextvars.Token[FlowBuilder | None] | None = None

    # -- activation -------------------------------------------------------------
    def __enter__(self) -> FlowBuilder:
        self._token = _builder.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._token is not None
        _builder.reset(self._token)
        self._token = None

    def prefixed(self, prefix: str) -> _Prefix:
        """Context in which new node names start with ``prefix/`` (a subflow's name,
        made unique: ``sub``, ``sub-2`` when the subflow is called twice)."""
        return _Prefix(self, self._unique_name(prefix))

    # -- recording --------------------------------------------------------------
    def add_parameter(self, name: str, default: Any = NO_DEFAULT) -> Handle:
        if not name.isidentifier():
            raise FlowDefinitionError(
                f"parameter name {name!r} of flow {self.name!r} is not a valid "
                "Python identifier", flow=self.name, parameter=name,
            )
        if name in self.parameters:
            raise FlowDefinitionError(
                f"flow {self.name!r} already has a parameter named {name!r}",
                flow=self.name, parameter=name,
            )
        self.parameters[name] = ParameterNode(name, default)
        return Handle(self, ParamRef(name), name)

    def _unique_name(self, base: str) -> str:
        base = "/".join([*self._prefix, base])
        count = self._names.get(base, 0) + 1
        self._names[base] = count
        return base if count == 1 else f"{base}-{count}"

    def to_template(self, value: Any, *, where: str) -> tuple[Any, list[int]]:
        """Replace handles in ``value`` by refs; also return the task ids used."""
        used: list[int] = []

        def leaf(v: Any) -> Any:
            if isinstance(v, MapArg):
                used.extend(r.id for r in iter_leaves(v.source) if isinstance(r, Ref))
                return v
            if isinstance(v, Handle):
                if v._builder is not self:
                    raise FlowDefinitionError(
                        f"{where} uses {v._what()}, which belongs to flow "
                        f"{v._builder.name!r}, not to flow {self.name!r}",
                        flow=self.name, handle=v.name,
                    )
                if isinstance(v._ref, Ref):
                    used.append(v._ref.id)
                return v._ref
            return v

        found = substitute(value, leaf)
        if not used:
            return found, []
        return found, used if len(used) == 1 else list(dict.fromkeys(used))

    def add_task_call(
        self,
        task: GraphTask,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        wait_for: Any = None,
        *,
        map: bool = False,
    ) -> Handle:
        """Record a call of ``task`` (a mapped call when ``map``); return its handle."""
        try:
            if not binds(task.signature, args, kwargs):
                task.signature.bind(*args, **kwargs)
        except TypeError as e:
            raise FlowDefinitionError(
                f"task {task.name!r} was called with arguments that do not fit "
                f"its signature {task.name}{task.signature}: {e}",
                task=task.name, flow=self.name,
            ) from None
        where = f"task {task.name!r}"
        map_args: dict[int | str, MapArg] | None = None
        static_length: int | None = None
        if map:
            args, kwargs, map_args, static_length = self._split_map_args(task, args, kwargs)
        else:
            if any(isinstance(a, unmapped) for a in (*args, *kwargs.values())):
                raise FlowDefinitionError(
                    f"unmapped() belongs in task.map(...) calls; task {task.name!r} was called "
                    "without .map, so it receives every argument whole already", task=task.name,
                )
            args = tuple(self._flattened(task, a) for a in args)
            kwargs = {k: self._flattened(task, v) for k, v in kwargs.items()}
        if any(isinstance(v, (unmapped, flatten)) for v in iter_leaves((args, kwargs))):
            raise FlowDefinitionError(
                f"task {task.name!r}: unmapped() and flatten() wrap a whole argument, "
                "not a value inside a list or dict", task=task.name,
            )
        (targs, tkwargs), data = self.to_template((tuple(args), dict(kwargs)), where=where)
        order: list[int] = []
        if wait_for is not None:
            items = wait_for if isinstance(wait_for, (list, tuple, set)) else [wait_for]
            bad = [w for w in items if not isinstance(w, Handle) or isinstance(w._ref, ParamRef)]
            if bad:
                raise FlowDefinitionError(
                    f"wait_for of task {task.name!r} takes handles of task calls, "
                    f"got {bad[0]!r}", task=task.name,
                )
            _, order = self.to_template(list(items), where=where)
        if self.conditions:
            order = list(dict.fromkeys([*order, *self.conditions]))
        node_id = len(self.nodes)
        node = TaskNode(
            id=node_id,
            name=self._unique_name(task.name),
            task=task,
            args=targs,
            kwargs=tkwargs or NO_KWARGS,
            data_upstream=tuple(data) if data else _NO_IDS,
            wait_for=tuple(order) if order else _NO_IDS,
            map_args=map_args,
            static_length=static_length,
        )
        self.nodes.append(node)
        return Handle(self, Ref(node_id), node.name, mapped=map)

    def _flattened(self, task: GraphTask, value: Any) -> Any:
        """A plain call's ``flatten(x)`` argument: the concatenated list (a small task)."""
        if not isinstance(value, flatten):
            return value
        inner = value.value
        if isinstance(inner, Handle):
            return self.add_task_call(operator_task("flatten"), (inner,), {})
        if is_mappable_constant(inner) and all(is_mappable_constant(e) for e in inner):
            if any(isinstance(x, Handle) for e in inner for x in e):
                return self.add_task_call(operator_task("flatten"), (inner,), {})
            return [x for e in inner for x in e]
        raise FlowDefinitionError(
            f"flatten() in task {task.name!r} takes a handle or a list of lists, got {inner!r}",
            task=task.name,
        )

    def _split_map_args(
        self, task: GraphTask, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any], dict[int | str, MapArg], int | None]:
        """Replace each mapped argument by a :class:`MapArg`; check known lengths."""
        where = f"task {task.name!r}"
        map_args: dict[int | str, MapArg] = {}
        lengths: dict[str, int] = {}

        def classify(pos: int | str, value: Any) -> Any:
            label = f"argument {pos + 1}" if isinstance(pos, int) else f"argument {pos!r}"
            if isinstance(value, unmapped):
                return value.value
            is_flat = isinstance(value, flatten)
            inner = value.value if is_flat else value
            if isinstance(inner, Handle):
                ref, _ = self.to_template(inner, where=where)
                arg = MapArg(ref, flatten=is_flat)
                if isinstance(ref, Ref) and not is_flat:
                    n = self.nodes[ref.id].static_length
                    if n is not None:
                        lengths[label] = n
            elif is_mappable_constant(inner):
                elements = tuple(inner)
                if is_flat:
                    if not all(is_mappable_constant(e) for e in elements):
                        raise FlowDefinitionError(
                            f"flatten() in {where}: {label} must be a list of lists", task=task.name
                        )
                    elements = tuple(x for e in elements for x in e)
                template, _ = self.to_template(elements, where=where)
                arg = MapArg(template)
                lengths[label] = len(elements)
            elif is_flat:
                raise FlowDefinitionError(
                    f"flatten() in {where} takes a handle or a list of lists, got {inner!r}",
                    task=task.name,
                )
            else:
                return value  # not iterable (or a str, bytes, dict): passed whole
            map_args[pos] = arg
            return arg

        new_args = tuple(classify(i, a) for i, a in enumerate(args))
        new_kwargs = {k: classify(k, v) for k, v in kwargs.items()}
        if not map_args:
            raise FlowDefinitionError(
                f"{where}.map(...) needs at least one argument to map over (a list, or the "
                "handle of a task returning a sequence); wrap arguments passed whole in "
                "unmapped(...)", task=task.name,
            )
        if len(set(lengths.values())) > 1:
            detail = ", ".join(f"{k} has {v}" for k, v in lengths.items())
            raise FlowDefinitionError(
                f"{where}.map(...) got mapped arguments of different lengths: {detail}. They "
                "are not zipped to the shortest (as Prefect 1 does): the extra elements would "
                "be dropped with no state saying so; give lists of one length",
                task=task.name, lengths=lengths,
            )
        static = next(iter(lengths.values())) if len(lengths) == len(map_args) else None
        return new_args, new_kwargs, map_args, static

    def add_order_edge(self, upstream: Handle, downstream: Handle) -> None:
        for h in (upstream, downstream):
            if not isinstance(h, Handle) or isinstance(h._ref, ParamRef):
                raise FlowDefinitionError(
                    f"ordering edges join task calls, got {h!r}", flow=self.name
                )
            if h._builder is not self:
                raise FlowDefinitionError(
                    f"{h._what()} belongs to flow {h._builder.name!r}, not {self.name!r}",
                    flow=self.name,
                )
        up, down = upstream._ref.id, downstream._ref.id  # type: ignore[union-attr]
        path = self._path(down, up)
        if path is not None:
            names = [self.nodes[i].name for i in [*path, down]]
            raise FlowDefinitionError(
                f"making {downstream.name!r} wait for {upstream.name!r} in flow "
                f"{self.name!r} would create a cycle: {' -> '.join(names)}",
                flow=self.name, cycle=names,
            )
        node = self.nodes[down]
        self._forward = self._forward or up > down
        if up not in node.wait_for:
            node.wait_for = (*node.wait_for, up)

    def _path(self, start: int, goal: int) -> list[int] | None:
        """If ``start`` is upstream of ``goal``, the ids from ``start`` to ``goal``."""
        # Walk upstream from goal: if we reach start, start is upstream of goal.
        parents: dict[int, int | None] = {goal: None}
        stack = [goal]
        while stack:
            cur = stack.pop()
            if cur == start:
                chain = []
                node: int | None = cur
                while node is not None:
                    chain.append(node)
                    node = parents[node]
                return chain  # start ... goal, upstream to downstream
            for u in self.nodes[cur].upstream:
                if u not in parents:
                    parents[u] = cur
                    stack.append(u)
        return None

    def set_return(self, value: Any) -> None:
        self.returns, _ = self.to_template(value, where=f"the return value of flow {self.name!r}")

    def freeze(self) -> FlowGraph:
        """The recorded graph, nodes in an order where upstreams come first."""
        if not self._forward:  # every upstream was called before its downstreams
            return FlowGraph(self.name, list(self.nodes), dict(self.parameters), self.returns)
        order: list[TaskNode] = []
        done: set[int] = set()
        for start in range(len(self.nodes)):
            stack = [(start, False)]
            while stack:
                nid, expanded = stack.pop()
                if nid in done:
                    continue
                if expanded:
                    done.add(nid)
                    order.append(self.nodes[nid])
                    continue
                stack.append((nid, True))
                stack.extend((u, False) for u in reversed(self.nodes[nid].upstream) if u not in done)
        return FlowGraph(self.name, order, dict(self.parameters), self.returns)


class _Prefix:
    def __init__(self, builder: FlowBuilder, prefix: str) -> None:
        self.builder, self.prefix = builder, prefix

    def __enter__(self) -> None:
        self.builder._prefix.append(self.prefix.rpartition("/")[2])

    def __exit__(self, *exc: object) -> None:
        self.builder._prefix.pop()


def is_mappable_constant(value: Any) -> bool:
    """Constants a map runs over: iterables other than strings, bytes and mappings."""
    from collections.abc import Iterable, Mapping

    return isinstance(value, Iterable) and not isinstance(value, (str, bytes, bytearray, Mapping))
