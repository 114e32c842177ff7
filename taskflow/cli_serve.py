"""The ``taskflow serve`` command, and ``taskflow run NAME`` of a served flow.

::

    taskflow serve flows/etl.py:etl --every 15m -p n=100
    taskflow serve flows/etl.py:etl flows/report.py:report --cron "0 6 * * *" --timezone Europe/Berlin
    taskflow serve flows/etl.py:etl            (the flow's own schedule=, or ad hoc runs only)
    taskflow serve flows/etl.py:etl --notify env:SLACK_WEBHOOK_URL   (told of failed runs)
    taskflow run etl -p n=3                    (from any shell sharing the run history)

A serve process and the shells asking it for runs share nothing but the run
history (``taskflow.history.url``): in a cluster, point both at one PostgreSQL.
"""
from __future__ import annotations

import logging
import sys
import time
from typing import TYPE_CHECKING, Any

import click

from taskflow.cli_common import (
    CliError,
    executor_options,
    format_state,
    log_to_stderr,
    make_executor,
    oneline,
    open_history,
    parse_parameters,
)
from taskflow.states import State, StateType

if TYPE_CHECKING:  # the history (SQLAlchemy) is imported when a command needs it
    from taskflow.history.serving import ServedFlowRecord

__all__ = ["not_served", "run_served", "serve", "served_flow_named"]

# How long `taskflow run NAME` waits for the serve process to take its request.
TAKE_TIMEOUT = 60.0
_POLL = 0.2


@click.command()
@click.argument("targets", nargs=-1, required=True, metavar="FILE.py:FLOW...")
@click.option("--cron", metavar="EXPR",
              help='A cron expression, e.g. "0 * * * *" (a 6th field is seconds).')
@click.option("--every", metavar="DURATION", help="An interval, e.g. 15m, 1h, 30s.")
@click.option("--timezone", metavar="TZ", help="Time zone of --cron (IANA name; default UTC).")
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE",
              help="A parameter value for every run (JSON, else text); repeat for several.")
@executor_options
@click.option("--overlap", is_flag=True,
              help="Start a due run even while the previous run of the flow still goes.")
@click.option("--catch-up", is_flag=True,
              help="Run the runs that fell due while no server ran (default: skip them).")
@click.option("--on-stop", type=click.Choice(["wait", "cancel"]), default="wait",
              show_default=True, help="On SIGTERM / Ctrl-C: let running runs finish, or cancel them.")
@click.option("--stop-timeout", metavar="DURATION",
              help="With --on-stop wait: cancel runs still going after this (default "
                   "taskflow.serve.stop-timeout).")
@click.option("--notify", "notify", multiple=True, metavar="URL",
              help="POST a notification to this webhook (Slack, Teams, any URL; env:NAME reads "
                   "it from the environment) when a served run fails or crashes; repeatable.")
@click.option("-q", "--quiet", is_flag=True, help="Only show warnings and errors.")
def serve(targets: tuple[str, ...], cron: str | None, every: str | None, timezone: str | None,
          params: tuple[str, ...], address: str | None, cluster_class: str | None,
          cluster_kwargs: str | None, adapt: str | None, overlap: bool, catch_up: bool,
          on_stop: str, stop_timeout: str | None, notify: tuple[str, ...], quiet: bool) -> None:
    """Start flow runs on a schedule until SIGTERM or Ctrl-C.

    Serves each FILE.py:FLOW on --cron or --every (or on the flow's own
    schedule=), sending runs to the configured cluster (or --address /
    --cluster-class) and recording them in the run history.  A failing run
    does not stop the server; a due run is skipped while the flow's previous
    run still goes (unless --overlap).  `taskflow run FLOW -p ...` from any
    shell sharing the history starts an ad hoc run.
    """
    from taskflow.deploy.schedules import parse_schedule
    from taskflow.deploy.serve import Deployment, Server
    from taskflow.loading import load_flow

    if timezone and not cron:
        raise CliError("--timezone goes with --cron")
    schedule = parse_schedule(cron=cron, every=every, timezone=timezone) if cron or every else None
    values = parse_parameters(params)
    deployments = [Deployment(load_flow(t), schedule, values, overlap=overlap, catch_up=catch_up,
                              target=t) for t in targets]
    handler = log_to_stderr(logging.WARNING if quiet else logging.INFO, False)
    if notify:
        from taskflow.notify import webhook

        hooks = [webhook(url) for url in notify]  # a bad URL fails here, before serving
    executor = make_executor(address, cluster_class, cluster_kwargs, adapt)
    try:
        server = Server(deployments, executor, on_stop=on_stop, stop_timeout=stop_timeout,
                        notify=hooks if notify else ())
        for d in deployments:
            click.echo(f"serving flow {d.name!r} from {d.target}: {d.describe()}", err=True)
        click.echo("SIGTERM or Ctrl-C stops; `taskflow run NAME -p ...` asks for a run", err=True)
        server.serve()
    finally:
        logging.getLogger("taskflow").removeHandler(handler)
        if executor is not None:
            executor.close()


def not_served(target: str) -> CliError:
    """The error for a bare name that is neither a served flow nor a module with a flow."""
    from taskflow.history import serving

    with open_history() as history:
        served = ", ".join(sorted(r.name for r in serving.served_flows(history))) or "none"
    return CliError(f"no flow named {target!r} is served (served flows: {served}), and no "
                    f"module {target!r} defines a flow; to run a flow from a file, give "
                    "FILE.py:FLOW")


def served_flow_named(target: str) -> ServedFlowRecord | None:
    """The served flow ``target`` names, when it is a bare name (not FILE.py:FLOW)."""
    if any(c in target for c in ":/\\.") or not target.isidentifier():
        return None
    from taskflow import config

    if not config.get("history.enabled"):
        return None
    from taskflow.history import serving

    with open_history() as history:
        found = {r.name: r for r in serving.served_flows(history)}
    record = found.get(target)
    if record is None:
        return None
    from dask.utils import parse_timedelta

    if not record.alive(float(parse_timedelta(config.get("history.stale-after")))):
        raise CliError(f"flow {target!r} was served by pid {record.pid} on {record.host}, but no "
                       "serve process serves it now; start one with `taskflow serve "
                       f"{record.target or 'FILE.py:' + target}`")
    return record


def run_served(record: ServedFlowRecord, values: dict[str, Any], timeout: float | None) -> None:
    """Ask the serve process for a run of ``record``'s flow; follow it to its end; exit."""
    from taskflow.history import serving
    from taskflow.history.records import UnknownRunError

    deadline = None if timeout is None else time.monotonic() + timeout
    with open_history() as history:
        request_id = serving.request_run(history, record.name, values)
        click.echo(f"asked the serve process of {record.name!r} (pid {record.pid} on "
                   f"{record.host}) for a run", err=True)
        take_by = time.monotonic() + TAKE_TIMEOUT
        request = serving.get_request(history, request_id)
        while request.state == serving.PENDING:
            if time.monotonic() > take_by:
                raise CliError(f"the serve process of {record.name!r} did not take the request "
                               f"within {TAKE_TIMEOUT:g} s; is it still running?")
            time.sleep(_POLL)
            request = serving.get_request(history, request_id)
        if request.state == serving.REFUSED:
            raise CliError(f"the serve process refused the run: {request.message}")
        run_id = request.run_id or ""
        from taskflow.config import run_url

        page = run_url(run_id)
        click.echo(f"flow run {run_id} of {record.name!r}" + (f"; page: {page}" if page else ""),
                   err=True)
        while True:
            try:
                r = history.get_run(run_id)
                if State(StateType(r.state)).is_finished():
                    break
            except UnknownRunError:
                pass  # its first record is on its way
            if deadline is not None and time.monotonic() > deadline:
                click.echo(f"still running after {timeout:g} s: taskflow show {run_id[:8]}",
                           err=True)
                sys.exit(1)
            time.sleep(_POLL)
        from taskflow.history.streams import unsuccessful

        tasks = unsuccessful(history, run_id, 10)  # not every task run of a wide run
    click.echo(f"state: {format_state(r.state)}" + (f": {r.message}" if r.message else ""))
    if r.state in (StateType.SUCCESS.value, StateType.CACHED.value):
        return
    for t in tasks:
        click.echo(f"  {t.name}: {t.state}: {oneline(t.message, 200)}", err=True)
    sys.exit(1)
