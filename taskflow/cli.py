"""The ``taskflow`` command: run flows, read the run history, draw graphs.

::

    taskflow run flows/etl.py:etl -p n=10 [--address tcp://... | --cluster-class PATH | --local]
    taskflow run flows/etl.py:etl --resume RUN_ID   (persisted results stand in for their tasks)
    taskflow run etl -p n=10          (an ad hoc run of a flow a serve process serves)
    taskflow serve flows/etl.py:etl [--cron "0 * * * *" | --every 15m]
    taskflow runs [--flow NAME] [--state FAILED] [--limit N] [--offset M]
    taskflow show RUN_ID [--traceback] [--limit N] [--offset M]
    taskflow logs RUN_ID [--task NAME] [--traceback] [--by-time] [--limit N] [--offset M]
    taskflow visualize flows/etl.py:etl -o etl.png [--run RUN_ID]
    taskflow server [--host 127.0.0.1] [--port 8080] [--token TOKEN]   (web UI and JSON API)
    taskflow cancel RUN_ID

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

import logging
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import click
import dask

from taskflow import settings
from taskflow.cli_common import (
    CliError,
    executor_options,
    format_state,
    format_table,
    format_took,
    format_when,
    log_to_stderr,
    make_executor,
    oneline,
    open_history,
    parameter_texts,
    parse_parameters,
)
from taskflow.cli_serve import not_served, run_served, serve, served_flow_named
from taskflow.cli_server import cancel, server
from taskflow.exceptions import TaskflowError
from taskflow.records import TaskRunRecord
from taskflow.states import StateType

__all__ = ["cli", "main", "parse_parameters"]

_STATES = [t.value for t in StateType]


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
    settings.check()  # a bad setting is named before any command starts its work


# -- run --------------------------------------------------------------------------------
@cli.command()
@click.argument("target", metavar="FILE.py:FLOW")
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE",
              help="A parameter value (JSON, else text; converted to the flow's type hint "
                   "where that is unambiguous); repeat for several.")
@executor_options
@click.option("--local", is_flag=True, help="Run in this process, one task at a time.")
@click.option("--progress/--no-progress", default=None,
              help="Draw a progress bar (default: when stderr is a terminal).")
@click.option("-v", "--verbose", is_flag=True, help="Show info log records of the run.")
@click.option("--resume", metavar="RUN_ID",
              help="Run a finished run's flow again with its parameters (-p may repeat "
                   "them, not change them); tasks whose results it persisted end CACHED "
                   "(found through the result store).")
@click.option("--timeout", "wait_timeout", metavar="SECONDS", type=float, default=None,
              help="Served flows: give up waiting for the run after SECONDS (exit 1).")
def run(target: str, params: tuple[str, ...], address: str | None, cluster_class: str | None,
        cluster_kwargs: str | None, adapt: str | None, local: bool, progress: bool | None,
        verbose: bool, resume: str | None, wait_timeout: float | None) -> None:
    """Run a flow, with a progress bar.

    FILE.py:FLOW names a flow in a file (or pkg.module:FLOW, in an importable
    module; :FLOW may be left out when the file has one flow).  Prints the
    dashboard link, the final state and the result's repr; exits 0 when the run
    succeeds, 1 when it does not.

    A bare NAME asks the `taskflow serve` process serving the flow NAME for an
    ad hoc run with these parameters (through the run history) and follows it.
    """
    from taskflow.engine.observers import add_observer, remove_observer
    from taskflow.loading import FlowNotFoundError, load_flow
    from taskflow.progress import ProgressBar, RunProgress

    values = parse_parameters(params)
    served = served_flow_named(target)
    if served is not None:
        if address or cluster_class or local or resume:
            raise CliError(f"flow {target!r} is served: its runs go where its serve process "
                           "sends them; leave out --address, --cluster-class, --local and "
                           "--resume")
        run_served(served, values, wait_timeout)
        return
    try:
        flow = load_flow(target)
    except FlowNotFoundError:
        if target.isidentifier():  # a bare name: maybe a served flow's, mistyped
            raise not_served(target) from None
        raise
    # unknown, missing or ill-typed parameters fail here, fast (with --resume, values
    # may repeat the resumed run's; those that differ are refused when it is read)
    texts = parameter_texts(params)
    if resume:
        resume = _full_run_id(resume)
        values = flow.check_parameters(values, texts=texts)
    else:
        bound = flow.bind_parameters(values, texts=texts)
        values = {name: bound[name] for name in values}
    executor = make_executor(address, cluster_class, cluster_kwargs, adapt, local)

    def started(run_id: str, flow_name: str, link: str | None) -> None:
        from taskflow.config import run_url

        page = run_url(run_id)
        where = f"; page: {page}" if page else f"; dashboard: {link}" if link else ""
        click.echo(f"flow run {run_id} of {flow_name!r}{where}", err=True)

    watcher = RunProgress(on_start=started)
    add_observer(watcher)
    show_bar = sys.stderr.isatty() if progress is None else progress
    handler = log_to_stderr(logging.INFO if verbose else logging.WARNING, show_bar)
    bar = ProgressBar(watcher).start() if show_bar else None
    try:
        result = flow.run(executor=executor, resume=resume, **values)
    finally:
        remove_observer(watcher)
        if bar is not None:
            bar.stop()
        logging.getLogger("taskflow").removeHandler(handler)
        if executor is not None:
            executor.close()
    if bar is None:  # the bar's last line says the same
        click.echo(_summary(result.task_records), err=True)
    state = result.state
    click.echo(f"state: {format_state(state.type.value)}" + (f": {state.message}" if state.message else ""))
    if state.is_successful():
        text = repr(state.result)
        click.echo(f"result: {text if len(text) <= 2000 else text[:1997] + '...'}")
        return
    causes = (StateType.FAILED, StateType.TIMED_OUT, StateType.CRASHED)
    failed = sorted(((n, s) for n, s in result.task_states.items() if s.is_failed()),
                    key=lambda item: item[1].type not in causes)
    for name, s in failed[:10]:
        click.echo(f"  {name}: {s.type.value}: {oneline(s.message, 200)}", err=True)
    if len(failed) > 10:
        click.echo(f"  ... and {len(failed) - 10} more: taskflow show {result.run_id[:8]}",
                   err=True)
    sys.exit(1)


def _summary(records: list[TaskRunRecord]) -> str:
    """``tasks: 7/7 done, 1 failed``: every task of the flow, a mapped one by its children."""
    parents = {r.node for r in records if r.map_index is not None}
    ones = [r for r in records if r.name not in parents]
    done = sum(1 for r in ones if r.finished)
    failed = sum(1 for r in ones if r.failed)
    return f"tasks: {done}/{len(ones)} done, {failed} failed"


def _full_run_id(run_id: str) -> str:
    """A run id prefix made whole through the history, when the history knows it."""
    from taskflow import config
    from taskflow.history import HistoryError

    if not config.get("history.enabled"):
        return run_id
    try:
        with open_history() as history:
            return history.get_run(run_id).id
    except HistoryError:  # unknown here: the result store may still know it
        return run_id


# -- history ----------------------------------------------------------------------------
@cli.command()
@click.option("--flow", "flow_name", metavar="NAME", help="Only runs of this flow.")
@click.option("--state", type=click.Choice(_STATES, case_sensitive=False),
              help="Only runs that ended (or are) in this state.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1),
              help="At most this many runs, newest first.")
@click.option("--offset", default=0, show_default=True, type=click.IntRange(min=0),
              help="Skip this many runs first (the next page: --offset 20).")
def runs(flow_name: str | None, state: str | None, limit: int, offset: int) -> None:
    """List recent flow runs."""
    with open_history() as history:
        found = history.runs(flow=flow_name, state=state, limit=limit, offset=offset)
        where = history.display_url
    if not found:
        past = f" from offset {offset}" if offset else ""
        click.echo(f"no flow runs{past} in the history at {where}", err=True)
        return
    rows = [(r.id[:8], r.flow_name, format_state(r.state), format_when(r.started_at), format_took(r.duration),
             oneline(r.message, 60)) for r in found]
    click.echo(format_table(["RUN ID", "FLOW", "STATE", "STARTED", "DURATION", "MESSAGE"], rows))


@cli.command()
@click.argument("run_id")
@click.option("--traceback", "-t", "show_tb", is_flag=True,
              help="Print the traceback of each failed task run and retried attempt.")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Show at most this many task runs (a page; only those are read).")
@click.option("--offset", default=0, show_default=True, type=click.IntRange(min=0),
              help="Skip this many task runs first (the next page: --offset 1000).")
def show(run_id: str, show_tb: bool, limit: int, offset: int) -> None:
    """Show a flow run and its task runs, a page at a time.

    RUN_ID may be shortened to any unique prefix.  Task runs are listed in the
    order they first reported, each mapped task's children together by index.
    """
    from taskflow.history.paging import attempts_of, task_runs_page

    with open_history() as history:
        r = history.get_run(run_id)
        tasks, total = task_runs_page(history, r.id, offset=offset, limit=limit)
        attempts = attempts_of(history, r.id, [t.name for t in tasks])
    head = [
        ("flow run", r.id),
        ("flow", r.flow_name),
        ("state", format_state(r.state) + (f": {r.message}" if r.message else "")),
        ("parameters", r.parameters),
        ("started", f"{format_when(r.started_at)}  (took {format_took(r.duration)})"),
        ("executor", (r.executor or "-") + (f" at {r.address}" if r.address else "")),
        ("dashboard", r.dashboard_link or "-"),
    ]
    from taskflow.config import run_url

    if run_url(r.id):
        head.append(("page", run_url(r.id)))
    for label, value in head:
        click.echo(f"{label:<11}{value}")
    click.echo()
    if not tasks:
        click.echo("no task runs recorded" if not total else
                   f"no task runs from offset {offset}: the run has {total:,}")
        return
    rows = [(t.name, format_state(t.state), t.attempts, format_took(t.duration), t.worker or "-",
             oneline(t.message)) for t in tasks]
    click.echo(format_table(["TASK", "STATE", "ATTEMPTS", "DURATION", "WORKER", "MESSAGE"], rows))
    if len(tasks) < total:
        after = offset + len(tasks)
        more = f"; next: taskflow show {r.id[:8]} --offset {after}" if after < total else ""
        click.echo(f"\ntask runs {offset + 1:,} to {after:,} of {total:,}{more}")
    retried = [a for a in attempts if a.state == StateType.RETRYING.value]
    _echo_attempts(retried)
    if show_tb:
        earlier: dict[str, list[Any]] = {}
        for a in retried:
            earlier.setdefault(a.name, []).append(a)
        for t in tasks:
            for a in earlier.get(t.name, []):
                if a.traceback:
                    click.echo(f"\n--- {t.name}, attempt {a.attempt} ---\n{a.traceback.rstrip()}")
            if t.traceback:
                click.echo(f"\n--- {t.name} ---\n{t.traceback.rstrip()}")


def _echo_attempts(attempts: Sequence[Any]) -> None:
    """Attempts that raised and were retried, with their reasons."""
    if not attempts:
        return
    click.echo("\nretried attempts:")
    rows = [(a.name, a.attempt, a.worker or "-", oneline(a.message, 120)) for a in attempts]
    click.echo(format_table(["TASK", "ATTEMPT", "WORKER", "REASON"], rows))


@cli.command()
@click.argument("run_id")
@click.option("--task", "task_name", metavar="NAME",
              help="Only this task run (for a mapped task: all its children).")
@click.option("--traceback", "-t", "show_tb", is_flag=True,
              help="Also print the traceback of each retried attempt.")
@click.option("--by-time", is_flag=True,
              help="One timeline, task runs interleaved (default: task run by task run).")
@click.option("--limit", default=None, type=click.IntRange(min=1),
              help="Print at most this many log records (default: all, streamed).")
@click.option("--offset", default=0, show_default=True, type=click.IntRange(min=0),
              help="Skip this many log records first (the next page: --offset 1000).")
def logs(run_id: str, task_name: str | None, show_tb: bool, by_time: bool, limit: int | None,
         offset: int) -> None:
    """Print the log records of a flow run's tasks, then its retried attempts.

    Records are grouped by task run, in the order `taskflow show` lists them
    (mapped children by index), each task run's in time order.  They are read
    and printed a chunk at a time, whatever the run's size: pipe them to a
    pager, or take a page with --limit and --offset.
    """
    from taskflow.cli_logs import print_logs

    print_logs(run_id, task_name, show_tb=show_tb, by_time=by_time, limit=limit, offset=offset)


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


cli.add_command(serve)
cli.add_command(server)
cli.add_command(cancel)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``taskflow`` console script."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="taskflow")


if __name__ == "__main__":
    main()
