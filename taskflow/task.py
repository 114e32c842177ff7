"""Tasks: plain functions with run options, and the ``@task`` decorator.

A :class:`Task` wraps a function and the options the engine honours when it runs
it (retries, timeout, trigger, resources...).  Called outside a flow it simply
calls the function.  Called while a flow is being defined, it records a node in
the flow's graph and returns a :class:`~taskflow.graph.Handle`.
"""
from __future__ import annotations

import datetime
import functools
import importlib
import inspect
import numbers
import re
import sys
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, ParamSpec, TypeVar, overload

from taskflow import triggers
from taskflow.exceptions import FlowDefinitionError
from taskflow.graph import current_builder
from taskflow.hooks import Hook, normalize_hooks
from taskflow.retries import RetryDelay, RetryPolicy

__all__ = ["Task", "task"]

P = ParamSpec("P")
R = TypeVar("R")

_OPTIONS = (
    "name",
    "retries",
    "retry_delay",
    "retry_on",
    "timeout",
    "trigger",
    "tags",
    "resources",
    "priority",
    "checkpoint",
    "target",
    "serializer",
    "cache_key_fn",
    "cache_for",
    "on_failure",
    "on_completion",
    "on_retry",
    "cache_scope",
    "persist",
)


class Task(Generic[P, R]):
    """A function plus the options taskflow runs it with.

    Usually made with :func:`task`.  See there for the options.

    Parameters
    ----------
    fn : callable
        The function to run.
    **options
        ``name``, ``retries``, ``retry_delay``, ``retry_on``, ``timeout``,
        ``trigger``, ``tags``, ``resources``, ``priority``, ``checkpoint``,
        ``target``, ``serializer``, ``cache_key_fn``, ``cache_for``, ``persist``: see
        :func:`task`.

    Examples
    --------
    >>> def add(x, y):
    ...     return x + y
    >>> plus = Task(add, name="plus", retries=1)
    >>> plus.name, plus.retries, plus(1, 2)
    ('plus', 1, 3)

    Attributes
    ----------
    fn : callable
        The plain function.
    name : str
        The task's name: the prefix of its Dask keys and its name in states.
    """

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        retries: int = 0,
        retry_delay: RetryDelay = 0.0,
        retry_on: type[BaseException] | Iterable[type[BaseException]] | None = None,
        timeout: float | None = None,
        trigger: Callable[[Sequence[Any]], bool] = triggers.all_successful,
        tags: Iterable[str] = (),
        resources: Mapping[str, float] | None = None,
        priority: int = 0,
        checkpoint: bool | None = None,
        target: str | None = None,
        serializer: str | Any | None = None,
        cache_key_fn: Callable[..., str | None] | None = None,
        cache_for: datetime.timedelta | float | None = None,
        on_failure: Hook | Iterable[Hook] | None = None,
        on_completion: Hook | Iterable[Hook] | None = None,
        on_retry: Hook | Iterable[Hook] | None = None,
        cache_scope: str | None = None,
        persist: bool = True,
    ) -> None:
        if not callable(fn):
            raise FlowDefinitionError(f"@task needs a function, got {fn!r}")
        self.fn = fn
        self.name = name if name is not None else getattr(fn, "__name__", type(fn).__name__)
        functools.update_wrapper(self, fn)
        self.retries = retries
        self.retry_delay = retry_delay
        self.retry_on = _exception_types(retry_on, self.name)
        self.timeout = timeout
        self.trigger = trigger
        self.tags = frozenset(tags)
        self.resources = dict(resources or {})
        self.priority = priority
        self.checkpoint = checkpoint
        self.target = target
        self.serializer = serializer
        self.cache_key_fn = cache_key_fn
        self.cache_for = cache_for
        owner = f"task {self.name!r}"
        self.on_failure = normalize_hooks(on_failure, option="on_failure", owner=owner)
        self.on_completion = normalize_hooks(on_completion, option="on_completion", owner=owner)
        self.on_retry = normalize_hooks(on_retry, option="on_retry", owner=owner)
        self.cache_scope = cache_scope
        self.persist = persist
        self._validate()
        self._validate_results()
        self._signature: inspect.Signature | None = None
        # engine-internal kinds of task (case checks, merge): see taskflow.conditional
        self.engine_internal = False
        self.receives_state_markers = False

    # -- options ----------------------------------------------------------------
    def _validate(self) -> None:
        def bad(option: str, why: str) -> FlowDefinitionError:
            return FlowDefinitionError(f"task {self.name!r}: {option} {why}", task=self.name)

        if not isinstance(self.name, str) or not self.name:
            raise bad("name", f"must be a non-empty string, got {self.name!r}")
        if not isinstance(self.retries, int) or isinstance(self.retries, bool) or self.retries < 0:
            raise bad("retries", f"must be a whole number >= 0, got {self.retries!r}")
        d = self.retry_delay
        if not callable(d):
            seq = [d] if isinstance(d, numbers.Real) else d
            if not isinstance(seq, (list, tuple)) or not all(
                isinstance(x, numbers.Real) and float(x) >= 0 for x in seq
            ):
                raise bad(
                    "retry_delay",
                    f"must be seconds >= 0, a list of them, or a callable, got {d!r}",
                )
        if self.timeout is not None and (
            not isinstance(self.timeout, numbers.Real) or self.timeout <= 0
        ):
            raise bad("timeout", f"must be a number of seconds > 0, got {self.timeout!r}")
        if not callable(self.trigger):
            raise bad("trigger", f"must be a callable (see taskflow.triggers), got {self.trigger!r}")
        if not all(isinstance(t, str) for t in self.tags):
            raise bad("tags", f"must be strings, got {sorted(map(repr, self.tags))}")
        if not all(
            isinstance(k, str) and isinstance(v, numbers.Real) for k, v in self.resources.items()
        ):
            raise bad("resources", f"must map names to numbers, e.g. {{'GPU': 1}}, got {self.resources!r}")
        if not isinstance(self.priority, int):
            raise bad("priority", f"must be an integer, got {self.priority!r}")
        if not isinstance(self.persist, bool):
            raise bad("persist", f"must be True or False, got {self.persist!r}")

    def _validate_results(self) -> None:
        def bad(option: str, why: str) -> FlowDefinitionError:
            return FlowDefinitionError(f"task {self.name!r}: {option} {why}", task=self.name)

        if self.checkpoint is not None and not isinstance(self.checkpoint, bool):
            raise bad("checkpoint", f"must be True, False or None, got {self.checkpoint!r}")
        if self.target is not None:
            from taskflow.results.templates import template_fields

            if not isinstance(self.target, str) or not self.target.strip("/"):
                raise bad("target", f"must be a path template string, got {self.target!r}")
            try:
                template_fields(self.target)
            except ValueError as e:
                raise bad("target", f"is not a valid template: {e}") from None
        if self.serializer is not None:
            from taskflow.results.serializers import get_serializer

            try:
                get_serializer(self.serializer)
            except (TypeError, ValueError) as e:
                raise bad("serializer", str(e)) from None
        if self.cache_key_fn is not None and not callable(self.cache_key_fn):
            raise bad("cache_key_fn", f"must be a callable (context, inputs) -> str | None, "
                                      f"e.g. taskflow.results.task_input_hash, got {self.cache_key_fn!r}")
        if self.cache_for is not None:
            if self.cache_key_fn is None:
                raise bad("cache_for", "needs cache_key_fn (the key that entries are found by)")
            c = self.cache_for
            seconds = c.total_seconds() if isinstance(c, datetime.timedelta) else (
                float(c) if isinstance(c, numbers.Real) and not isinstance(c, bool) else None)
            if seconds is None or seconds <= 0:
                raise bad("cache_for", f"must be a timedelta or seconds > 0, got {c!r}")
        if self.cache_scope is not None:
            if self.cache_key_fn is None:
                raise bad("cache_scope", "needs cache_key_fn (the key that entries are found by)")
            if not isinstance(self.cache_scope, str) or not re.fullmatch(r"[\w.-]+", self.cache_scope):
                raise bad("cache_scope", "must be a name of letters, digits, '_', '.' or '-', "
                                         f"got {self.cache_scope!r}")
        if self.target is not None and self.cache_key_fn is not None:
            raise bad("target", "and cache_key_fn are two ways to skip a run; give one of them")

    @property
    def options(self) -> dict[str, Any]:
        """The options this task was made with, as keyword arguments."""
        return {k: getattr(self, k) for k in _OPTIONS}

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.retries, self.retry_delay, self.retry_on)

    def with_options(self, **changes: Any) -> Task[P, R]:
        """A copy of this task with some options changed.

        Examples
        --------
        >>> @task
        ... def inc(x):
        ...     return x + 1
        >>> inc.with_options(retries=3).retries
        3
        """
        unknown = set(changes) - set(_OPTIONS)
        if unknown:
            raise FlowDefinitionError(
                f"task {self.name!r}: unknown option(s) {sorted(unknown)}; "
                f"valid options are {list(_OPTIONS)}",
                task=self.name,
            )
        return Task(self.fn, **{**self.options, **changes})

    @property
    def signature(self) -> inspect.Signature:
        if self._signature is None:
            self._signature = inspect.signature(self.fn)
        return self._signature

    @property
    def key_prefix(self) -> str:
        """The prefix of this task's Dask keys: its name, with no ``-`` inside.

        Dask's dashboard groups keys by the part before ``-<token>``
        (``dask.utils.key_split``), so a dash inside the name would split it.
        """
        return self.name.replace("-", "_")

    # -- calling ----------------------------------------------------------------
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        wait_for = kwargs.pop("wait_for", None)
        builder = current_builder()
        if builder is None:
            return self.fn(*args, **kwargs)
        return builder.add_task_call(self, args, kwargs, wait_for)  # type: ignore[return-value]

    def map(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task once per element of its iterable arguments.

        Inside a flow, returns a mapped handle: passed to another ``.map`` it links
        children element by element; passed to an ordinary task it gives the list
        of the children's outputs, in order.  Arguments that are lists, tuples,
        ranges or task handles are mapped over (zipped when several); wrap one in
        :class:`~taskflow.unmapped` to pass it whole; strings, bytes, dicts and
        other non-iterables are passed whole.  :class:`~taskflow.flatten` maps over
        the concatenation of a list of lists.  When a handle's length is known only
        at run time, only the length reaches the client; elements are taken out on
        the workers.

        Outside a flow, returns the list of results, computed here.

        Examples
        --------
        >>> @task
        ... def add(x, y):
        ...     return x + y
        >>> add.map([1, 2, 3], [10, 20, 30])
        [11, 22, 33]
        """
        wait_for = kwargs.pop("wait_for", None)
        builder = current_builder()
        if builder is not None:
            return builder.add_task_call(self, args, kwargs, wait_for, map=True)
        return _map_eagerly(self.fn, args, kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.name!r}>"

    def __copy__(self) -> Task[P, R]:
        return Task(self.fn, **self.options)

    # -- pickling: by reference when the task is importable -----------------------
    def __reduce__(self) -> Any:
        module = getattr(self, "__module__", None)
        qualname = getattr(self, "__qualname__", None)
        if (module and qualname and module != "__main__" and "<locals>" not in qualname
                and not _pickled_by_value(module)):
            try:  # once per task run a scheduler sends: an imported module from sys.modules
                obj: Any = sys.modules.get(module)
                if obj is None or getattr(getattr(obj, "__spec__", None), "_initializing", False):
                    obj = importlib.import_module(module)
                for part in qualname.split("."):
                    obj = getattr(obj, part)
            except Exception:
                obj = None
            if obj is self:
                return (import_task, (module, qualname))
        state = {k: v for k, v in self.__dict__.items() if k != "_signature"}
        # cloudpickle renames the file of code it pickles by value "<dynamic-code>";
        # the file travels beside it, so tracebacks on workers name the user's file
        state["_code_file"] = getattr(getattr(self.fn, "__code__", None), "co_filename", None)
        return (_rebuild_task, (state,))


def _map_eagerly(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    from taskflow.graph import flatten, is_mappable_constant, unmapped

    def prepare(v: Any) -> tuple[bool, Any]:
        if isinstance(v, unmapped):
            return False, v.value
        if isinstance(v, flatten):
            return True, [x for inner in v.value for x in inner]
        if is_mappable_constant(v):
            return True, list(v)
        return False, v

    pa = [prepare(a) for a in args]
    pk = {k: prepare(v) for k, v in kwargs.items()}
    lengths = {len(v) for m, v in [*pa, *pk.values()] if m}
    if len(lengths) > 1:
        raise ValueError(f"mapped arguments of different lengths: {sorted(lengths)}")
    n = lengths.pop() if lengths else 0
    return [
        fn(*[v[i] if m else v for m, v in pa], **{k: v[i] if m else v for k, (m, v) in pk.items()})
        for i in range(n)
    ]


def _pickled_by_value(module: str) -> bool:
    """True when ``module`` was registered with ``cloudpickle.register_pickle_by_value``
    (e.g. a flow file the CLI loaded by path): workers cannot import it by name."""
    mod = sys.modules.get(module)
    if mod is None:
        return False
    try:
        from cloudpickle.cloudpickle import _is_registered_pickle_by_value
    except ImportError:  # pragma: no cover - older or newer cloudpickle
        return False
    return bool(_is_registered_pickle_by_value(mod))


def import_task(module: str, qualname: str) -> Task[..., Any]:
    # once per task run unpickled on a worker: a module already imported is taken
    # from sys.modules (import_module takes Python's import machinery every time)
    obj: Any = sys.modules.get(module)
    if obj is None or getattr(getattr(obj, "__spec__", None), "_initializing", False):
        obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _rebuild_task(state: dict[str, Any]) -> Task[..., Any]:
    filename = state.pop("_code_file", None)
    t: Task[..., Any] = Task.__new__(Task)
    t.__dict__.update(state)
    t._signature = None
    if filename:
        _restore_code_file(t.fn, filename)
    return t


_DYNAMIC = "<dynamic-code>"  # what cloudpickle names the file of code pickled by value


def _restore_code_file(fn: Any, filename: str) -> None:
    """Give ``fn``, and the functions of its module it calls, their file name back."""
    code = getattr(fn, "__code__", None)
    if code is None or code.co_filename != _DYNAMIC:
        return
    fn.__code__ = _with_file(code, filename)
    module = getattr(fn, "__module__", None)
    for value in list(getattr(fn, "__globals__", {}).values()):
        if (isinstance(value, types.FunctionType) and value.__module__ == module
                and value.__code__.co_filename == _DYNAMIC):
            value.__code__ = _with_file(value.__code__, filename)


def _with_file(code: types.CodeType, filename: str) -> types.CodeType:
    consts = tuple(_with_file(c, filename) if isinstance(c, types.CodeType) else c
                   for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _exception_types(
    value: type[BaseException] | Iterable[type[BaseException]] | None, name: str
) -> tuple[type[BaseException], ...] | None:
    if value is None:
        return None
    items = (value,) if isinstance(value, type) else tuple(value)
    if not all(isinstance(t, type) and issubclass(t, BaseException) for t in items):
        raise FlowDefinitionError(
            f"task {name!r}: retry_on takes exception types, got {value!r}", task=name
        )
    return items


@overload
def task(fn: Callable[P, R], /, **options: Any) -> Task[P, R]: ...


@overload
def task(
    *,
    name: str | None = ...,
    retries: int = ...,
    retry_delay: RetryDelay = ...,
    retry_on: type[BaseException] | Iterable[type[BaseException]] | None = ...,
    timeout: float | None = ...,
    trigger: Callable[[Sequence[Any]], bool] = ...,
    tags: Iterable[str] = ...,
    resources: Mapping[str, float] | None = ...,
    priority: int = ...,
    checkpoint: bool | None = ...,
    target: str | None = ...,
    serializer: str | Any | None = ...,
    cache_key_fn: Callable[..., str | None] | None = ...,
    cache_for: datetime.timedelta | float | None = ...,
    on_failure: Hook | Iterable[Hook] | None = ...,
    on_completion: Hook | Iterable[Hook] | None = ...,
    on_retry: Hook | Iterable[Hook] | None = ...,
    cache_scope: str | None = ...,
    persist: bool = ...,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Make a function a task; use as ``@task``, ``@task(...)`` or ``task(fn, ...)``.

    Parameters
    ----------
    name : str, optional
        The task's name (default: the function's name).
    retries : int
        Extra attempts after a failure (default 0).
    retry_delay : float, list of float, or callable
        Seconds between attempts; a list gives one per retry (the last repeats);
        a callable maps the failed attempt number (1-based) to seconds.  A waiting
        task does not hold a worker thread.
    retry_on : exception type or tuple of them
        Only these exceptions are retried (default: all).
    timeout : float, optional
        Seconds an attempt may run; a longer one ends TIMED_OUT (and is retried
        like a failure).
    trigger : callable
        When the task may run given its upstreams' states (default
        :func:`taskflow.triggers.all_successful`).
    tags : iterable of str
        Labels, kept with the task's runs.  A tag with a concurrency limit
        (:func:`taskflow.concurrency.limit`, ``taskflow.concurrency.limits``)
        bounds how many runs carrying it run at once on the cluster.
    resources : dict
        Dask worker resources each run needs, e.g. ``{"GPU": 1}``.
    priority : int
        Dask scheduling priority (higher runs first, best effort).
    checkpoint : bool, optional
        Write the output to the flow's result store, on the worker that ran the
        task (default: the flow's ``checkpoint``, else ``taskflow.results.checkpoint``).
    target : str, optional
        A path template in the result store, formatted with ``{flow_name}``,
        ``{task_name}``, ``{run_id}``, ``{map_index}``, ``{today}``, ``{now}`` and the
        flow's parameters by name.  When it exists the task ends CACHED without
        running; otherwise it runs and writes it.
    serializer : str or object, optional
        ``"pickle"``, ``"json"``, ``"parquet"``, ``"npy"`` or an object with
        ``dumps``/``loads`` (default: the store's).
    cache_key_fn : callable, optional
        ``(context, inputs) -> str | None``; an entry under that key written within
        ``cache_for`` makes the task CACHED (see
        :func:`taskflow.results.task_input_hash`).
    cache_for : timedelta or float, optional
        How long cache entries stay valid (seconds; default: forever).
    on_failure, on_completion, on_retry : callable or list of callables, optional
        State hooks, each called ``hook(task, task_run, state)`` on the worker
        that ran the task, after its final state is known (``on_retry``: after
        each failed attempt that will be retried): see :mod:`taskflow.hooks`.
        ``on_failure`` is called for FAILED, TIMED_OUT and TRIGGER_FAILED;
        ``on_completion`` for SUCCESS and CACHED.  A hook that raises or hangs
        never changes the state.
    cache_scope : str, optional
        Where cache entries are found (default: the task's name).  Tasks that
        give the same scope share entries, in any flow: a key one of them wrote
        is a hit for the others (Prefect 1's ``cache_key=``).  The key function
        must then give the same key for the same inputs: ``task_input_hash``
        includes the task's source, so it shares only between copies of one
        function (``t.with_options(name=...)``); key on the inputs alone to
        share between different functions.
    persist : bool
        When the task returns a Dask collection (DataFrame, Array, Bag, Delayed),
        compute it once on the cluster and hand every downstream task the
        persisted collection (default True).  False hands over the lazy graph,
        which each consumer computes itself (fusion across tasks).  Checkpointed,
        a collection is written as a dataset (Parquet, Zarr) by the workers.

    Examples
    --------
    >>> @task(retries=2, retry_delay=0.5)
    ... def extract(n: int) -> list[int]:
    ...     return list(range(n))
    >>> extract(3)          # outside a flow: just the function
    [0, 1, 2]
    >>> extract.fn(2)
    [0, 1]
    >>> task(len, name="count").name   # a function defined elsewhere
    'count'
    """
    unknown = set(options) - set(_OPTIONS)
    if unknown:
        raise FlowDefinitionError(
            f"@task got unknown option(s) {sorted(unknown)}; valid options are {list(_OPTIONS)}"
        )
    if fn is not None:  # @task, or task(fn, name=...) as Prefect 1 and 3 allow
        return Task(fn, **options)

    def decorate(f: Callable[P, R]) -> Task[P, R]:
        return Task(f, **options)

    return decorate

