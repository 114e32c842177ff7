"""Cache keys: ``cache_key_fn(context, inputs) -> str | None``.

A task with ``cache_key_fn`` computes a key from its inputs before it runs.  When
the store holds an entry under that key written within ``cache_for``, the task
ends CACHED without running; otherwise it runs and writes the entry.  A key of
None means "do not cache this run".

:func:`task_input_hash` is the usual choice: the inputs hashed with
:func:`dask.base.tokenize` together with the task's source code, so changing
either misses the cache.

Examples
--------
>>> from taskflow import task
>>> @task
... def double(x):
...     return 2 * x
>>> ctx = CacheContext(task=double, task_run_name="double", flow_name="f", run_id="r")
>>> task_input_hash(ctx, {"x": 1}) == task_input_hash(ctx, {"x": 1})
True
>>> task_input_hash(ctx, {"x": 1}) == task_input_hash(ctx, {"x": 2})
False
"""
from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dask
from dask.base import tokenize

if TYPE_CHECKING:
    from taskflow.task import Task

__all__ = ["CacheContext", "task_input_hash"]

logger = logging.getLogger("taskflow.results")


@dataclass(frozen=True)
class CacheContext:
    """What a cache key function knows besides the inputs.

    Attributes
    ----------
    task : Task
        The task about to run.
    task_run_name : str
        Its run's name (``load``, ``load[3]``...).
    flow_name, run_id : str
        The flow run it belongs to.
    map_index : int or None
        The child's index, for a mapped task.

    Examples
    --------
    >>> from taskflow import task
    >>> @task
    ... def load(day):
    ...     return day
    >>> def per_day(ctx: CacheContext, inputs: dict) -> str:
    ...     return f"{ctx.task.name}-{inputs['day']}"
    >>> per_day(CacheContext(load, "load", "etl", "r1"), {"day": "2026-12-01"})
    'load-2026-12-01'
    """

    task: Task[..., Any]
    task_run_name: str
    flow_name: str
    run_id: str
    map_index: int | None = None


@functools.lru_cache(maxsize=512)
def _source(fn: Callable[..., Any]) -> str:
    fn = inspect.unwrap(fn)
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        if code is None:
            return repr(fn)
        return repr((code.co_code, code.co_consts, code.co_names))


def task_input_hash(context: CacheContext, inputs: dict[str, Any]) -> str | None:
    """A key from the task's inputs and source code (None when the inputs cannot be hashed).

    Inputs are hashed with ``dask.base.tokenize`` (deterministically: numpy
    arrays and pandas objects by content).  Inputs that cannot be hashed
    deterministically give None, so the task runs and nothing is cached.

    Parameters
    ----------
    context : CacheContext
        The task run about to start.
    inputs : dict
        Its arguments by parameter name, defaults included.

    Examples
    --------
    >>> from datetime import timedelta
    >>> from taskflow import task
    >>> @task(cache_key_fn=task_input_hash, cache_for=timedelta(hours=6))
    ... def fetch(url: str) -> str:
    ...     return url.upper()
    >>> ctx = CacheContext(fetch, "fetch", "etl", "r1")
    >>> len(task_input_hash(ctx, {"url": "a"}))
    32
    """
    try:
        source = _source(context.task.fn)
    except TypeError:  # unhashable callable: no lru_cache
        source = repr(context.task.fn)
    try:
        with dask.config.set({"tokenize.ensure-deterministic": True}):
            return tokenize(source, inputs)
    except Exception as e:
        logger.warning("task %r: inputs cannot be hashed for the cache (%s); not caching",
                       context.task_run_name, e)
        return None


def bound_inputs(task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's inputs by parameter name, defaults included."""
    try:
        bound = task.signature.bind(*args, **kwargs)
    except TypeError:
        return {"args": args, "kwargs": kwargs}
    bound.apply_defaults()
    return dict(bound.arguments)
