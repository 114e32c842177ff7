"""Flows: a graph of task calls, traced before it runs.

Two ways to define one, producing the same :class:`Flow`:

* ``@flow`` on a function whose parameters are the flow's parameters.  The body
  is traced once, on first use: task calls record nodes and return handles.
* ``with Flow("name") as f:`` with :func:`Parameter` and task calls, then
  ``f.set_return(...)`` (the imperative style of Prefect 1).

Running is handed to the engine through one call (:meth:`Flow.run`); this module
imports no engine module at import time.
"""
from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from taskflow.exceptions import FlowDefinitionError, ParameterError
from taskflow.graph import NO_DEFAULT, FlowBuilder, FlowGraph, Handle, current_builder
from taskflow.hooks import Hook, normalize_hooks

if TYPE_CHECKING:
    from taskflow.deploy.schedules import Schedule
    from taskflow.deploy.serve import Deployment
    from taskflow.executors.base import Executor
    from taskflow.results import ResultStore
    from taskflow.runs import FlowRun

__all__ = ["Flow", "Parameter", "flow"]

P = ParamSpec("P")
R = TypeVar("R")

_FLOW_OPTIONS = ("name", "executor", "result_store", "checkpoint", "schedule",
                 "on_failure", "on_completion", "on_crashed", "on_cancellation")


class Flow(Generic[P, R]):
    """A named graph of task calls with parameters and a return value.

    Parameters
    ----------
    name : str
        The flow's name.
    fn : callable, optional
        The function to trace (what ``@flow`` passes).  Without one, build the
        flow in a ``with`` block.
    executor : Executor, optional
        Where runs go by default (default: a DaskExecutor on the embedded
        LocalCluster, or on ``taskflow.executor.address``).
    result_store : str or ResultStore, optional
        Where checkpoints, targets and cache entries go: a URL
        (``"file:///data/runs"``, ``"s3://bucket/prefix"``) or a
        :class:`~taskflow.results.ResultStore` (default: ``taskflow.results.store``).
    checkpoint : bool, optional
        Checkpoint every task's output (a task's own ``checkpoint=`` wins; default:
        ``taskflow.results.checkpoint``, false).  Nothing is written unless asked.
    schedule : Schedule, optional
        When ``taskflow serve`` and :meth:`serve` start its runs by default.
    on_failure, on_completion, on_crashed, on_cancellation : callable or list, optional
        Flow hooks, called ``hook(flow, flow_run, state)`` in the process that
        ran the flow when a run ends FAILED, SUCCESS/CACHED, CRASHED or
        CANCELLED (see :mod:`taskflow.hooks`).

    Examples
    --------
    >>> from taskflow import Flow, Parameter, task
    >>> @task
    ... def double(x):
    ...     return 2 * x
    >>> with Flow("doubler") as f:
    ...     n = Parameter("n", default=2)
    ...     f.set_return(double(n))
    >>> sorted(f.parameters)
    ['n']
    """

    def __init__(
        self,
        name: str | None = None,
        fn: Callable[P, R] | None = None,
        *,
        executor: Executor | None = None,
        result_store: str | ResultStore | None = None,
        checkpoint: bool | None = None,
        schedule: Schedule | None = None,
        on_failure: Hook | Iterable[Hook] | None = None,
        on_completion: Hook | Iterable[Hook] | None = None,
        on_crashed: Hook | Iterable[Hook] | None = None,
        on_cancellation: Hook | Iterable[Hook] | None = None,
    ) -> None:
        if name is None:
            if fn is None:
                raise FlowDefinitionError("a Flow needs a name or a function")
            name = fn.__name__
        if not isinstance(name, str) or not name:
            raise FlowDefinitionError(f"a flow's name must be a non-empty string, got {name!r}")
        self.name = name
        self.fn = fn
        self.executor = executor
        if result_store is not None and not (
            isinstance(result_store, str) and result_store or hasattr(result_store, "load")
        ):
            raise FlowDefinitionError(
                f"flow {name!r}: result_store must be a URL string (file://..., s3://...) "
                f"or a taskflow.results.ResultStore, got {result_store!r}", flow=name,
            )
        if checkpoint is not None and not isinstance(checkpoint, bool):
            raise FlowDefinitionError(
                f"flow {name!r}: checkpoint must be True, False or None, got {checkpoint!r}",
                flow=name,
            )
        if schedule is not None and not callable(getattr(schedule, "due_between", None)):
            raise FlowDefinitionError(
                f"flow {name!r}: schedule must be a taskflow Schedule "
                f"(IntervalSchedule('15m'), CronSchedule('0 * * * *')), got {schedule!r}",
                flow=name,
            )
        self.result_store = result_store
        self.checkpoint = checkpoint
        self.schedule = schedule
        owner = f"flow {name!r}"
        self.on_failure = normalize_hooks(on_failure, option="on_failure", owner=owner)
        self.on_completion = normalize_hooks(on_completion, option="on_completion", owner=owner)
        self.on_crashed = normalize_hooks(on_crashed, option="on_crashed", owner=owner)
        self.on_cancellation = normalize_hooks(on_cancellation, option="on_cancellation",
                                               owner=owner)
        self._graph: FlowGraph | None = None
        self._builder: FlowBuilder | None = None
        self._hints: dict[str, Any] | None = None  # parameter type hints, read on first run
        self._adapters: dict[str, Any] = {}
        if fn is not None:
            self.__doc__ = fn.__doc__
            self.__wrapped__ = fn
            self._check_signature()

    def __repr__(self) -> str:
        return f"<Flow {self.name!r}>"

    def with_options(self, **changes: Any) -> Flow[P, R]:
        """A copy of this flow with some options changed (the same graph).

        Options: ``name``, ``executor``, ``result_store``, ``checkpoint``,
        ``schedule``, ``on_failure``, ``on_completion``, ``on_crashed``,
        ``on_cancellation``.

        Examples
        --------
        >>> @flow
        ... def etl():
        ...     pass
        >>> etl.with_options(on_failure=[print]).on_failure
        (<built-in function print>,)
        """
        unknown = set(changes) - set(_FLOW_OPTIONS)
        if unknown:
            raise FlowDefinitionError(
                f"flow {self.name!r}: unknown option(s) {sorted(unknown)}; "
                f"valid options are {list(_FLOW_OPTIONS)}", flow=self.name,
            )
        options = {k: getattr(self, k) for k in _FLOW_OPTIONS}
        options.update(changes)
        copy = Flow(options.pop("name"), self.fn, **options)
        if self.fn is None:  # built with `with Flow(...)`: share what was built
            copy._builder = self._builder
        copy._graph = self._graph if copy.name == self.name else None
        return copy

    def __getstate__(self) -> dict[str, Any]:
        # validators are rebuilt where needed; they need not travel
        return {**self.__dict__, "_adapters": {}}

    def _check_signature(self) -> None:
        assert self.fn is not None
        for p in inspect.signature(self.fn).parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise FlowDefinitionError(
                    f"flow {self.name!r}: parameters must be named; "
                    f"*{p.name} / **{p.name} is not allowed",
                    flow=self.name,
                )

    # -- the graph --------------------------------------------------------------
    @property
    def graph(self) -> FlowGraph:
        """The traced graph (tracing the function on first access)."""
        if self._graph is None:
            if self.fn is not None:
                self._graph = self._trace()
            elif self._builder is not None:
                return self._builder.freeze()
            else:
                raise FlowDefinitionError(
                    f"flow {self.name!r} has no tasks: decorate a function with @flow "
                    "or add tasks inside `with Flow(...) as f:`",
                    flow=self.name,
                )
        return self._graph

    def _trace(self) -> FlowGraph:
        assert self.fn is not None
        builder = FlowBuilder(self.name)
        handles = {
            p.name: builder.add_parameter(
                p.name, NO_DEFAULT if p.default is p.empty else p.default
            )
            for p in inspect.signature(self.fn).parameters.values()
        }
        with builder:
            try:
                returned = self.fn(**handles)  # type: ignore[arg-type, call-arg]
            except FlowDefinitionError:
                raise
            except Exception as e:
                raise FlowDefinitionError(
                    f"defining flow {self.name!r} failed: {type(e).__name__}: {e}. "
                    "Inside a flow, task calls return handles, not values: do "
                    "computations inside tasks.",
                    flow=self.name,
                ) from e
        builder.set_return(returned)
        return builder.freeze()

    @property
    def parameters(self) -> dict[str, Any]:
        """Parameter names and their defaults (``inspect.Parameter.empty`` if required)."""
        return {
            name: inspect.Parameter.empty if p.required else p.default
            for name, p in self.graph.parameters.items()
        }

    def bind_parameters(self, given: Mapping[str, Any], *,
                        texts: Mapping[str, str] | None = None) -> dict[str, Any]:
        """All parameter values of a run: the given ones, checked, plus defaults.

        Given values are checked against the flow function's type hints and
        converted where that is unambiguous (``"3"`` -> ``3`` for ``n: int``; see
        :mod:`taskflow.parameters`); ``texts`` holds values as typed on a command
        line, read again when their JSON reading does not fit the hint.

        Raises :class:`~taskflow.exceptions.ParameterError` naming unknown or
        missing parameters and listing the valid names, or naming a value that
        does not fit its parameter's type.

        Examples
        --------
        >>> from taskflow import flow
        >>> @flow
        ... def count_to(count: int = 1):
        ...     pass
        >>> count_to.bind_parameters({"count": "3"})
        {'count': 3}
        """
        params = self.graph.parameters
        given = self.check_parameters(given, texts=texts)
        missing = [n for n, p in params.items() if p.required and n not in given]
        if missing:
            raise ParameterError(
                f"flow {self.name!r} needs a value for parameter"
                f"{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}; "
                f"its parameters are: {self._valid_names()}",
                flow=self.name, missing=missing,
            )
        return {n: given[n] if n in given else p.default for n, p in params.items()}

    def check_parameters(self, given: Mapping[str, Any], *,
                         texts: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The given values, checked and converted (as :meth:`bind_parameters`), no defaults.

        Unknown names and values that do not fit their type hint raise
        :class:`~taskflow.exceptions.ParameterError`; missing ones do not.
        """
        params = self.graph.parameters
        unknown = sorted(set(given) - set(params))
        if unknown:
            raise ParameterError(
                f"flow {self.name!r} has no parameter{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))}; its parameters are: {self._valid_names()}",
                flow=self.name, unknown=unknown,
            )
        if self.fn is None or not given:
            return dict(given)
        from taskflow.parameters import coerce_parameters, parameter_hints

        if self._hints is None:
            self._hints = parameter_hints(self.fn)
        return coerce_parameters(self.name, self._hints, given, texts, self._adapters)

    def _valid_names(self) -> str:
        return ", ".join(
            n if p.required else f"{n}={p.default!r}" for n, p in self.graph.parameters.items()
        ) or "none"

    # -- the builder style ------------------------------------------------------
    def __enter__(self) -> Flow[P, R]:
        if self.fn is not None:
            raise FlowDefinitionError(f"flow {self.name!r} is defined by a function; "
                                      "`with` is for flows built step by step")
        if self._builder is None:
            self._builder = FlowBuilder(self.name)
        self._builder.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._builder is not None
        self._builder.__exit__(*exc)

    def set_return(self, value: Any) -> None:
        """Say what a flow built with ``with Flow(...)`` returns (handles, nested)."""
        if self._builder is None:
            raise FlowDefinitionError(
                f"flow {self.name!r}: set_return is for flows built with `with Flow(...)`; "
                "a @flow function returns its value"
            )
        self._builder.set_return(value)

    # -- running ----------------------------------------------------------------
    def run(
        self, executor: Executor | None = None, *, resume: str | None = None, **parameters: Any
    ) -> FlowRun:
        """Run the flow to its end and return the :class:`~taskflow.FlowRun`.

        Parameters
        ----------
        executor : Executor, optional
            Where to run (default: the flow's executor, else the default one).
        resume : str, optional
            The id of a finished run of this flow to resume: it runs again with
            that run's parameters; tasks whose results it persisted end CACHED,
            everything else runs.  Found through the flow's result store, from
            any process.  Parameters given with it may repeat that run's values
            (``flow.run(day="2026-11-01", resume=run_id)``); a value that differs
            is refused with a :class:`~taskflow.exceptions.ParameterError` naming it.
        **parameters
            Values of the flow's parameters.

        Examples
        --------
        >>> run = etl.run(n=100)  # doctest: +SKIP
        >>> run.state.is_successful(), run.result()  # doctest: +SKIP
        (True, 4950)
        >>> etl.run(resume=run.run_id)  # doctest: +SKIP
        """
        from taskflow.engine.launch import start_run

        return start_run(self, parameters, executor=executor or self.executor, resume=resume)

    def to_deployment(
        self, schedule: Schedule | None = None, *, parameters: Mapping[str, Any] | None = None,
        name: str | None = None, overlap: bool = False, catch_up: bool = False,
    ) -> Deployment:
        """This flow with a schedule and rules, to serve with :func:`taskflow.serve`.

        See :class:`~taskflow.deploy.serve.Deployment`; ``schedule`` defaults to the
        flow's own.  Unknown or missing parameters are refused here.
        """
        from taskflow.deploy.serve import Deployment

        return Deployment(self, schedule, dict(parameters or {}), name or "", overlap, catch_up)

    def serve(
        self, schedule: Schedule | None = None, *, parameters: Mapping[str, Any] | None = None,
        overlap: bool = False, catch_up: bool = False, executor: Executor | None = None,
        on_stop: str = "wait", notify: Iterable[str | Callable[..., Any]] = (),
    ) -> None:
        """Start this flow's runs on ``schedule`` until SIGTERM or Ctrl-C (blocks).

        Runs go to ``executor`` (default: the flow's, else the configured
        cluster) and are recorded in the run history; a failing run does not
        stop the server; a due run is skipped while the previous one still goes
        (unless ``overlap``); runs missed while no server ran are skipped (or
        run, with ``catch_up``).  On stop, running runs finish (``on_stop="wait"``,
        bounded by ``taskflow.serve.stop-timeout``) or end CANCELLED (``"cancel"``).
        ``notify`` (webhook URLs or hooks) is told of every run that fails or crashes.
        Ad hoc runs: ``taskflow run FLOW_NAME -p name=value`` from any shell
        sharing the history.

        Examples
        --------
        >>> from taskflow.deploy.schedules import CronSchedule
        >>> etl.serve(CronSchedule("0 * * * *"), parameters={"n": 100})  # doctest: +SKIP
        """
        from taskflow.deploy.serve import Server

        deployment = self.to_deployment(schedule, parameters=parameters, overlap=overlap,
                                        catch_up=catch_up)
        Server([deployment], executor or self.executor, on_stop=on_stop,
               notify=list(notify)).serve()

    def visualize(self, filename: str | os.PathLike[str] | None = None,
                  run: FlowRun | str | None = None) -> Any:
        """Draw the flow's graph with graphviz; coloured by a run's states when given.

        Parameters
        ----------
        filename : str or path, optional
            Also write the drawing there: PNG, SVG, PDF or DOT, by extension
            (images need the graphviz programs, e.g. ``apt-get install graphviz``).
        run : FlowRun or str, optional
            A finished run, or a run id (or unique prefix) from the run history.

        Returns
        -------
        graphviz.Digraph
            Tasks and parameters as nodes, a mapped task drawn once with its child
            count, data edges solid and ``wait_for`` edges dashed.

        Examples
        --------
        >>> run = etl.run(n=10)  # doctest: +SKIP
        >>> etl.visualize("etl.png", run=run)  # doctest: +SKIP
        """
        from taskflow.visualize import visualize

        return visualize(self, filename, run=run)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        builder = current_builder()
        if builder is not None:
            return self._embed(builder, args, kwargs)
        return self.run(**self._bind_call(args, kwargs)).result()

    def _bind_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if not args:
            return kwargs
        names = list(self.graph.parameters)
        if len(args) > len(names):
            raise ParameterError(
                f"flow {self.name!r} takes {len(names)} parameter(s) "
                f"({', '.join(names)}) but {len(args)} positional values were given",
                flow=self.name,
            )
        both = [n for n in names[: len(args)] if n in kwargs]
        if both:
            raise ParameterError(f"flow {self.name!r} got parameter {both[0]!r} twice", flow=self.name)
        return {**dict(zip(names, args)), **kwargs}

    def _embed(self, builder: FlowBuilder, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Called inside another flow: add this flow's tasks to it, names prefixed."""
        if self.fn is None:
            raise FlowDefinitionError(
                f"flow {self.name!r} was built with `with Flow(...)` and cannot be "
                "called inside another flow; define it with @flow to use it as a subflow"
            )
        try:
            bound = inspect.signature(self.fn).bind(*args, **kwargs)
        except TypeError as e:
            raise FlowDefinitionError(
                f"subflow {self.name!r} was called with arguments that do not fit "
                f"its parameters: {e}", flow=self.name,
            ) from None
        bound.apply_defaults()
        with builder.prefixed(self.name):
            return self.fn(**bound.arguments)  # type: ignore[call-arg]


def Parameter(name: str, default: Any = NO_DEFAULT) -> Any:  # noqa: N802 - a node kind
    """Declare a flow parameter inside ``with Flow(...)``; returns its handle.

    Without ``default`` the parameter is required.

    Parameters
    ----------
    name : str
        The parameter's name (a Python identifier): ``flow.run(name=...)``.
    default : object, optional
        Its value when a run gives none.

    Examples
    --------
    >>> from taskflow import Flow, Parameter, task
    >>> @task
    ... def greet(who):
    ...     return f"hello {who}"
    >>> with Flow("hello") as f:
    ...     who = Parameter("who", default="world")
    ...     f.set_return(greet(who))
    >>> f.parameters
    {'who': 'world'}
    """
    builder = current_builder()
    if builder is None:
        raise FlowDefinitionError(
            f"Parameter({name!r}) must be declared inside `with Flow(...) as f:`"
        )
    return builder.add_parameter(name, default)


@overload
def flow(fn: Callable[P, R], /) -> Flow[P, R]: ...


@overload
def flow(
    *,
    name: str | None = ...,
    executor: Executor | None = ...,
    result_store: str | ResultStore | None = ...,
    checkpoint: bool | None = ...,
    schedule: Schedule | None = ...,
    on_failure: Hook | Iterable[Hook] | None = ...,
    on_completion: Hook | Iterable[Hook] | None = ...,
    on_crashed: Hook | Iterable[Hook] | None = ...,
    on_cancellation: Hook | Iterable[Hook] | None = ...,
) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    executor: Executor | None = None,
    result_store: str | ResultStore | None = None,
    checkpoint: bool | None = None,
    schedule: Schedule | None = None,
    on_failure: Hook | Iterable[Hook] | None = None,
    on_completion: Hook | Iterable[Hook] | None = None,
    on_crashed: Hook | Iterable[Hook] | None = None,
    on_cancellation: Hook | Iterable[Hook] | None = None,
) -> Any:
    """Make a function a flow; use as ``@flow`` or ``@flow(name=..., executor=...)``.

    Parameters
    ----------
    fn : callable
        The flow function (when used as ``@flow`` without arguments).
    name : str, optional
        The flow's name (default: the function's name).
    executor : Executor, optional
        Where its runs go by default (see :class:`Flow`).
    result_store : str or ResultStore, optional
        Where persisted outputs go (see :class:`Flow`).
    checkpoint : bool, optional
        Checkpoint every task's output (see :class:`Flow`).
    schedule : Schedule, optional
        When ``taskflow serve`` starts its runs.

    Notes
    -----
    ``result_store=`` (a URL or a ResultStore) and ``checkpoint=True`` say where
    and whether task outputs persist (see :class:`Flow`); nothing is written
    unless asked.  ``schedule=`` is when ``taskflow serve`` / :meth:`Flow.serve`
    start its runs by default.  ``on_failure=``, ``on_completion=``,
    ``on_crashed=`` and ``on_cancellation=`` take hooks (callables, or lists of
    them) called ``hook(flow, flow_run, state)`` in the process that ran the
    flow when a run ends FAILED, SUCCESS/CACHED, CRASHED or CANCELLED (see
    :mod:`taskflow.hooks`; :func:`taskflow.notify.webhook` makes one that
    posts to Slack, Teams or any URL).

    The function's parameters are the flow's parameters (a default makes one
    optional).  Its body is traced once: task calls inside record the graph and
    return handles, which may be passed to other tasks (also nested in lists,
    dicts and tuples) and returned.  ``wait_for=[h, ...]`` on a task call adds
    an ordering edge without data.  Calling another ``@flow`` inside embeds its
    tasks, their names prefixed ``subflow/``.

    Examples
    --------
    >>> from taskflow import flow, task
    >>> @task
    ... def extract(n):
    ...     return list(range(n))
    >>> @task
    ... def total(xs):
    ...     return sum(xs)
    >>> @flow
    ... def etl(n: int = 10):
    ...     return total(extract(n))
    >>> [node.name for node in etl.graph.nodes]
    ['extract', 'total']
    """
    if fn is not None:
        return Flow(fn.__name__, fn)

    def decorate(f: Callable[P, R]) -> Flow[P, R]:
        return Flow(name or f.__name__, f, executor=executor, result_store=result_store,
                    checkpoint=checkpoint, schedule=schedule, on_failure=on_failure,
                    on_completion=on_completion, on_crashed=on_crashed,
                    on_cancellation=on_cancellation)

    return decorate


_ = Handle  # re-exported for type checkers reading flow.py
