"""What every handler of the server shares: the history, the templates, auth, headers.

Handlers stay thin: they read the request, call the run model
(:mod:`taskflow.server.views`) in a thread pool (database reads and big pages do
not hold up the event loop), and render a template or write JSON.

Every answer forbids framing and loading anything from elsewhere; the one inline
script of a page runs under a per-response nonce (``Content-Security-Policy``).
"""
from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import jinja2
from markupsafe import Markup
from tornado import web
from tornado.ioloop import IOLoop

from taskflow.history.store import HistoryStore
from taskflow.server import auth
from taskflow.server.templating import STATIC, templates

__all__ = ["STATIC", "ApiHandler", "BaseHandler", "ServerContext"]

T = TypeVar("T")


@dataclass
class ServerContext:
    """One server's shared state: its history, token, templates and worker threads."""

    history: HistoryStore
    token: str | None = None
    page_size: int = 50
    templates: jinja2.Environment = field(default_factory=templates)
    pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(4, thread_name_prefix="taskflow-server"))


class BaseHandler(web.RequestHandler):
    """A page handler: signs people in with the cookie, renders templates."""

    ctx: ServerContext

    def initialize(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def set_default_headers(self) -> None:
        self.nonce = secrets.token_urlsafe(16)
        self.set_header("Content-Security-Policy",
                        f"default-src 'none'; style-src 'self' 'unsafe-inline'; "
                        f"script-src 'nonce-{self.nonce}'; connect-src 'self'; img-src 'self' data:; "
                        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Referrer-Policy", "same-origin")
        self.set_header("Cache-Control", "no-store")

    # -- who ------------------------------------------------------------------------------
    def bearer_ok(self) -> bool:
        token = self.ctx.token
        return token is not None and auth.token_matches(
            token, self.request.headers.get("Authorization"))

    def get_current_user(self) -> str | None:
        token = self.ctx.token
        if not token:
            return "anyone"
        if self.bearer_ok():
            return "bearer"
        cookie = self.get_cookie(auth.COOKIE)
        if cookie and secrets.compare_digest(cookie.encode(), auth.cookie_value(token).encode()):
            return "cookie"
        return None

    def get_login_url(self) -> str:
        return "/signin"

    # -- doing ----------------------------------------------------------------------------
    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(history, *args, **kwargs)`` in the server's thread pool."""
        return await IOLoop.current().run_in_executor(
            self.ctx.pool, lambda: fn(self.ctx.history, *args, **kwargs))

    def page(self, template: str, **values: Any) -> str:
        """A template rendered to text (any thread)."""
        return self.ctx.templates.get_template(template).render(
            nonce=self.nonce, signed_in=bool(self.ctx.token), **values)

    async def render_page(self, template: str, status: int = 200, **values: Any) -> None:
        values.setdefault("xsrf", Markup(self.xsrf_form_html()))
        html = await IOLoop.current().run_in_executor(self.ctx.pool,
                                                      lambda: self.page(template, **values))
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(html)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        reason = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            reason = exc.log_message % exc.args if exc.args else exc.log_message
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(self.page("error.html", status=status_code, reason=reason))


class ApiHandler(BaseHandler):
    """A JSON handler: 401 without the token (bearer, or the page's cookie with XSRF)."""

    def prepare(self) -> None:
        if self.get_current_user() is None:
            self.set_status(401)
            self.set_header("WWW-Authenticate", 'Bearer realm="taskflow"')
            self.finish({"error": "a token is needed: send Authorization: Bearer <token>"})

    def check_xsrf_cookie(self) -> None:
        if self.bearer_ok() or self.get_current_user() is None:
            return  # a script with the token (browsers never send that header by
            # themselves), or nobody: prepare() answers 401
        if not self.ctx.token and self.request.headers.get("Content-Type", "").startswith(
                "application/json"):
            return  # an open (loopback) server: another site cannot send JSON without CORS
        super().check_xsrf_cookie()

    def body_json(self) -> dict[str, Any]:
        if not self.request.body:
            return {}
        try:
            value = json.loads(self.request.body)
        except ValueError as e:
            raise web.HTTPError(400, "the body must be JSON: %s", e) from None
        if not isinstance(value, dict):
            raise web.HTTPError(400, "the body must be a JSON object")
        return value

    def reply(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(value, default=str))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        reason = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            reason = exc.log_message % exc.args if exc.args else exc.log_message
        self.reply({"error": reason}, status_code)
