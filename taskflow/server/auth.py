"""Who may use the server: one bearer token, a sign-in cookie, CSRF on forms.

Without a token the server is open to whoever reaches it, which is why it then
binds to loopback only (:func:`check_bind`).  With a token:

* every API call needs ``Authorization: Bearer <token>`` (else 401, nothing
  changed); the browser's pages and their script may use the sign-in cookie instead;
* a browser signs in once on ``/signin`` (one field); the answer sets an
  HttpOnly, SameSite=Strict cookie holding an HMAC of the token (not the token);
* every comparison is constant-time (:func:`hmac.compare_digest`);
* the token is never logged nor put in a URL.

Forms and cookie-authenticated API calls that change something carry Tornado's
XSRF token (``xsrf_cookies``); calls with a bearer token need none (a browser
never sends that header by itself).

Examples
--------
>>> check_bind("127.0.0.1", None)
>>> try:
...     check_bind("0.0.0.0", None)
... except BindError as e:
...     print(str(e)[:48])
refusing to listen on 0.0.0.0 without a token: a
>>> token_matches("s3cret", "Bearer s3cret"), token_matches("s3cret", "Bearer nope")
(True, False)
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket

from taskflow.exceptions import TaskflowError

__all__ = ["COOKIE", "BindError", "check_bind", "cookie_value", "is_loopback", "token_matches"]

#: The sign-in cookie's name.
COOKIE = "taskflow_session"


class BindError(TaskflowError, ValueError):
    """A non-loopback address was asked for without a token."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback only."""
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(a[4][0]).is_loopback
                       for a in socket.getaddrinfo(host, None))
        except OSError:
            return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a token."""
    if not token and not is_loopback(host):
        raise BindError(
            f"refusing to listen on {host or 'every interface'} without a token: anyone who "
            "reaches it could start and cancel runs; set one with --token or "
            "taskflow.server.token (env DASK_TASKFLOW__SERVER__TOKEN)", host=host)


def token_matches(token: str, header: str | None) -> bool:
    """Whether an ``Authorization`` header carries ``token`` (constant-time)."""
    if not header:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def cookie_value(token: str) -> str:
    """What the sign-in cookie holds: an HMAC of the token, useless without it."""
    return hmac.new(token.encode(), b"taskflow-server-session", hashlib.sha256).hexdigest()
