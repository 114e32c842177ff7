import pickle

import pytest

import taskflow
from taskflow.states import State, StateType


@pytest.mark.parametrize(
    "typ, finished, successful, failed",
    [
        (StateType.PENDING, False, False, False),
        (StateType.RUNNING, False, False, False),
        (StateType.RETRYING, False, False, False),
        (StateType.SUCCESS, True, True, False),
        (StateType.CACHED, True, True, False),
        (StateType.SKIPPED, True, False, False),
        (StateType.FAILED, True, False, True),
        (StateType.TRIGGER_FAILED, True, False, True),
        (StateType.TIMED_OUT, True, False, True),
        (StateType.CRASHED, True, False, True),
        (StateType.CANCELLED, True, False, True),
    ],
)
def test_each_state_type_says_whether_it_is_finished_successful_or_failed(
    typ, finished, successful, failed
):
    s = State(typ)
    assert (s.is_finished(), s.is_successful(), s.is_failed()) == (finished, successful, failed)


def test_state_is_frozen():
    s = State(StateType.SUCCESS)
    with pytest.raises(AttributeError):
        s.type = StateType.FAILED  # type: ignore[misc]


def test_pickled_state_keeps_its_fields_but_drops_the_result():
    s = State(StateType.FAILED, message="m", exception=ValueError("x"), traceback="tb",
              attempts=2, started_at=1.0, ended_at=3.0, result=[1] * 10)
    back = pickle.loads(pickle.dumps(s))
    assert back.type is StateType.FAILED and back.message == "m" and back.attempts == 2
    assert isinstance(back.exception, ValueError) and back.traceback == "tb"
    assert back.duration == 2.0
    assert back.result is None


def test_state_repr_reads_like_a_constructor():
    assert repr(State(StateType.TRIGGER_FAILED, message="upstream")) == "TriggerFailed(message='upstream')"


def test_state_and_state_type_are_exported_from_the_package():
    assert taskflow.State is State and taskflow.StateType is StateType
