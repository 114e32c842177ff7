"""``taskflow server``: the web UI and JSON API over the run history.

One process serves pages (flows, one flow with **Quick Run**, runs, one run with
its schematic, task runs, logs, **Cancel** and **Resume**) and the JSON API they
use, reading and writing nothing but the history (``taskflow.history.url``), so
it keeps working while flows run elsewhere and several servers may share one
PostgreSQL history.  Runs are started by the serve processes (``taskflow
serve``), its agents: the server asks through the history, one agent claims.

* :mod:`~taskflow.server.app` -- the application and how it starts;
* :mod:`~taskflow.server.pages`, :mod:`~taskflow.server.api` -- thin handlers;
* :mod:`~taskflow.server.views` -- the one run model both use;
* :mod:`~taskflow.server.actions` -- run, cancel, resume;
* :mod:`~taskflow.server.auth` -- the token, the sign-in cookie, the bind rule;
* ``templates/`` (one ``base.html``) and ``static/taskflow.css``.

Importing this package imports nothing heavy; :func:`run_server` imports Tornado.

Examples
--------
From a shell::

    taskflow server --port 8080                      # http://127.0.0.1:8080/
    taskflow server --host 0.0.0.0 --token "$TOKEN"  # beyond loopback: a token
"""
from __future__ import annotations

from typing import Any

__all__ = ["make_app", "run_server"]


def make_app(*args: Any, **kwargs: Any) -> Any:
    """See :func:`taskflow.server.app.make_app`."""
    from taskflow.server.app import make_app as make

    return make(*args, **kwargs)


def run_server(*args: Any, **kwargs: Any) -> None:
    """See :func:`taskflow.server.app.run_server`."""
    from taskflow.server.app import run_server as run

    run(*args, **kwargs)
