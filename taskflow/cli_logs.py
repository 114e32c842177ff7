"""``taskflow logs RUN_ID``: a run's log records, streamed, whatever the run's size.

The records are read a chunk at a time (:mod:`taskflow.history.streams`) and
written as they come, so printing the logs of a run of a million task runs
holds one chunk, not the run.  ``--limit``/``--offset`` take a page of records
(as ``taskflow show`` takes a page of task runs); where the next page starts is
said on stderr, so stdout stays the records alone (pager- and grep-friendly).
A reader that goes away (``| head``) ends the command quietly.

Examples
--------
>>> from click.testing import CliRunner
>>> from taskflow.cli import cli
>>> CliRunner().invoke(cli, ["logs", "--help"]).exit_code
0
"""
from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

import click

from taskflow.cli_common import CliError, format_table, oneline, open_history

__all__ = ["print_logs"]

_LINES = 1000  # lines written at once


def _line(rec: Any) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(rec.created))
    level = logging.getLevelName(rec.level)
    return (f"{stamp}.{int(rec.created * 1000) % 1000:03d} {level:<7} "
            f"{rec.task or '-'} | {rec.message}")


def _write(lines: Iterable[str]) -> int:
    """Write ``lines`` to stdout a thousand at a time; how many were written."""
    n = 0
    out: list[str] = []
    for line in lines:
        out.append(line)
        if len(out) >= _LINES:
            click.echo("\n".join(out))
            n += len(out)
            out = []
    if out:
        click.echo("\n".join(out))
        n += len(out)
    return n


def _unknown_task(run_id: str, task: str, found: Any) -> CliError:
    short = run_id[:8]
    near = f"; did you mean {' or '.join(repr(c) for c in found.close)}?" if found.close else ""
    if not found.total:
        return CliError(f"flow run {short} has no task run named {task!r}: it recorded none")
    some = ", ".join(found.some)
    more = f", ... ({found.total:,} in all)" if found.total > len(found.some) else ""
    return CliError(f"flow run {short} has no task run named {task!r}{near or '.'} Its tasks: "
                    f"{some}{more}; `taskflow show {short}` lists its task runs")


def _attempt_rows(attempts: Iterator[Any]) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for a in attempts:
        chunk.append(a)
        if len(chunk) >= _LINES:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def print_logs(run_id: str, task: str | None = None, *, show_tb: bool = False,
               by_time: bool = False, limit: int | None = None, offset: int = 0) -> None:
    """Print a run's log records (see the module's docstring), then its retried attempts.

    Raises
    ------
    CliError
        When ``task`` names no task run of the run (the error says which names
        it has), or ``limit``/``offset`` is out of range.
    """
    from taskflow.history import streams

    if limit is not None and limit < 1:
        raise CliError(f"--limit must be 1 or more, not {limit}")
    if offset < 0:
        raise CliError(f"--offset must be 0 or more, not {offset}")
    try:
        with open_history() as history:
            r = history.get_run(run_id)
            if task is not None:
                found = streams.find_task(history, r.id, task)
                if not found.found:
                    raise _unknown_task(r.id, task, found)
            records = streams.logs(history, r.id, task, by_time=by_time, offset=offset)
            shown = _write(_line(rec) for _, rec in zip(range(limit or sys.maxsize), records))
            total = None
            if limit is not None and shown == limit or offset and not shown:
                total = streams.log_total(history, r.id, task)
            retried = 0
            if total is None or offset + shown >= total:  # the records' end: then the attempts
                for chunk in _attempt_rows(streams.retried_attempts(history, r.id, task)):
                    if not retried:
                        click.echo("\nretried attempts:")
                    retried += len(chunk)
                    click.echo(format_table(["TASK", "ATTEMPT", "WORKER", "REASON"], [
                        (a.name, a.attempt, a.worker or "-", oneline(a.message, 120))
                        for a in chunk]))
                    if show_tb:
                        for a in chunk:
                            if a.traceback:
                                click.echo(f"\n--- {a.name}, attempt {a.attempt} ---\n"
                                           f"{a.traceback.rstrip()}")
    except BrokenPipeError:  # `taskflow logs RUN | head`: the reader has all it wants
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so Python's exit flush does not fail too
        sys.exit(0)
    what = f" of task {task!r}" if task else ""
    if total is not None and shown and offset + shown < total:
        click.echo(f"log records {offset + 1:,} to {offset + shown:,} of {total:,}{what}; next: "
                   f"taskflow logs {r.id[:8]} --offset {offset + shown}"
                   + (f" --limit {limit}" if limit else ""), err=True)
    elif total is not None and not shown:
        click.echo(f"no log records{what} from offset {offset:,}: flow run {r.id[:8]} has "
                   f"{total:,}", err=True)
    elif not shown and not retried:
        click.echo(f"no log records{what} in flow run {r.id[:8]}", err=True)
