"""The server: one Tornado application over one history, and how it starts.

:func:`make_app` builds the application (pages, API, static files) for a history;
:func:`run_server` binds it, prints its URL and serves until SIGTERM or Ctrl-C.
Besides answering requests, the server marks CRASHED the runs whose process died
(a stale heartbeat), every ``taskflow.history.stale-after``, so a run page never
says RUNNING forever.

Examples
--------
>>> app, ctx = make_app("sqlite://")           # doctest: +SKIP
"""
from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Any

from dask.utils import parse_timedelta
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop, PeriodicCallback
from tornado.netutil import bind_sockets

from taskflow import config, settings
from taskflow.history.store import HistoryStore
from taskflow.server import api, auth, pages
from taskflow.server.base import STATIC, ServerContext

__all__ = ["make_app", "run_server"]

logger = logging.getLogger("taskflow.server")


def make_app(history_url: str | None = None, token: str | None = None, *,
             page_size: int | None = None) -> tuple[web.Application, ServerContext]:
    """The server's application over the history at ``history_url`` (default: the configured one)."""
    import secrets

    history = HistoryStore(history_url)
    ctx = ServerContext(history=history, token=token or None,
                        page_size=int(page_size or config.get("server.page-size") or 50))
    kw: dict[str, Any] = {"ctx": ctx}
    app = web.Application(
        [*api.routes(kw), *pages.routes(kw)],
        static_path=STATIC,
        xsrf_cookies=True,
        xsrf_cookie_kwargs={"httponly": True, "samesite": "Strict"},
        cookie_secret=secrets.token_hex(32),
        default_handler_class=pages.NotFoundPage,
        default_handler_args=kw,
        log_function=_log,
    )
    return app, ctx


def _log(handler: web.RequestHandler) -> None:
    """Access log: method, path (no query, no headers: nothing secret), status, time."""
    status = handler.get_status()
    level = logging.DEBUG if status < 400 else logging.INFO if status < 500 else logging.ERROR
    logger.log(level, "%d %s %s %.1f ms", status, handler.request.method, handler.request.path,
               1000.0 * handler.request.request_time())


def run_server(host: str | None = None, port: int | None = None, history_url: str | None = None,
               token: str | None = None, *, announce: Any = print) -> None:
    """Serve until SIGTERM or Ctrl-C (see ``taskflow server --help``).

    Raises
    ------
    BindError
        For a host beyond loopback without a token.
    """
    settings.check()
    host = host or config.get("server.host") or "127.0.0.1"
    port = int(config.get("server.port") if port is None else port)
    token = token or config.get("server.token") or None
    auth.check_bind(host, token)
    app, ctx = make_app(history_url, token)
    sockets = bind_sockets(port, address=host)
    servers = HTTPServer(app)
    servers.add_sockets(sockets)
    bound = sockets[0].getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    announce(f"taskflow server at http://{shown}:{bound}/ over the history at "
             f"{ctx.history.display_url}" + ("; token required" if token else ""))
    sys.stdout.flush()
    stale = float(parse_timedelta(config.get("history.stale-after")))

    def sweep() -> None:
        ctx.pool.submit(_mark_crashed, ctx.history, stale)

    checker = PeriodicCallback(sweep, max(stale, 1.0) * 1000 / 2)
    checker.start()
    loop = IOLoop.current()

    def stop(*_: Any) -> None:
        loop.add_callback_from_signal(loop.stop)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        loop.start()
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        checker.stop()
        servers.stop()
        ctx.pool.shutdown(wait=False)
        ctx.history.close()


def _mark_crashed(history: HistoryStore, stale: float) -> None:
    try:
        history.mark_crashed(stale)
    except Exception as e:  # a database hiccup: try again at the next sweep
        logger.warning("could not check for crashed runs: %s", e)


if sys.platform == "win32":  # pragma: no cover - tornado needs the selector loop there
    asyncio.set_event_loop_policy(asyncio.WindowsSelectorEventLoopPolicy())  # type: ignore[attr-defined]
