"""Notifications: hooks that tell people about runs, over an incoming webhook.

:func:`webhook` makes a state hook that POSTs a small JSON document to a URL::

    from taskflow.notify import webhook

    alert = webhook("env:SLACK_WEBHOOK_URL")      # the URL stays out of code and history

    @flow(on_failure=[alert], on_crashed=[alert])
    def etl(day: str): ...

    @task(on_failure=[alert])
    def load(path: str): ...

or for every served flow: ``taskflow serve flows.py:etl --notify env:SLACK_WEBHOOK_URL``.

The document has a ``text`` field, which is what Slack's and Microsoft Teams'
incoming webhooks show, so a URL pasted from their settings works as it is; the
other fields are for programs: ``flow``, ``run_id``, ``task_run`` (None for a
flow run), ``state``, ``message``, ``attempt``, ``worker``, ``time`` and
``url`` (the run's page, ``<taskflow.server.url>/runs/<run id>``, when that is
set in the sending process).

Delivery uses the standard library (:mod:`urllib.request`).  A connection
error, a timeout or a 5xx answer is retried with exponential backoff (0.5 s,
1 s, 2 s...); a notification that still cannot be delivered, or that gets a
4xx answer, is logged at WARNING in the run's log (so the run history keeps it
with the run) and the run goes on: its state never changes.  ``env:NAME``
URLs (and header values) are read from the environment of the process that
sends, at send time: a task's hook sends from its worker, a flow's from the
process that ran the flow.  Log messages show only the URL's scheme and host.
"""
from __future__ import annotations

import datetime
import json
import logging
import os
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

from taskflow import config
from taskflow.exceptions import TaskflowError
from taskflow.logs import TASK_LOGGER
from taskflow.states import State

__all__ = ["Webhook", "notification", "webhook"]

logger = logging.getLogger(TASK_LOGGER)

_BACKOFF = 0.5
_MAX_BACKOFF = 8.0


class Webhook:
    """A hook that POSTs a notification to a URL; see :func:`webhook`.

    Picklable (plain attributes), so it travels with tasks to the workers.
    """

    def __init__(self, url: str, *, headers: Mapping[str, str] | None = None,
                 timeout: float = 10, retries: int = 3) -> None:
        if not isinstance(url, str) or not (url.startswith("env:") and len(url) > 4
                                            or _is_http(url)):
            raise TaskflowError(
                f"webhook needs an http(s) URL or env:NAME (an environment variable holding "
                f"it), e.g. webhook('env:SLACK_WEBHOOK_URL'); got {_shown(url)!r}", url=_shown(url))
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise TaskflowError(f"webhook retries must be a whole number >= 0, got {retries!r}")
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise TaskflowError(f"webhook timeout must be seconds > 0, got {timeout!r}")
        self.url = url
        self.headers = dict(headers or {})
        self.timeout = float(timeout)
        self.retries = retries

    def __repr__(self) -> str:
        return f"webhook({_shown(self.url)!r})"

    def __call__(self, obj: Any, run: Any, state: State) -> bool:
        """Send the notification of ``state``; True when it was delivered."""
        doc = notification(obj, run, state)
        extra = {"flow_name": doc["flow"], "flow_run_id": doc["run_id"],
                 "task_run_name": doc["task_run"] or ""}
        problem = self.send(doc)
        if problem is None:
            return True
        logger.warning("notification of %s %s to %s was not delivered: %s; the run's state "
                       "is unchanged", _subject(doc), doc["state"], _shown(self.url), problem,
                       extra=extra)
        return False

    def send(self, doc: Mapping[str, Any]) -> str | None:
        """POST ``doc`` as JSON, retrying; None when delivered, else what went wrong."""
        import urllib.error
        import urllib.request  # here: http.client, ssl and email are not needed before
        url = _resolve(self.url)
        if url is None:
            return (f"environment variable {self.url[4:]!r} is not set in this process "
                    f"(pid {os.getpid()})")
        if not _is_http(url):
            return f"{self.url} does not hold an http(s) URL"
        headers = {"Content-Type": "application/json", "User-Agent": "taskflow"}
        for name, value in self.headers.items():
            resolved = _resolve(value)
            if resolved is None:
                return f"environment variable {value[4:]!r} of header {name!r} is not set"
            headers[name] = resolved
        body = json.dumps(doc, default=str).encode()
        problem = "not sent"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(_MAX_BACKOFF, _BACKOFF * 2 ** (attempt - 1)))
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                    answer.read()
                return None
            except urllib.error.HTTPError as e:
                problem = f"HTTP {e.code} {e.reason}"
                if e.code < 500:
                    return problem + " (not retried)"
            except (urllib.error.URLError, OSError) as e:
                reason = getattr(e, "reason", e)
                problem = f"{type(reason).__name__}: {reason}"
        tries = self.retries + 1
        return f"{problem} after {tries} attempt{'s' if tries > 1 else ''}"


def webhook(url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 10,
            retries: int = 3) -> Webhook:
    """A state hook that POSTs a JSON notification to ``url``.

    Parameters
    ----------
    url : str
        An ``http(s)://`` URL (a Slack or Teams incoming webhook, or your own
        endpoint), or ``env:NAME`` to read it from environment variable ``NAME``
        when sending, so the secret stays out of code and out of the history.
    headers : dict, optional
        Extra HTTP headers (e.g. ``{"Authorization": "env:ALERT_TOKEN"}``; values
        may be ``env:NAME`` too).
    timeout : float
        Seconds to wait for each attempt's answer.
    retries : int
        Extra attempts after a connection error, a timeout or a 5xx answer.

    Examples
    --------
    >>> alert = webhook("https://hooks.example.com/T000/B000/XXXX")
    >>> alert
    webhook('https://hooks.example.com/…')
    >>> from taskflow import flow
    >>> @flow(on_failure=[alert])
    ... def etl():
    ...     pass
    """
    return Webhook(url, headers=headers, timeout=timeout, retries=retries)


def notification(obj: Any, run: Any, state: State) -> dict[str, Any]:
    """The JSON document a webhook sends for ``state`` of a task run or a flow run.

    Examples
    --------
    >>> from taskflow.hooks import FlowRunInfo
    >>> from taskflow.states import StateType
    >>> run = FlowRunInfo("etl", "1a2b3c4d5e6f")
    >>> doc = notification(None, run, State(StateType.FAILED, message="boom"))
    >>> doc["text"]
    "taskflow: flow run 1a2b3c4d of 'etl' FAILED: boom"
    """
    task_run = getattr(run, "name", None)  # only a TaskRunInfo has one
    doc: dict[str, Any] = {
        "flow": run.flow_name,
        "run_id": run.run_id,
        "task_run": task_run,
        "state": state.type.value,
        "message": state.message,
        "attempt": getattr(run, "attempt", None),
        "worker": getattr(run, "worker", None),
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "url": None,
    }
    doc["url"] = config.run_url(run.run_id)  # <taskflow.server.url>/runs/<run id>, or None
    text = f"taskflow: {_subject(doc)} {state.type.value}"
    if state.message:
        text += f": {state.message}"
    if doc["url"]:
        text += f"\n{doc['url']}"
    doc["text"] = text
    return doc


def _subject(doc: Mapping[str, Any]) -> str:
    run = str(doc["run_id"])[:8]
    if doc.get("task_run"):
        return f"task run {doc['task_run']!r} of flow {doc['flow']!r} (run {run})"
    return f"flow run {run} of {doc['flow']!r}"


def _resolve(value: str) -> str | None:
    if isinstance(value, str) and value.startswith("env:"):
        return os.environ.get(value[4:]) or None
    return value


def _is_http(url: Any) -> bool:
    if not isinstance(url, str):
        return False
    parts = urllib.parse.urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _shown(url: Any) -> str:
    """A URL as logs show it: ``env:NAME`` as it is, else only its scheme and host."""
    if not isinstance(url, str):
        return repr(url)
    if url.startswith("env:"):
        return url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme and parts.netloc:
        host = parts.netloc.rpartition("@")[2]  # never credentials
        return f"{parts.scheme}://{host}/…" if parts.path.strip("/") or parts.query else \
            f"{parts.scheme}://{host}"
    return url[:12] + "…" if len(url) > 12 else url
