"""Run logging: ``get_run_logger()`` in tasks, and records that cross processes.

Inside a task, :func:`get_run_logger` gives the ``taskflow.task_runs`` logger;
every record it makes carries ``flow_name``, ``flow_run_id`` and
``task_run_name``.  When the task runs in a worker process, a handler turns each
record into a small event that travels with the state events to the process
that runs the flow, which emits it into its own logging (:func:`emit_remote`),
so ``logging`` configuration in that process sees worker records too.
"""
from __future__ import annotations

import logging
import sys
from typing import Any

from taskflow import config
from taskflow.context import current

__all__ = ["get_run_logger"]

TASK_LOGGER = "taskflow.task_runs"
FLOW_LOGGER = "taskflow.flow_runs"
_FIELDS = ("flow_name", "flow_run_id", "task_run_name")


class _RunFields(logging.Filter):
    """Adds flow, run and task names to records (empty strings outside a run)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "task_run_name"):
            ctx = current()
            record.flow_name = ctx.flow_name if ctx else ""
            record.flow_run_id = ctx.run_id if ctx else ""
            record.task_run_name = ctx.task_run_name if ctx else ""
        return True


class _Forward(logging.Handler):
    """Sends records made inside a task run to the flow's process."""

    def emit(self, record: logging.LogRecord) -> None:
        ctx = current()
        if ctx is None or ctx.forward is None:
            return
        try:
            ctx.forward(encode(record))
        except Exception:  # a log record must never fail a task
            self.handleError(record)


_task_logger = logging.getLogger(TASK_LOGGER)
_task_logger.addFilter(_RunFields())
_forward = _Forward()


def get_run_logger() -> logging.Logger:
    """The logger for the running task.

    Records carry ``flow_name``, ``flow_run_id`` and ``task_run_name``; those made
    on worker processes show up in the logging of the process that runs the flow.

    Examples
    --------
    >>> from taskflow import task, get_run_logger
    >>> @task
    ... def total(xs):
    ...     get_run_logger().info("summing %d numbers", len(xs))
    ...     return sum(xs)
    """
    return _task_logger


def prepare_worker(level: int) -> None:
    """In a process that runs tasks for another process: forward records."""
    if _forward not in _task_logger.handlers:
        _task_logger.addHandler(_forward)
    if _task_logger.getEffectiveLevel() > level:
        _task_logger.setLevel(level)


def encode(record: logging.LogRecord) -> dict[str, Any]:
    """A record as a small msgpack-friendly dict (the message already formatted)."""
    msg = record.getMessage()
    if record.exc_info and record.exc_info[0] is not None:
        msg += "\n" + logging.Formatter().formatException(record.exc_info)
    return {
        "kind": "log",
        "name": record.name,
        "level": record.levelno,
        "msg": msg,
        "created": record.created,
        "flow_name": getattr(record, "flow_name", ""),
        "run": getattr(record, "flow_run_id", ""),
        "task": getattr(record, "task_run_name", ""),
        "process": record.process,
        "thread": record.threadName,
    }


def emit_remote(event: dict[str, Any], worker: str = "") -> None:
    """Emit a record that came from a worker into this process's logging."""
    logger = logging.getLogger(event.get("name") or TASK_LOGGER)
    if not logger.isEnabledFor(event["level"]):
        return
    record = logging.makeLogRecord(
        {
            "name": logger.name,
            "levelno": event["level"],
            "levelname": logging.getLevelName(event["level"]),
            "msg": event["msg"],
            "args": None,
            "created": event["created"],
            "flow_name": event.get("flow_name", ""),
            "flow_run_id": event.get("run", ""),
            "task_run_name": event.get("task", ""),
            "worker": worker,
        }
    )
    logger.handle(record)


_installed: logging.Handler | None = None


def install_handler() -> None:
    """Once per process: level of the ``taskflow`` logger, and a stderr handler.

    Driven by ``taskflow.logging.level`` and ``taskflow.logging.handler``.  The
    handler is added only if the ``taskflow`` logger has none.
    """
    global _installed
    root = logging.getLogger("taskflow")
    level = config.get("logging.level")
    if root.level == logging.NOTSET and level:
        root.setLevel(str(level).upper() if isinstance(level, str) else level)
    if _installed is None and config.get("logging.handler") and not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.addFilter(_RunFields())
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s | %(levelname)-7s | %(flow_name)s | %(task_run_name)s | %(message)s"
            )
        )
        root.addHandler(handler)
        _installed = handler
