"""How a plan expands a mapped node: its length, then one child per element.

A map over constants or parameters knows its length at once; over a task's
output it asks for a :class:`~taskflow.engine.steps.Length` fact first.  Each
child then takes its element: a constant, an element of a small upstream value
picked inside the task (:class:`~taskflow.engine.steps.Pick`), an
:class:`~taskflow.engine.steps.Item` step for a large one, or child ``i`` of
another map.  Children that take element ``i`` of one value differ only by their
index: the first one's parts (arguments, upstream, deps) are shared by the
others (``PlannedTask.alike``), made once per node instead of once per child.

:class:`MapExpansion` is the part of :class:`~taskflow.engine.plan.Plan` that does
this; it reads the plan's outputs, facts and task table.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from taskflow.engine import transitions
from taskflow.engine.markers import NotSized, StateMarker
from taskflow.engine.outputs import (
    Broken,
    Children,
    KeyDep,
    Out,
    Single,
    derived,
    param_elements,
    split,
    total,
)
from taskflow.engine.steps import (
    AT_MAP_INDEX,
    Item,
    Key,
    Length,
    PlannedTask,
    RunInfo,
    Step,
    TaskRunSpec,
)
from taskflow.graph import MapArg, ParamRef
from taskflow.nesting import substitute
from taskflow.states import State, StateType

if TYPE_CHECKING:
    from taskflow.engine.task_table import TaskTable
    from taskflow.graph import FlowGraph, TaskNode

__all__ = ["MapExpansion"]


class MapExpansion:
    """Lengths and children of mapped nodes (a base of :class:`~taskflow.engine.plan.Plan`)."""

    graph: FlowGraph
    parameters: dict[str, Any]
    run: RunInfo
    tasks: TaskTable
    waiting: set[Key]
    _base: dict[int, str]
    _out: dict[int, Out]
    _facts: dict[Key, Any]
    _asked: set[Key]
    _items: set[Key]
    _pick_limit: int
    _alike: dict[int, tuple[Any, ...]]

    def _emit_task(self, node: TaskNode, name: str, key: Key, args: Any, kwargs: Any,
                   map_index: int | None, out: list[Step]) -> Key:
        raise NotImplementedError  # pragma: no cover - the plan's

    def _ask(self, key: Key, nested: bool, out: list[Step]) -> Key:
        fact = derived(key, "lens" if nested else "len")
        if fact not in self._asked:
            self._asked.add(fact)
            self.waiting.add(fact)
            out.append(Length(fact, key, nested))
        return fact

    def _length(self, node: TaskNode, out: list[Step]) -> int | State | None:
        """The node's length; a State when it cannot expand; None while waiting."""
        assert node.map_args is not None
        lengths: dict[str, int] = {}
        broken: dict[str, State] = {}
        waiting = False
        for pos, arg in node.map_args.items():
            label = f"argument {pos + 1}" if isinstance(pos, int) else f"argument {pos!r}"
            src = arg.source
            if isinstance(src, tuple):
                lengths[label] = len(src)
            elif isinstance(src, ParamRef):
                elements = param_elements(self.parameters[src.name], arg.flatten)
                if elements is None:
                    return _failed(f"cannot map over parameter {src.name!r}: a "
                                   f"{type(self.parameters[src.name]).__name__} is not a list")
                lengths[label] = len(elements)
            else:
                up = self.graph.node(src.id)
                o = self._out[src.id]
                if isinstance(o, Broken):
                    broken[up.name] = o.marker.state
                    continue
                facts = self._source_facts(o, arg.flatten, out)
                if facts is None:
                    waiting = True
                    continue
                bad = [f for f in facts if isinstance(f, StateMarker)]
                if bad:
                    broken[up.name] = bad[0].state
                    continue
                not_sized = [f for f in facts if isinstance(f, NotSized)]
                if not_sized:
                    return _failed(f"cannot map over the output of task {up.name!r}: "
                                   f"{not_sized[0].what}")
                lengths[label] = total(o, facts, arg.flatten)
        if broken:
            decided = transitions.decide_trigger(node.task.trigger, broken)
            return decided or State(
                StateType.TRIGGER_FAILED,
                message=f"cannot map over the output of task {next(iter(broken))!r}: it did not succeed",
            )
        if waiting:
            return None
        if len(set(lengths.values())) > 1:
            detail = ", ".join(f"{k} has {v}" for k, v in lengths.items())
            return _failed(f"mapped arguments of different lengths: {detail} (they are not "
                           "zipped to the shortest: extra elements would be dropped unseen)")
        return next(iter(lengths.values()))

    def _source_facts(self, o: Out, flat: bool, out: list[Step]) -> list[Any] | None:
        """Length facts of a map source; None while any is still unknown."""
        if isinstance(o, Children) and not flat:
            return [len(o.keys)]
        if isinstance(o, Children):  # flatten over children: each child's length
            facts = [self._ask(k, False, out) for k in o.keys]
        else:
            assert isinstance(o, Single)
            facts = [self._ask(o.key, flat, out)]
        if any(f not in self._facts for f in facts):
            return None
        return [self._facts[f] for f in facts]

    def _emit_child(self, node: TaskNode, i: int, out: list[Step]) -> Key:
        assert node.map_args is not None
        key: Key = (self._base[node.id], i)
        alike = self._alike.get(node.id)
        if alike is not None:  # as its first sibling, but for its index
            spec = TaskRunSpec(self.run, f"{node.name}[{i}]", key, node.task, *alike[:4], i, None)
            planned = PlannedTask(spec, alike[4], alike[5], alike=True)
            self.tasks.add(planned)
            out.append(planned)
            return key
        odd = False  # an element this child takes that its siblings' would not be

        def element(arg: MapArg) -> Any:
            nonlocal odd
            src = arg.source
            if isinstance(src, tuple):
                odd = True
                return src[i]
            if isinstance(src, ParamRef):
                odd = True
                return param_elements(self.parameters[src.name], arg.flatten)[i]  # type: ignore[index]
            up = self.graph.node(src.id)
            o = self._out[src.id]
            odd = True
            if isinstance(o, Children) and not arg.flatten:
                return KeyDep(o.keys[i], self.tasks[o.keys[i]].name)
            of, index, nbytes = self._locate(o, i, arg.flatten)
            name = up.name if isinstance(o, Single) else self.tasks[of].name
            if nbytes <= self._pick_limit:  # small: the child takes its element
                if isinstance(o, Single) and not arg.flatten:  # element i of one value
                    odd = False
                    return KeyDep(of, name, AT_MAP_INDEX)
                return KeyDep(of, name, index)
            near = derived(of, "item")
            item: Key = (*(near if isinstance(near, tuple) else (near,)),
                         *(index if isinstance(index, tuple) else (index,)))
            if item not in self._items:
                self._items.add(item)
                out.append(Item(item, of, index))
            return KeyDep(item, name)

        def leaf(v: Any) -> Any:
            return element(v) if isinstance(v, MapArg) else v

        args, kwargs = substitute(node.args, leaf), substitute(node.kwargs, leaf)
        self._emit_task(node, f"{node.name}[{i}]", key, args, kwargs, i, out)
        planned = out[-1]
        assert type(planned) is PlannedTask
        if not odd and planned.spec.persist is None:  # its siblings can share its parts
            spec = planned.spec
            planned.alike = True
            self._alike[node.id] = (spec.args, spec.kwargs, spec.upstream, spec.templated,
                                    planned.deps, planned.keep)
        return key

    def _locate(self, o: Out, i: int, flat: bool) -> tuple[Key, int | tuple[int, int], int]:
        """Which key holds element ``i`` of a source, where inside it, and its size."""
        if isinstance(o, Single):
            fact = self._facts[derived(o.key, "lens" if flat else "len")]
            index: int | tuple[int, int] = split(fact[0], i) if flat else i
            return o.key, index, fact[1]
        assert isinstance(o, Children)
        facts = [self._facts[derived(k, "len")] for k in o.keys]
        outer, pos = split([f[0] for f in facts], i)
        return o.keys[outer], pos, facts[outer][1]


def _failed(message: str) -> State:
    return State(StateType.FAILED, message=message)
