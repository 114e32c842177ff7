"""What a person (or a script) may ask of the server: a run, a cancel, a resume.

Each action is one function over the history, used by the page forms and the
JSON API alike; each raises :class:`ActionError` with the HTTP status to answer
(404 unknown flow or run, 409 not possible now, 422 bad parameters).

Examples
--------
>>> ActionError(404, "no flow named 'x'").status
404
"""
from __future__ import annotations

import uuid
from typing import Any

from taskflow.exceptions import TaskflowError
from taskflow.history import serving
from taskflow.history.records import UnknownRunError
from taskflow.history.store import HistoryStore
from taskflow.server.views import FINISHED, GOOD, ParameterProblem, check_parameters

__all__ = ["ActionError", "ask_cancel", "ask_resume", "ask_run", "full_run_id"]


class ActionError(TaskflowError):
    """An action that cannot be done, with the HTTP status that says why."""

    def __init__(self, status: int, message: str, **context: Any) -> None:
        super().__init__(message, status=status, **context)
        self.status = status


def _served(h: HistoryStore, name: str) -> serving.ServedFlowRecord:
    found = {r.name: r for r in serving.served_flows(h)}
    if name in found:
        return found[name]
    if name in h.flow_names():
        raise ActionError(409, f"flow {name!r} has runs but no serve process ever served it, so "
                          f"the server cannot start it; start one with `taskflow serve "
                          f"FILE.py:{name}`", flow=name)
    raise ActionError(404, f"no flow named {name!r} in the history", flow=name)


def ask_run(h: HistoryStore, name: str, given: dict[str, Any], *,
            from_form: bool = False) -> str:
    """Ask the serve processes of flow ``name`` for a run; return the new run's id.

    The request waits in the history until a serve process of the flow takes it
    (at once when one is alive; else when one comes up).
    """
    record = _served(h, name)
    if record.signature is None:  # served by a taskflow that did not record it: the agent checks
        given = {k: v for k, v in given.items() if not (from_form and v == "")}
        signature = [{"name": k, "type": "", "required": False} for k in given]
    else:
        signature = record.signature_list
    try:
        values = check_parameters(name, signature, given, from_form=from_form)
    except ParameterProblem as e:
        raise ActionError(422, str(e), parameter=e.parameter) from None
    run_id = uuid.uuid4().hex
    serving.request_run(h, name, values, run_id=run_id)
    return run_id


def full_run_id(h: HistoryStore, run_id: str) -> tuple[str, str | None]:
    """The whole id of a run given whole or by prefix, and its state (None: only requested)."""
    try:
        r = h.get_run(run_id)
        return r.id, r.state
    except UnknownRunError as e:
        req = serving.request_for_run(h, run_id)
        if req is None or req.run_id is None:
            raise ActionError(404, str(e), run_id=run_id) from None
        return req.run_id, None


def ask_cancel(h: HistoryStore, run_id: str,
               reason: str = "cancelled from the taskflow server") -> tuple[str, str]:
    """Ask for a run to be cancelled: ``(run id, "request" | "run")`` (see
    :func:`taskflow.history.serving.cancel_run`)."""
    whole, state = full_run_id(h, run_id)
    if state is not None and state in FINISHED:
        raise ActionError(409, f"run {whole[:8]} already ended {state}; nothing to cancel",
                          run_id=whole)
    return whole, serving.cancel_run(h, whole, reason)


def ask_resume(h: HistoryStore, run_id: str) -> str:
    """Ask for a new run of a finished, unsuccessful run's flow that reuses its
    persisted results (``resume=<run id>``); return the new run's id."""
    whole, state = full_run_id(h, run_id)
    if state is None or state not in FINISHED or state in GOOD:
        raise ActionError(409, f"run {whole[:8]} is {state or 'not started'}: only a finished run "
                          "that did not succeed can be resumed", run_id=whole)
    flow_name = h.get_run(whole).flow_name
    _served(h, flow_name)
    new_id = uuid.uuid4().hex
    serving.request_run(h, flow_name, {}, resume=whole, run_id=new_id)
    return new_id
