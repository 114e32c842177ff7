"""The one typed state event: what a producer builds is what every consumer reads."""
from __future__ import annotations

import pytest

from taskflow.engine.events import StateEvent, batch_of, events_of, is_state, peek
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


def test_a_workers_packed_batch_reads_back_event_by_event_with_exceptions_and_log_records():
    failed = StateEvent.of("r", "a", "a-k", State(StateType.FAILED, exception=ValueError("x"),
                                                  attempts=1), worker="tcp://w").to_msg()
    done = StateEvent.of("r", "b", "b-k", State(StateType.SUCCESS, attempts=1)).to_msg()
    log = {"kind": "log", "run": "r", "task_run_name": "b", "msg": "hello", "worker": "tcp://w"}
    batch = batch_of([failed, done, log])

    assert batch["kind"] == "batch" and isinstance(batch["packed"], bytes)
    back = events_of(batch)
    assert back == [failed, done, log]
    got = StateEvent.from_msg(back[0]).state()
    assert isinstance(got.exception, ValueError) and got.exception.args == ("x",)
    # the older plain form reads the same; anything else yields nothing
    assert events_of({"kind": "batch", "events": [done, "junk"]}) == [done]
    assert events_of({"kind": "batch", "packed": b"\xc1"}) == []


def test_a_success_event_leaves_its_default_fields_off_the_wire():
    msg = StateEvent.of("r", "a", "a-k", State(StateType.SUCCESS, attempts=1)).to_msg()

    assert not {"map_index", "exc", "exc_repr", "exc_type", "tb", "location"} & set(msg)
    back = StateEvent.from_msg(msg)
    assert (back.map_index, back.message, back.exc, back.tb, back.location) == (None, "", None,
                                                                                None, None)
    assert back.state().type is StateType.SUCCESS and back.state().attempts == 1


@pytest.mark.parametrize("state, map_index", [
    (State(StateType.RUNNING, attempts=1, started_at=10.0), None),
    (State(StateType.SUCCESS, attempts=2, started_at=10.0, ended_at=11.0), 3),
    (State(StateType.SKIPPED, message="upstream task 'a' was skipped", ended_at=11.0), None),
    (State(StateType.FAILED, message="boom", exception=ValueError("x"), traceback="tb",
           attempts=1), 0),
    (State(StateType.CACHED, result_location="file:///r/a.pkl"), None),
])
def test_a_state_message_built_directly_is_the_events_wire_form(state, map_index):
    from taskflow.engine.events import state_msg

    direct = state_msg("r", "a", "a-k", state, "tcp://w:1", map_index)
    made = StateEvent.of("r", "a", "a-k", state, worker="tcp://w:1", map_index=map_index).to_msg()
    assert direct.pop("time") <= made.pop("time")
    assert list(direct) == list(made)
    if "exc" in made:  # two pickles of one exception need not be the same bytes
        import pickle

        assert repr(pickle.loads(direct.pop("exc"))) == repr(pickle.loads(made.pop("exc")))
    assert direct == made
