"""The HTML pages: flows, one flow (Quick Run), runs, one run (Cancel, Resume), sign-in.

=====================================  ==============================================
``/``                                  every flow: last run, recent successes, serving
``/flows/<name>``                      parameters, schedule, recent runs, Quick Run
``/runs?flow=&state=&page=``           runs, newest first, paged
``/runs/<id>``                         one run: schematic, task runs, logs, Cancel, Resume
``/signin``                            the one-field token page (when a token is set)
=====================================  ==============================================

Forms POST to the same paths (``/flows/<name>/runs``, ``/runs/<id>/cancel``,
``/runs/<id>/resume``) with an XSRF token, and redirect to the run's page.
"""
from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from tornado import web
from tornado.httpclient import AsyncHTTPClient

from taskflow.history.records import UnknownRunError
from taskflow.server import actions, auth, views
from taskflow.server.base import BaseHandler
from taskflow.states import StateType

__all__ = ["routes"]

_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]


class _Page(BaseHandler):
    def prepare(self) -> None:
        if self.get_current_user() is None:
            self.redirect("/signin?" + urlencode({"next": self.request.uri or "/"}))


class FlowsPage(_Page):
    async def get(self) -> None:
        await self.render_page("flows.html", title="Flows", flows=await self.db(views.flows_view))


class FlowPage(_Page):
    async def get(self, name: str, error: str = "", values: dict[str, Any] | None = None,
                  status: int = 200) -> None:
        flow = await self.db(views.flow_view, name)
        if flow is None:
            raise web.HTTPError(404, "no flow named %r in the history", name)
        await self.render_page("flow.html", status=status, title=f"Flow {name}", flow=flow,
                               error=error, values=values or {})

    async def post(self, name: str) -> None:
        given = {k[len("p_"):]: self.get_body_argument(k) for k in self.request.body_arguments
                 if k.startswith("p_")}
        try:
            run_id = await self.db(actions.ask_run, name, given, from_form=True)
        except actions.ActionError as e:
            if e.status == 404:
                raise web.HTTPError(404, "%s", str(e)) from None
            await self.get(name, error=str(e), values=given, status=e.status)
            return
        self.redirect(f"/runs/{run_id}")


class RunsPage(_Page):
    async def get(self) -> None:
        size = self.ctx.page_size
        try:
            page = max(int(self.get_query_argument("page", "1")), 1)
        except ValueError:
            page = 1
        flow, state = self.get_query_argument("flow", ""), self.get_query_argument("state", "")
        found = await self.db(views.runs_view, flow, state, size, (page - 1) * size)
        names = await self.db(lambda h: h.flow_names())
        await self.render_page("runs.html", title="Runs", page=page, found=found, flows=names,
                               states=[t.value for t in StateType], flow=flow, state=state.upper())


class RunPage(_Page):
    async def get(self, run_id: str) -> None:
        level_name = self.get_query_argument("level", "").upper()
        level = logging.getLevelName(level_name) if level_name in _LEVELS else 0
        try:
            offset = max(int(self.get_query_argument("tasks_from", "0")), 0)
        except ValueError:
            offset = 0
        try:
            run = await self.db(views.run_view, run_id, log_level=level, task_offset=offset)
        except UnknownRunError as e:
            raise web.HTTPError(404, "%s", str(e)) from None
        if run["id"] != run_id:  # a prefix: the page's stable address is the whole id
            self.redirect(f"/runs/{run['id']}" + (f"?{self.request.query}" if self.request.query else ""))
            return
        dashboard = await _answering(run.get("dashboard_link"))
        await self.render_page("run.html", title=f"Run {run['id'][:8]} of {run['flow_name']}",
                               run=run, dashboard=dashboard, levels=_LEVELS, level=level_name,
                               per_page=views.TASKS_PER_PAGE)


async def _answering(link: str | None) -> str | None:
    """The Dask dashboard link, while that dashboard still answers."""
    if not link or not link.startswith(("http://", "https://")):
        return None
    try:
        await AsyncHTTPClient().fetch(link, method="HEAD", request_timeout=0.5,
                                      connect_timeout=0.5, follow_redirects=False,
                                      raise_error=False)
    except Exception:
        return None
    return link


class RunAction(_Page):
    async def post(self, run_id: str, action: str) -> None:
        try:
            if action == "cancel":
                whole, _ = await self.db(actions.ask_cancel, run_id)
            else:
                whole = await self.db(actions.ask_resume, run_id)
        except actions.ActionError as e:
            raise web.HTTPError(e.status, "%s", str(e)) from None
        self.redirect(f"/runs/{whole}")


class Favicon(BaseHandler):
    def get(self) -> None:
        self.set_status(204)
        self.finish()


class NotFoundPage(_Page):
    def get(self, *args: Any) -> None:
        raise web.HTTPError(404, "no such page: see the flows at /")

    post = get


class SignIn(BaseHandler):
    async def get(self, error: str = "", status: int = 200) -> None:
        if not self.ctx.token:
            self.redirect("/")
            return
        await self.render_page("signin.html", status=status, title="Sign in", error=error,
                               next=self.get_argument("next", "/"))

    async def post(self) -> None:
        token = self.ctx.token
        given = self.get_body_argument("token", "")
        if not token or not auth.token_matches(token, f"Bearer {given}"):
            await self.get(error="That is not the server's token.", status=401)
            return
        self.set_cookie(auth.COOKIE, auth.cookie_value(token), httponly=True, samesite="Strict",
                        secure=self.request.protocol == "https", path="/")
        target = self.get_body_argument("next", "/")
        local = target.startswith("/") and not target.startswith(("//", "/\\"))
        self.redirect(target if local and "\\" not in target else "/")


class SignOut(BaseHandler):
    def post(self) -> None:
        self.clear_cookie(auth.COOKIE, path="/")
        self.redirect("/signin")


def routes(kw: dict[str, Any]) -> list[tuple[str, type, dict[str, Any]]]:
    return [
        (r"/", FlowsPage, kw),
        (r"/flows/([^/]+)", FlowPage, kw),
        (r"/flows/([^/]+)/runs", FlowPage, kw),
        (r"/runs/?", RunsPage, kw),
        (r"/runs/([^/]+)", RunPage, kw),
        (r"/runs/([^/]+)/(cancel|resume)", RunAction, kw),
        (r"/signin", SignIn, kw),
        (r"/signout", SignOut, kw),
        (r"/favicon.ico", Favicon, kw),
    ]
