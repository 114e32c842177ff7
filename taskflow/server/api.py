"""The JSON API: the same data as the pages, for scripts and for the pages' own polling.

=====================================  ==============================================
``GET  /api/health``                   ``{"status": "ok", "history": ...}``
``GET  /api/flows``                    every flow the history knows
``GET  /api/flows/<name>``             one flow: schedule, serve processes, parameters
``POST /api/flows/<name>/runs``        ``{"parameters": {...}}`` -> 201 ``{"id": ...}``
``GET  /api/runs?flow=&state=&limit=``  runs, newest first (``offset=`` pages)
``GET  /api/runs/<id>``                one run with all its task runs (at most 10,000 of a
                                       run of more than 5,000; ``?tasks_limit=N``: N of them
                                       from ``tasks_from=``, ``task_total`` says how many;
                                       ``?view=states``: the states of the run, its nodes,
                                       and of 500 task runs from ``tasks_from=``, what its
                                       page polls) and its 500 latest log records
                                       (``log_total`` says how many)
``GET  /api/runs/<id>/logs``           its log records in time order, 1,000 at a time
                                       (``?offset=``, ``?limit=`` up to 10,000;
                                       ``total`` and ``next_offset`` say what is left;
                                       ``?level=WARNING``, ``?task=NAME``)
``POST /api/runs/<id>/cancel``         202
``POST /api/runs/<id>/resume``         201 ``{"id": <new run id>}``
=====================================  ==============================================

Run ids may be whole or a unique prefix.  Errors are ``{"error": "..."}`` with
401 (no token), 404 (unknown flow or run), 409 (not possible now) or 422 (a bad
parameter, named).
"""
from __future__ import annotations

import logging
from typing import Any

from tornado import web

from taskflow.history.records import UnknownRunError
from taskflow.server import actions, views
from taskflow.server.base import ApiHandler

__all__ = ["routes"]


def _level(text: str) -> int:
    if not text:
        return 0
    if text.isdigit():
        return int(text)
    value = logging.getLevelName(text.upper())
    if not isinstance(value, int):
        raise web.HTTPError(400, "unknown log level %r; use DEBUG, INFO, WARNING or ERROR", text)
    return value


class _Api(ApiHandler):
    async def act(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await self.db(fn, *args, **kwargs)
        except actions.ActionError as e:
            body: dict[str, Any] = {"error": str(e)}
            if e.context.get("parameter"):
                body["parameter"] = e.context["parameter"]
            self.reply(body, e.status)
            return None
        except UnknownRunError as e:
            self.reply({"error": str(e)}, 404)
            return None


class Health(_Api):
    async def get(self) -> None:
        self.reply({"status": "ok", "history": self.ctx.history.display_url})


class Flows(_Api):
    async def get(self) -> None:
        self.reply({"flows": await self.db(views.flows_view)})


class FlowOne(_Api):
    async def get(self, name: str) -> None:
        flow = await self.db(views.flow_view, name)
        if flow is None:
            raise web.HTTPError(404, "no flow named %r in the history", name)
        self.reply(flow)


class FlowRuns(_Api):
    async def post(self, name: str) -> None:
        params = self.body_json().get("parameters") or {}
        if not isinstance(params, dict):
            raise web.HTTPError(422, "parameters must be a JSON object of name: value")
        run_id = await self.act(actions.ask_run, name, params)
        if run_id is not None:
            self.reply({"id": run_id, "url": f"/runs/{run_id}"}, 201)


class Runs(_Api):
    async def get(self) -> None:
        try:
            limit = min(max(int(self.get_query_argument("limit", "50")), 1), 1000)
            offset = max(int(self.get_query_argument("offset", "0")), 0)
        except ValueError:
            raise web.HTTPError(400, "limit and offset must be whole numbers") from None
        self.reply(await self.db(views.runs_view, self.get_query_argument("flow", ""),
                                 self.get_query_argument("state", ""), limit, offset))


class RunOne(_Api):
    async def get(self, run_id: str) -> None:
        if self.get_query_argument("view", "") == "states":
            try:
                offset = max(int(self.get_query_argument("tasks_from", "0")), 0)
            except ValueError:
                raise web.HTTPError(400, "tasks_from must be a whole number") from None
            found = await self.act(views.run_states, run_id, offset)
        else:  # every task run, or with tasks_limit= a page of them (from tasks_from=)
            try:
                offset = max(int(self.get_query_argument("tasks_from", "0")), 0)
                given = self.get_query_argument("tasks_limit", "")
                limit = min(max(int(given), 1), 10_000) if given else None
            except ValueError:
                raise web.HTTPError(400, "tasks_from and tasks_limit must be whole numbers") from None
            found = await self.act(views.run_view, run_id, task_offset=offset, task_limit=limit,
                                   svg=False)
        if found is not None:
            self.reply(found)


LOGS_PAGE, LOGS_MAX = 1000, 10_000


def _whole(handler: ApiHandler, name: str, default: int, low: int, high: int | None = None) -> int:
    text = handler.get_query_argument(name, str(default))
    try:
        value = int(text)
    except ValueError:
        raise web.HTTPError(400, "%s must be a whole number, not %r", name, text) from None
    if value < low or (high is not None and value > high):
        raise web.HTTPError(400, "%s must be %s, not %d", name,
                            f"{low} or more" if high is None else f"from {low} to {high:,}",
                            value)
    return value


class RunLogs(_Api):
    async def get(self, run_id: str) -> None:
        level, task = _level(self.get_query_argument("level", "")), self.get_query_argument("task", "")
        limit = _whole(self, "limit", LOGS_PAGE, 1, LOGS_MAX)
        offset = _whole(self, "offset", 0, 0)

        def logs(h: Any) -> dict[str, Any]:
            from itertools import islice

            from taskflow.history import streams

            whole, _ = actions.full_run_id(h, run_id)
            page = list(islice(streams.logs(h, whole, task or None, by_time=True, offset=offset,
                                            min_level=level, chunk=limit), limit))
            total = (offset + len(page) if len(page) < limit and (page or not offset)
                     else streams.log_total(h, whole, task or None, min_level=level))
            after = offset + len(page)
            return {"id": whole, "total": total, "offset": offset,
                    "next_offset": after if after < total else None, "logs": [
                        {"time": r.created, "level": logging.getLevelName(r.level),
                         "task": r.task, "logger": r.logger, "message": r.message,
                         "worker": r.worker} for r in page]}

        found = await self.act(logs)
        if found is not None:
            self.reply(found)


class RunCancel(_Api):
    async def post(self, run_id: str) -> None:
        found = await self.act(actions.ask_cancel, run_id)
        if found is not None:
            self.reply({"id": found[0], "cancel": found[1]}, 202)


class RunResume(_Api):
    async def post(self, run_id: str) -> None:
        new_id = await self.act(actions.ask_resume, run_id)
        if new_id is not None:
            self.reply({"id": new_id, "url": f"/runs/{new_id}"}, 201)


class NotFound(_Api):
    def get(self, *args: Any) -> None:
        raise web.HTTPError(404, "no such API: see /api/health, /api/flows, /api/runs")

    post = get


def routes(kw: dict[str, Any]) -> list[tuple[str, type, dict[str, Any]]]:
    return [
        (r"/api/health", Health, kw),
        (r"/api/flows/?", Flows, kw),
        (r"/api/flows/([^/]+)", FlowOne, kw),
        (r"/api/flows/([^/]+)/runs", FlowRuns, kw),
        (r"/api/runs/?", Runs, kw),
        (r"/api/runs/([^/]+)", RunOne, kw),
        (r"/api/runs/([^/]+)/logs", RunLogs, kw),
        (r"/api/runs/([^/]+)/cancel", RunCancel, kw),
        (r"/api/runs/([^/]+)/resume", RunResume, kw),
        (r"/api/.*", NotFound, kw),
    ]
