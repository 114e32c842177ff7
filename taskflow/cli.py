"""The ``taskflow`` command: run flows, read the run history, draw graphs.

::

    taskflow run flows/etl.py:etl -p n=10 [--address tcp://... | --local]
    taskflow runs [--flow NAME] [--state FAILED] [--limit N]
    taskflow show RUN_ID [--traceback]
    taskflow logs RUN_ID [--task NAME]
    taskflow visualize flows/etl.py:etl -o etl.png [--run RUN_ID]

Run ids may be shortened to any unique prefix.  The history is the one of
``taskflow.history.url`` (env ``DASK_TASKFLOW__HISTORY__URL``), or ``--history``.

Exit codes: 0 success; 1 a flow run that did not succeed (or an unexpected
error); 2 bad usage (a missing file or flow, an unknown parameter or run id, an
unreachable scheduler...), reported in one line, with the traceback only under
``--debug``.

Examples
--------
>>> from click.testing import CliRunner
>>> result = CliRunner().invoke(cli, ["--help"])
>>> result.exit_code
0
"""
from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any

import click
import dask

from taskflow.exceptions import TaskflowError
from taskflow.states import StateType

__all__ = ["cli", "main", "parse_parameters"]

_STATES = [t.value for t in StateType]


class CliError(click.ClickException):
    """A usage error: one line on stderr, exit code 2."""

    exit_code = 2


def parse_parameters(pairs: Sequence[str]) -> dict[str, Any]:
    """``["n=10", "name=x"]`` -> ``{"n": 10, "name": "x"}``: JSON when it parses, else text.

    Examples
    --------
    >>> parse_parameters(["n=10", "xs=[1, 2]", "name=etl", "flag=true", "empty="])
    {'n': 10, 'xs': [1, 2], 'name': 'etl', 'flag': True, 'empty': ''}
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise CliError(f"parameter {pair!r} must look like NAME=VALUE, e.g. -p n=10")
        try:
            out[name] = json.loads(text)
        except ValueError:
            out[name] = text
    return out


# -- formatting -------------------------------------------------------------------------
def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def _took(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"


def _oneline(text: str | None, width: int = 70) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= width else line[: width - 3] + "..."


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(click.unstyle(r[i])) for r in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c + " " * (w - len(click.unstyle(c))) for c, w in zip(r, widths)).rstrip()
        for r in cells
    )


_STYLE = {"SUCCESS": "green", "CACHED": "green", "SKIPPED": "bright_black", "RUNNING": "yellow",
          "RETRYING": "yellow", "PENDING": "bright_black"}


def _state(value: str) -> str:
    return click.style(value, fg=_STYLE.get(value, "red"), bold=True)


class _LineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        where = getattr(record, "task_run_name", "") or getattr(record, "flow_name", "") or "-"
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        return f"{stamp} {record.levelname:<7} {where} | {super().format(record)}"


class _ClearingHandler(logging.StreamHandler):
    """Writes records to stderr, first clearing the progress bar's line."""

    def __init__(self, clear: bool) -> None:
        super().__init__(sys.stderr)
        self.clear = clear

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return "\r\033[K" + text if self.clear else text


def _log_to_stderr(level: int, clear: bool) -> logging.Handler:
    """Show ``taskflow`` records at ``level`` and above; still record info ones in history."""
    handler = _ClearingHandler(clear)
    handler.setLevel(level)
    handler.setFormatter(_LineFormatter("%(message)s"))
    # Added before the run starts, so taskflow adds no stderr handler of its own; the
    # logger's level still follows taskflow.logging.level.
    logging.getLogger("taskflow").addHandler(handler)
    return handler


# -- the group --------------------------------------------------------------------------
class _Group(click.Group):
    """Turns taskflow errors into one-line messages (tracebacks only with --debug)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as e:
            debug = bool((ctx.obj or {}).get("debug"))
            if debug:
                traceback.print_exception(e, file=sys.stderr)
            if isinstance(e, TaskflowError):
                raise CliError(str(e)) from None
            hint = "" if debug else " (run with --debug for the traceback)"
            err = click.ClickException(f"{type(e).__name__}: {e}{hint}")
            raise err from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--history", "history_url", metavar="URL",
              help="Run history to use (default: taskflow.history.url, else a SQLite "
                   "file in your data directory).")
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
@click.version_option(package_name="dask-taskflow", prog_name="taskflow")
@click.pass_context
def cli(ctx: click.Context, history_url: str | None, debug: bool) -> None:
    """taskflow: run flows on Dask, and look at their runs."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if history_url:
        ctx.with_resource(dask.config.set({"taskflow.history.url": history_url}))


def _history() -> Any:
    from taskflow.history import open_history

    return open_history()


# -- run --------------------------------------------------------------------------------
@cli.command()
@click.argument("target", metavar="FILE.py:FLOW")
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE",
              help="A parameter value (JSON, else text); repeat for several.")
@click.option("--address", metavar="ADDRESS", help="Run on the Dask scheduler at ADDRESS.")
@click.option("--local", is_flag=True, help="Run in this process, one task at a time.")
@click.option("--progress/--no-progress", default=None,
              help="Draw a progress bar (default: when stderr is a terminal).")
@click.option("-v", "--verbose", is_flag=True, help="Show info log records of the run.")
def run(target: str, params: tuple[str, ...], address: str | None, local: bool,
        progress: bool | None, verbose: bool) -> None:
    """Run a flow, with a progress bar.

    FILE.py:FLOW names a flow in a file (or pkg.module:FLOW, in an importable
    module; :FLOW may be left out when the file has one flow).  Prints the dashboard link, the final state and the result's repr; exits 0
    when the run succeeds, 1 when it does not.
    """
    from taskflow.engine.observers import add_observer, remove_observer
    from taskflow.executors import DaskExecutor, LocalExecutor
    from taskflow.executors.base import Executor
    from taskflow.loading import load_flow
    from taskflow.progress import ProgressBar, RunProgress

    if address and local:
        raise CliError("give --address or --local, not both")
    flow = load_flow(target)
    values = parse_parameters(params)
    flow.bind_parameters(values)  # unknown or missing parameters fail here, fast
    executor: Executor | None = None
    if local:
        executor = LocalExecutor()
    elif address:
        dask_executor = DaskExecutor(address=address)
        dask_executor.client  # noqa: B018 - connect now: an unreachable address is a usage error
        executor = dask_executor

    def started(run_id: str, flow_name: str, link: str | None) -> None:
        click.echo(f"flow run {run_id} of {flow_name!r}" + (f"; dashboard: {link}" if link else ""),
                   err=True)

    watcher = RunProgress(on_start=started)
    add_observer(watcher)
    show_bar = sys.stderr.isatty() if progress is None else progress
    handler = _log_to_stderr(logging.INFO if verbose else logging.WARNING, show_bar)
    bar = ProgressBar(watcher).start() if show_bar else None
    try:
        result = flow.run(executor=executor, **values)
    finally:
        remove_observer(watcher)
        if bar is not None:
            bar.stop()
        logging.getLogger("taskflow").removeHandler(handler)
        if executor is not None:
            executor.close()
    if bar is None:  # the bar's last line says the same
        counts = watcher.counts()
        click.echo(f"tasks: {counts.done}/{counts.total} done, {counts.failed} failed", err=True)
    state = result.state
    click.echo(f"state: {_state(state.type.value)}" + (f": {state.message}" if state.message else ""))
    if state.is_successful():
        text = repr(state.result)
        click.echo(f"result: {text if len(text) <= 2000 else text[:1997] + '...'}")
        return
    causes = (StateType.FAILED, StateType.TIMED_OUT, StateType.CRASHED)
    failed = sorted(((n, s) for n, s in result.task_states.items() if s.is_failed()),
                    key=lambda item: item[1].type not in causes)
    for name, s in failed[:10]:
        click.echo(f"  {name}: {s.type.value}: {_oneline(s.message, 200)}", err=True)
    if len(failed) > 10:
        click.echo(f"  ... and {len(failed) - 10} more: taskflow show {result.run_id[:8]}",
                   err=True)
    sys.exit(1)


# -- history ----------------------------------------------------------------------------
@cli.command()
@click.option("--flow", "flow_name", metavar="NAME", help="Only runs of this flow.")
@click.option("--state", type=click.Choice(_STATES, case_sensitive=False),
              help="Only runs that ended (or are) in this state.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1),
              help="At most this many runs, newest first.")
def runs(flow_name: str | None, state: str | None, limit: int) -> None:
    """List recent flow runs."""
    with _history() as history:
        found = history.runs(flow=flow_name, state=state, limit=limit)
        where = history.display_url
    if not found:
        click.echo(f"no flow runs in the history at {where}", err=True)
        return
    rows = [(r.id[:8], r.flow_name, _state(r.state), _when(r.started_at), _took(r.duration),
             _oneline(r.message, 60)) for r in found]
    click.echo(_table(["RUN ID", "FLOW", "STATE", "STARTED", "DURATION", "MESSAGE"], rows))


@cli.command()
@click.argument("run_id")
@click.option("--traceback", "-t", "show_tb", is_flag=True,
              help="Print the traceback of each failed task run.")
def show(run_id: str, show_tb: bool) -> None:
    """Show a flow run and its task runs.

    RUN_ID may be shortened to any unique prefix.
    """
    with _history() as history:
        r = history.get_run(run_id)
        tasks = history.task_runs(r.id)
    head = [
        ("flow run", r.id),
        ("flow", r.flow_name),
        ("state", _state(r.state) + (f": {r.message}" if r.message else "")),
        ("parameters", r.parameters),
        ("started", f"{_when(r.started_at)}  (took {_took(r.duration)})"),
        ("executor", (r.executor or "-") + (f" at {r.address}" if r.address else "")),
        ("dashboard", r.dashboard_link or "-"),
    ]
    for label, value in head:
        click.echo(f"{label:<11}{value}")
    click.echo()
    if not tasks:
        click.echo("no task runs recorded")
        return
    rows = [(t.name, _state(t.state), t.attempts, _took(t.duration), t.worker or "-",
             _oneline(t.message)) for t in tasks]
    click.echo(_table(["TASK", "STATE", "ATTEMPTS", "DURATION", "WORKER", "MESSAGE"], rows))
    if show_tb:
        for t in tasks:
            if t.traceback:
                click.echo(f"\n--- {t.name} ---\n{t.traceback.rstrip()}")


@cli.command()
@click.argument("run_id")
@click.option("--task", "task_name", metavar="NAME",
              help="Only this task run (for a mapped task: all its children).")
def logs(run_id: str, task_name: str | None) -> None:
    """Print the log records of a flow run's tasks."""
    with _history() as history:
        r = history.get_run(run_id)
        records = history.logs(r.id, task=task_name)
    if not records:
        what = f" of task {task_name!r}" if task_name else ""
        click.echo(f"no log records{what} in flow run {r.id[:8]}", err=True)
        return
    for rec in records:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(rec.created))
        level = logging.getLevelName(rec.level)
        click.echo(f"{stamp}.{int(rec.created * 1000) % 1000:03d} {level:<7} "
                   f"{rec.task or '-'} | {rec.message}")


# -- graphs -----------------------------------------------------------------------------
@cli.command()
@click.argument("target", metavar="FILE.py:FLOW")
@click.option("-o", "--output", metavar="FILE",
              help="Where to write: .png, .svg, .pdf or .dot (default: FLOW.png).")
@click.option("--run", "run_id", metavar="RUN_ID", help="Colour tasks by this run's states.")
def visualize(target: str, output: str | None, run_id: str | None) -> None:
    """Draw a flow's graph, optionally coloured by a run."""
    from taskflow.loading import load_flow
    from taskflow.visualize import visualize as draw

    flow = load_flow(target)
    path = output or f"{flow.name}.png"
    draw(flow, path, run=run_id)
    click.echo(f"wrote {path}")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``taskflow`` console script."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="taskflow")


if __name__ == "__main__":
    main()
