"""The one typed state event: what a producer builds is what every consumer reads."""
from __future__ import annotations

import pytest

from taskflow.engine.events import StateEvent, is_state, peek
from taskflow.states import State, StateType


def test_a_failed_state_survives_the_wire_form_with_its_exception_and_attempt():
    state = State(StateType.FAILED, message="boom", exception=ValueError("x"),
                  traceback="Traceback...", attempts=2, started_at=1.0, ended_at=2.0)
    ev = StateEvent.of("r", "load[3]", "load-k", state, worker="tcp://w", map_index=3)
    back = StateEvent.from_msg(ev.to_msg())
    assert back == ev and back.finished and back.exc_type == "ValueError"
    got = back.state()
    assert (got.type, got.message, got.attempts, got.traceback) == (
        StateType.FAILED, "boom", 2, "Traceback...")
    assert isinstance(got.exception, ValueError) and got.exception.args == ("x",)


def test_an_event_is_immutable_and_dropping_its_exception_keeps_the_repr():
    ev = StateEvent.of("r", "a", "k", State(StateType.FAILED, exception=KeyError("k")))
    with pytest.raises(AttributeError):
        ev.type = "SUCCESS"  # type: ignore[misc]
    bare = ev.without_exception()
    assert bare.exc is None and bare.exc_repr == ev.exc_repr and bare.exc_type == "KeyError"


def test_a_partial_message_reads_with_defaults_and_other_kinds_are_not_state_events():
    ev = StateEvent.from_msg({"kind": "state", "name": "a", "type": "SUCCESS"})
    assert (ev.run, ev.key, ev.attempt, ev.worker, ev.exc) == ("", "", 0, "", None)
    assert peek({"kind": "log", "run": "r"}) is None and not is_state({"kind": "hold"})
    assert peek(StateEvent("r", "a", "RUNNING", attempt=1).to_msg()) == ("r", "a", 1, "RUNNING", "")
