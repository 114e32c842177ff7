"""Tornado handlers of the taskflow page, served on the scheduler's dashboard port.

========================================  =======================================
``/taskflow``                             flow runs kept on this scheduler (HTML)
``/taskflow/run/<run_id>``                one run: graph, progress, task runs
``/taskflow/api/runs``                    the same list as JSON
``/taskflow/api/runs/<run_id>``           one run as JSON (404 when not kept)
========================================  =======================================

Every handler answers GET only (anything else is 405): the page is read-only.
Responses forbid loading anything from elsewhere (a Content-Security-Policy of
``'self'`` plus inline styles and script) and are never cached.
"""
from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from tornado import web

if TYPE_CHECKING:
    from distributed import Scheduler

    from taskflow.dashboard.model import RunBook

__all__ = ["PLUGIN_NAME", "routes"]

#: The name the scheduler plugin is registered under.
PLUGIN_NAME = "taskflow-dashboard"

_CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'")


class _Handler(web.RequestHandler):
    server: Scheduler
    prefix: str

    def initialize(self, dask_server: Scheduler, prefix: str = "/") -> None:
        self.server = dask_server
        self.prefix = prefix

    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", _CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")

    def _book(self) -> RunBook | None:
        plugin = self.server.plugins.get(PLUGIN_NAME)
        return getattr(plugin, "book", None)

    def _refresh_ms(self) -> int:
        plugin = self.server.plugins.get(PLUGIN_NAME)
        return int(getattr(plugin, "refresh_ms", 2000))

    @property
    def _base(self) -> str:
        return f"{self.prefix}taskflow"

    def _html(self, text: str) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.write(text)

    def _json(self, obj: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps(obj, default=str))

    def _partial(self) -> bool:
        return self.get_query_argument("partial", "") in ("1", "true")


class RunsPage(_Handler):
    """``/taskflow``: the flow runs, live and recent."""

    def get(self) -> None:
        from taskflow.dashboard import render  # the pages' templates: when a page is asked for

        book = self._book()
        runs = book.runs() if book is not None else []
        self._html(render.runs_page(runs, base=self._base, dask_root=self.prefix,
                                    refresh_ms=self._refresh_ms(), partial=self._partial()))


class RunPage(_Handler):
    """``/taskflow/run/<run_id>``: one flow run."""

    def get(self, run_id: str) -> None:
        from taskflow.dashboard import render

        book = self._book()
        run = book.run(run_id, task_limit=render.MAX_ROWS) if book is not None else None
        if run is None:
            self.set_status(404)
            self._html(render.not_found_page(run_id, base=self._base, dask_root=self.prefix))
            return
        self._html(render.run_page(run, base=self._base, dask_root=self.prefix,
                                   refresh_ms=self._refresh_ms(), partial=self._partial()))


class RunsAPI(_Handler):
    """``/taskflow/api/runs``: ``{"runs": [...]}``, newest first."""

    def get(self) -> None:
        book = self._book()
        self._json({"runs": book.runs() if book is not None else []})


class RunAPI(_Handler):
    """``/taskflow/api/runs/<run_id>``: one run with its nodes, edges, task runs and logs."""

    def get(self, run_id: str) -> None:
        book = self._book()
        try:  # every task run kept, or with tasks_limit= a page of them (from tasks_from=)
            offset = max(int(self.get_query_argument("tasks_from", "0")), 0)
            given = self.get_query_argument("tasks_limit", "")
            limit = max(int(given), 1) if given else None
        except ValueError:
            self.set_status(400)
            self._json({"error": "tasks_from and tasks_limit must be whole numbers"})
            return
        run = book.run(run_id, task_limit=limit, task_offset=offset) if book is not None else None
        if run is None:
            self.set_status(404)
            self._json({"error": f"no flow run {run_id!r} is kept on this scheduler"})
            return
        self._json(run)


class _Redirect(_Handler):
    def get(self) -> None:
        self.redirect(self._base)


def routes(scheduler: Scheduler, prefix: str = "/") -> list[tuple[str, type, dict[str, Any]]]:
    """The page's routes for ``scheduler``'s HTTP application, under ``prefix``."""
    kw: dict[str, Any] = {"dask_server": scheduler, "prefix": prefix}
    p = re.escape(prefix)
    return [
        (rf"{p}taskflow", RunsPage, kw),
        (rf"{p}taskflow/", _Redirect, kw),
        (rf"{p}taskflow/run/([^/]+)", RunPage, kw),
        (rf"{p}taskflow/api/runs/?", RunsAPI, kw),
        (rf"{p}taskflow/api/runs/([^/]+)", RunAPI, kw),
    ]
