"""Run events: what a client tells the scheduler about a flow run it starts.

Task runs report their own state changes from the workers (see
:mod:`taskflow.engine.events`).  What only the client knows travels in three
small ``kind="run"`` events on the same Dask topic:

* ``phase="started"``: the flow's name, its graph (task nodes and edges), its
  reference tasks, the parameters (masked, see :func:`mask_parameters`), the
  Dask span the run's keys are grouped under, and who started it;
* ``phase="update"``: states of mapped parents decided on the client (expanded
  over ``n`` elements, or could not expand), with each parent's child count;
* ``phase="finished"``: the executor is done; keys it lost, with reasons.

Every event is a msgpack-friendly dict (Dask's ``log_event`` requires that).

Examples
--------
>>> mask_parameters({"n": 3, "db_password": "hunter2", "opts": {"token": "abc", "x": 1}})
{'n': '3', 'db_password': '********', 'opts': "{'token': '********', 'x': 1}"}
"""
from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING, Any

from taskflow.schematic import graph_data
from taskflow.secrets import MASK, SECRET_WORDS, is_secret, mask_secrets

if TYPE_CHECKING:
    from taskflow.engine.plan import Plan

__all__ = ["MASK", "SECRET_WORDS", "announcements_topic", "finished_event", "is_secret", "mask_parameters",
           "started_event", "update_event"]

_MAX_REPR = 200


def _describe(value: Any) -> str:
    try:
        text = value if isinstance(value, str) else repr(value)
    except Exception as e:  # a broken __repr__ must not stop a run
        text = f"<{type(value).__name__}: repr failed: {e}>"
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."


def mask_parameters(parameters: dict[str, Any]) -> dict[str, str]:
    """Parameters as short strings safe to show, secrets masked.

    A parameter is secret when its name contains ``password``, ``passwd``,
    ``secret``, ``token``, ``key`` or ``credential`` in any case (``api_key``,
    ``DB_PASSWORD``, ``github_token``...): its value is never sent, only
    :data:`MASK`.  Inside a dict parameter (``storage_options``...), entries
    whose key is such a word are masked the same way.  Values are shown as
    their ``repr``, cut at 200 characters.

    Parameters
    ----------
    parameters : dict
        A flow run's parameter values.

    Examples
    --------
    >>> mask_parameters({"n": 10, "api_key": "abc", "opts": {"password": "x"}})
    {'n': '10', 'api_key': '********', 'opts': "{'password': '********'}"}
    """
    return {
        str(name): MASK if is_secret(name) else _describe(mask_secrets(value))
        for name, value in parameters.items()
    }


def announcements_topic(topic: str) -> str:
    """The topic a run's ``kind="run"`` events go on, beside its state events' ``topic``.

    Apart, so that the client (subscribed to the state events' topic) is not sent
    its own announcements back (the graph drawn, at every run start) and the
    scheduler never writes to a client that closed right after its run.

    Examples
    --------
    >>> announcements_topic("taskflow")
    'taskflow-runs'
    """
    return f"{topic}-runs"


def started_event(plan: Plan, client_id: str) -> dict[str, Any]:
    """The event that opens a run on the scheduler's taskflow page (``topic``: where
    its task runs' state events go)."""
    drawn = graph_data(plan.graph)
    return {
        "kind": "run",
        "phase": "started",
        "topic": plan.run.topic,
        "run": plan.run.run_id,
        "flow_name": plan.run.flow_name,
        "time": time.time(),
        "client": client_id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        **drawn,
        "parameters": mask_parameters(plan.parameters),
        "span": [f"flow {plan.run.flow_name}", plan.run.run_id],
    }


def update_event(run_id: str, events: list[dict[str, Any]], sizes: dict[str, int]) -> dict[str, Any]:
    """Client-side state events of mapped parents, with their child counts."""
    return {"kind": "run", "phase": "update", "run": run_id, "time": time.time(),
            "events": events, "sizes": sizes}


def finished_event(run_id: str, lost: dict[str, str], error: str | None,
                   cancelled: str | None = None) -> dict[str, Any]:
    """The executor is done with the run: ``lost`` task runs (name to reason), or an error.

    ``cancelled``: why the run was stopped early, if it was.
    """
    return {"kind": "run", "phase": "finished", "run": run_id, "time": time.time(),
            "lost": lost, "error": error, "cancelled": cancelled}
