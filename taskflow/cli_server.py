"""The ``taskflow server`` and ``taskflow cancel`` commands.

::

    taskflow server [--host 127.0.0.1] [--port 8080] [--history URL] [--token TOKEN]
    taskflow cancel RUN_ID        (what the server's Cancel button does)

The server reads and writes only the run history; runs it asks for are started
by the ``taskflow serve`` processes serving their flows.
"""
from __future__ import annotations

import click

from taskflow.cli_common import CliError, open_history

__all__ = ["cancel", "server"]


@click.command()
@click.option("--host", metavar="HOST",
              help="Address to listen on (default taskflow.server.host: 127.0.0.1). Anything "
                   "beyond loopback needs a token.")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port (default taskflow.server.port: 8080; 0 picks a free one).")
@click.option("--history", "history_url", metavar="URL",
              help="Run history to serve (default: taskflow.history.url).")
@click.option("--token", metavar="TOKEN", envvar="TASKFLOW_SERVER_TOKEN", show_envvar=True,
              help="Require this bearer token (default taskflow.server.token).")
def server(host: str | None, port: int | None, history_url: str | None, token: str | None) -> None:
    """Serve the web UI and JSON API over the run history until Ctrl-C.

    Flows, runs, a run's schematic, task runs and logs; Quick Run, Cancel and
    Resume (carried out by the `taskflow serve` processes of the flows).
    """
    from taskflow import config
    from taskflow.server import auth

    try:
        auth.check_bind(host or config.get("server.host") or "127.0.0.1",
                        token or config.get("server.token"))
    except auth.BindError as e:
        raise CliError(str(e)) from None
    from taskflow.server.app import run_server

    run_server(host, port, history_url, token, announce=lambda line: click.echo(line))


@click.command()
@click.argument("run_id")
def cancel(run_id: str) -> None:
    """Cancel a flow run (RUN_ID whole or a unique prefix).

    A run no serve process took yet never starts; a running run is cancelled
    by the serve process running it (its unfinished tasks end CANCELLED).
    """
    from taskflow.server.actions import ActionError, ask_cancel

    with open_history() as history:
        try:
            whole, how = ask_cancel(history, run_id, "cancelled with `taskflow cancel`")
        except ActionError as e:
            raise CliError(str(e)) from None
    if how == "request":
        click.echo(f"run {whole} will not start: its request was cancelled")
    else:
        click.echo(f"asked the process running {whole} to cancel it")
