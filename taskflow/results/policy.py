"""What to persist, where, and whether a stored result may stand in for a run.

Pure decisions, no I/O, each a small function tested alone:

* :func:`resolve_checkpoint` -- task option, else flow option, else config;
* :func:`target_fields` / :func:`format_target` -- a target template's values;
* :func:`checkpoint_path`, :func:`cache_path`, :func:`record_path` -- where
  things live inside a store;
* :func:`cache_hit` -- is a cache entry written at ``t`` still fresh?
* :func:`node_persistence` -- what one node persists, decided once per run
  (or None when nothing is asked, which is the common case and costs nothing);
  its :meth:`~NodePersistence.spec` is the :class:`PersistSpec` of one task run;
  :func:`persist_spec` is the two in one call.

Layout of a store::

    <flow>/<run id>/<task run>.<ext>     checkpoints (mapped children: <task>/<i>.<ext>)
    <target>                              targets, formatted from their template
    _cache/<task or cache_scope>/<key>.<ext>   cache entries (cache_key_fn)
    _runs/<run id>/manifest               the run: flow name, parameters (for resume=)
    _runs/<run id>/results/<task run>     where each persisted result of the run is
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from taskflow.exceptions import FlowDefinitionError
from taskflow.results.serializers import extension, get_serializer
from taskflow.results.templates import template_fields

if TYPE_CHECKING:
    from taskflow.results.store import ResultStore
    from taskflow.task import Task

__all__ = [
    "BUILTIN_FIELDS",
    "NodePersistence",
    "PersistSpec",
    "PersistSettings",
    "cache_hit",
    "cache_path",
    "checkpoint_path",
    "format_target",
    "manifest_path",
    "node_persistence",
    "persist_spec",
    "record_path",
    "resolve_checkpoint",
    "target_fields",
    "template_fields",
]

BUILTIN_FIELDS = ("flow_name", "task_name", "run_id", "map_index", "today", "now")


class _Now(dt.datetime):
    """``{now}`` formats as ``2026-11-01T04-05-06`` (safe in paths); ``{now:%H}`` works."""

    def __format__(self, spec: str) -> str:
        return super().__format__(spec or "%Y-%m-%dT%H-%M-%S")

    def __str__(self) -> str:
        return format(self, "")


class _Today(dt.date):
    def __format__(self, spec: str) -> str:
        return super().__format__(spec or "%Y-%m-%d")

    def __str__(self) -> str:
        return format(self, "")


def resolve_checkpoint(task_option: bool | None, flow_option: bool | None, config_option: Any) -> bool:
    """Whether a task checkpoints: its own option, else its flow's, else the config.

    Examples
    --------
    >>> resolve_checkpoint(None, None, False), resolve_checkpoint(None, True, False)
    (False, True)
    >>> resolve_checkpoint(False, True, True)
    False
    """
    if task_option is not None:
        return bool(task_option)
    if flow_option is not None:
        return bool(flow_option)
    return bool(config_option)


def target_fields(
    *,
    flow_name: str,
    task_name: str,
    run_id: str,
    map_index: int | None,
    parameters: Mapping[str, Any],
    now: dt.datetime,
) -> dict[str, Any]:
    """The values a target template may use: parameters, then the built-in fields.

    Built-in names win over parameters of the same name.  ``today`` and ``now``
    are the flow run's start, in UTC.
    """
    now = now.astimezone(dt.timezone.utc) if now.tzinfo else now
    return {
        **parameters,
        "flow_name": flow_name,
        "task_name": task_name,
        "run_id": run_id,
        "map_index": map_index,
        "today": _Today(now.year, now.month, now.day),
        "now": _Now(now.year, now.month, now.day, now.hour, now.minute, now.second),
    }


def format_target(template: str, fields: Mapping[str, Any], *, task: str = "?") -> str:
    """Format a target template; FlowDefinitionError naming what is missing.

    Examples
    --------
    >>> format_target("{flow_name}/{day}.json", {"flow_name": "etl", "day": "2026-11-01"})
    'etl/2026-11-01.json'
    >>> format_target("{nope}.json", {"flow_name": "etl"}, task="t")
    Traceback (most recent call last):
    ...
    taskflow.exceptions.FlowDefinitionError: task 't': target '{nope}.json' uses {nope}, which is neither a flow parameter nor one of flow_name, task_name, run_id, map_index, today, now
    """
    for name in template_fields(template):
        if name not in fields:
            raise FlowDefinitionError(
                f"task {task!r}: target {template!r} uses {{{name}}}, which is neither a flow "
                f"parameter nor one of {', '.join(BUILTIN_FIELDS)}", task=task,
            )
    if "map_index" in template_fields(template) and fields.get("map_index") is None:
        raise FlowDefinitionError(
            f"task {task!r}: target {template!r} uses {{map_index}} but the task is not mapped",
            task=task,
        )
    try:
        out = template.format_map(dict(fields))
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        raise FlowDefinitionError(
            f"task {task!r}: target {template!r} cannot be formatted: {e}", task=task
        ) from None
    out = out.strip("/")
    if not out or ".." in out.split("/"):
        raise FlowDefinitionError(
            f"task {task!r}: target {template!r} gives {out!r}, not a path inside the store",
            task=task,
        )
    return out


def _path_name(task_run_name: str) -> str:
    """``load[3]`` -> ``load/3`` (mapped children in a folder of their own)."""
    return re.sub(r"\[(\d+)\]", r"/\1", task_run_name)


def checkpoint_path(flow_name: str, run_id: str, task_run_name: str, ext: str) -> str:
    """Where a checkpoint of a task run goes (relative to the store).

    Examples
    --------
    >>> checkpoint_path("etl", "abc", "load[3]", ".pkl")
    'etl/abc/load/3.pkl'
    """
    return f"{flow_name}/{run_id}/{_path_name(task_run_name)}{ext}"


def cache_path(task_name: str, key: str, ext: str) -> str:
    """Where a cache entry goes; keys that are not plain names are hashed.

    Examples
    --------
    >>> cache_path("score", "abc123", ".pkl")
    '_cache/score/abc123.pkl'
    >>> cache_path("score", "a/b", "")[:13]
    '_cache/score/'
    """
    if not re.fullmatch(r"[A-Za-z0-9_.=-]{1,128}", key) or key.startswith("."):
        key = hashlib.sha256(key.encode()).hexdigest()
    return f"_cache/{task_name}/{key}{ext}"


def manifest_path(run_id: str) -> str:
    return f"_runs/{run_id}/manifest"


def record_path(run_id: str, task_run_name: str) -> str:
    """Where a run notes the location of one task run's persisted result."""
    return f"_runs/{run_id}/results/{urllib.parse.quote(task_run_name, safe='')}.json"


def cache_hit(written_at: float | None, cache_for: float | None, now: float) -> bool:
    """True when a cache entry written at ``written_at`` may stand in for a run at ``now``.

    ``cache_for`` is the window in seconds (None: forever).

    Examples
    --------
    >>> cache_hit(100.0, 60.0, now=150.0), cache_hit(100.0, 60.0, now=161.0)
    (True, False)
    >>> cache_hit(None, None, now=0.0), cache_hit(100.0, None, now=1e9)
    (False, True)
    """
    if written_at is None:
        return False
    if cache_for is None:
        return True
    return 0.0 <= now - written_at <= cache_for or written_at > now  # clock skew: fresh


@dataclass(frozen=True)
class PersistSettings:
    """A flow run's persistence settings, resolved on the client before planning.

    ``resumed`` maps task-run names of the run being resumed to the store paths
    of their persisted results.  ``nodes`` is what the nodes of the flow that
    may persist (by name) persist, decided once at set-up (:func:`node_persistence`):
    a node it lacks persists nothing.  None until decided (a plan then decides each
    node itself, once).
    """

    store: ResultStore | None = None
    flow_checkpoint: bool | None = None
    config_checkpoint: bool = False
    resumed: Mapping[str, str] = field(default_factory=dict)
    resumed_from: str | None = None
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    nodes: Mapping[str, NodePersistence | None] | None = None


@dataclass(frozen=True)
class PersistSpec:
    """What the worker-side runner does about stored results for one task run.

    ``write`` is where the output goes (a checkpoint or target path), or None
    (cache entries are placed by their key at run time).  ``target`` and
    ``resume`` are paths whose existence makes the run CACHED.
    """

    store: ResultStore
    serializer: Any
    run_id: str
    write: str | None = None
    target: str | None = None
    resume: str | None = None
    resumed_from: str | None = None
    cache_key_fn: Callable[..., str | None] | None = None
    cache_for: float | None = None
    cache_dir: str = ""


@dataclass(frozen=True)
class NodePersistence:
    """What one node of a flow persists, decided once per run at set-up.

    :func:`node_persistence` makes it (checking the node's options against the
    flow's store); :meth:`spec` gives each task run of the node its
    :class:`PersistSpec`, doing per run only what depends on the run's name and
    map index: the target's formatting, the checkpoint path, the resumed result.

    Examples
    --------
    >>> from taskflow import task
    >>> from taskflow.results.store import ResultStore
    >>> @task(checkpoint=True)
    ... def load(i: int) -> int:
    ...     return i
    >>> node = node_persistence(load, flow_name="etl", mapped=True,
    ...                         results=PersistSettings(store=ResultStore("memory://p")))
    >>> node.spec(task_run_name="load[2]", run_id="r1", map_index=2, parameters={},
    ...           results=PersistSettings()).write
    'etl/r1/load/2.pkl'
    """

    flow_name: str
    task_name: str
    store: ResultStore
    serializer: Any
    asks: bool
    checkpoint: bool
    target: str | None
    cache_key_fn: Callable[..., str | None] | None
    cache_for: float | None
    cache_dir: str

    def spec(
        self,
        *,
        task_run_name: str,
        run_id: str,
        map_index: int | None,
        parameters: Mapping[str, Any],
        results: PersistSettings,
    ) -> PersistSpec | None:
        """The PersistSpec of one task run of the node (None when it stores nothing).

        Raises FlowDefinitionError when the target cannot be formatted.
        """
        resume = results.resumed.get(task_run_name)
        if not (self.asks or resume):
            return None
        target_path = None
        if self.target:
            fields = target_fields(flow_name=self.flow_name, task_name=self.task_name, run_id=run_id,
                                   map_index=map_index, parameters=parameters, now=results.started)
            target_path = format_target(self.target, fields, task=task_run_name)
        write = target_path
        if write is None and self.checkpoint and not self.cache_key_fn:
            write = checkpoint_path(self.flow_name, run_id, task_run_name, extension(self.serializer))
        return PersistSpec(
            store=self.store,
            serializer=self.serializer,
            run_id=run_id,
            write=write,
            target=target_path,
            resume=resume,
            resumed_from=results.resumed_from if resume else None,
            cache_key_fn=self.cache_key_fn,
            cache_for=self.cache_for,
            cache_dir=self.cache_dir,
        )


def node_persistence(
    task: Task[..., Any], *, flow_name: str, mapped: bool, results: PersistSettings
) -> NodePersistence | None:
    """What a node of ``task`` persists in a run, or None when none of its runs can store
    anything (the common case: no store, or nothing asked and nothing to resume).

    Raises FlowDefinitionError when the task asks for storage and the flow has
    no result store, or it is mapped and its target has no ``{map_index}``.
    """
    if task.engine_internal:
        return None
    checkpoint = resolve_checkpoint(getattr(task, "checkpoint", None), results.flow_checkpoint,
                                    results.config_checkpoint)
    target = getattr(task, "target", None)
    cache_fn = getattr(task, "cache_key_fn", None)
    asks = bool(checkpoint or target or cache_fn)
    store = results.store
    if not asks and (store is None or not results.resumed):
        return None
    if store is None:
        asked = "target=" if target else "cache_key_fn=" if cache_fn else "checkpoint=True"
        raise FlowDefinitionError(
            f"task {task.name!r} asks for {asked} but flow {flow_name!r} has no result store: "
            "give the flow result_store=... (a URL or a ResultStore) or set "
            "taskflow.results.store", task=task.name, flow=flow_name,
        )
    ser_opt = getattr(task, "serializer", None)
    serializer = store.serializer if ser_opt is None else get_serializer(ser_opt)
    if target and mapped and "map_index" not in template_fields(target):
        raise FlowDefinitionError(
            f"task {task.name!r} is mapped, so its target {target!r} must use {{map_index}} "
            "(else every child would write the same place)", task=task.name,
        )
    cache_for = getattr(task, "cache_for", None)
    return NodePersistence(
        flow_name=flow_name, task_name=task.name, store=store, serializer=serializer, asks=asks,
        checkpoint=bool(checkpoint), target=target, cache_key_fn=cache_fn,
        cache_for=cache_for.total_seconds() if isinstance(cache_for, dt.timedelta) else cache_for,
        cache_dir=getattr(task, "cache_scope", None) or task.key_prefix,
    )


def persist_spec(
    task: Task[..., Any],
    *,
    flow_name: str,
    task_run_name: str,
    run_id: str,
    map_index: int | None,
    parameters: Mapping[str, Any],
    results: PersistSettings,
) -> PersistSpec | None:
    """The PersistSpec of one task run, or None when nothing about it is stored.

    :func:`node_persistence` then :meth:`NodePersistence.spec`, for one task run
    alone (a run decides each node once, at set-up, and the plan asks the node).
    Raises FlowDefinitionError when the task asks for storage and the flow has
    no result store, or its target cannot be formatted.
    """
    node = node_persistence(task, flow_name=flow_name, mapped=map_index is not None, results=results)
    if node is None:
        return None
    return node.spec(task_run_name=task_run_name, run_id=run_id, map_index=map_index,
                     parameters=parameters, results=results)
