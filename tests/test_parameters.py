"""Parameters checked against the flow's type hints before anything runs."""
from __future__ import annotations

import datetime
import enum
import json
import os
import subprocess
import sys
import typing

import pydantic
import pytest

from taskflow import ParameterError
from taskflow.executors import LocalExecutor
from tests import read_flows

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOWS = os.path.join(ROOT, "tests", "read_flows.py")


def taskflow_cli(*args, history):
    env = {**os.environ, "PYTHONPATH": ROOT, "DASK_TASKFLOW__HISTORY__URL": history}
    return subprocess.run([sys.executable, "-m", "taskflow.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120, cwd=ROOT)


@pytest.fixture
def history(tmp_path):
    return f"sqlite:///{tmp_path / 'history.db'}"


def test_a_value_that_does_not_fit_its_type_hint_is_one_line_naming_it_and_exits_two(history):
    result = taskflow_cli("run", f"{FLOWS}:typed", "-p", "count=abc", history=history)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == ["Error: flow 'typed': parameter count='abc' is not a valid int (Input "
                     "should be a valid integer, unable to parse string as an integer)"]
    assert "flow run" not in result.stderr  # nothing started


def test_command_line_text_is_converted_to_the_hinted_types(history):
    result = taskflow_cli("run", f"{FLOWS}:typed", "--local", "-p", "count=3",
                          "-p", "day=2026-11-01", "-p", "xs=[1, \"2\"]", "-p", "label=123",
                          history=history)
    assert result.returncode == 0, result.stderr
    assert ("result: \"3 datetime.date(2026, 11, 1) [1, 2] '123'\"" in result.stdout), result.stdout


def test_flow_run_with_a_bad_value_fails_before_any_cluster_or_task():
    with pytest.raises(ParameterError, match=r"parameter xs=\[1, 'x'\] is not a valid list\[int\] "
                                             r"\(\[1\]: Input should be a valid integer"):
        # no executor given: a failure after the check would start a LocalCluster
        read_flows.typed.run(count=1, xs=[1, "x"])


def test_values_that_fit_are_kept_as_given_and_unambiguous_ones_converted():
    bound = read_flows.typed.bind_parameters({"count": "7", "day": "2026-11-01"})
    assert bound["count"] == 7 and bound["day"] == datetime.date(2026, 11, 1)
    xs = [1, 2]
    assert read_flows.typed.bind_parameters({"count": 1, "xs": xs})["xs"] is xs
    run = read_flows.typed.run(LocalExecutor(), count="2")
    assert run.parameters["count"] == 2 and run.result().startswith("2 ")


# -- the same check on recorded JSON schemas (what `taskflow server` runs) -----------------
class Colour(str, enum.Enum):
    red = "red"
    green = "green"


class Level(enum.IntEnum):
    low = 1
    high = 2


class Window(pydantic.BaseModel):
    start: datetime.date
    days: int = 1


SAME_CHECK = [
    (int, ["3", "3.0", 3, "abc", 3.5, "", None]),
    (float, ["1.5", 2, "x"]),
    (bool, ["yes", "true", True, "maybe"]),
    (str, ["x", 3]),
    (datetime.date, ["2026-11-01", datetime.date(2026, 1, 2), "2026-13-01", "soon"]),
    (datetime.datetime, ["2026-11-01T10:00:00", "no"]),
    (datetime.timedelta, ["PT1H", 3600, "x"]),
    (list[int], [[1, "2"], [1, "x"], "[1, 2]"]),
    (list[datetime.date], [["2026-11-01"], ["x"]]),
    (dict[str, int], [{"a": "1"}, {"a": "x"}, []]),
    (tuple[int, str], [[1, "a"], [1]]),
    (set[int], [[1, 2], ["x"]]),
    (typing.Optional[int], [None, "4", "x"]),  # noqa: UP045 - the spelling under test
    (int | None, [None, 5, []]),
    (typing.Literal["fast", "slow"], ["fast", "medium"]),
    (typing.Literal[1, 2], [1, 3]),
    (Colour, ["red", "blue", Colour.green]),
    (Level, ["1", 2, 3]),
    (list[Colour], [["red"], ["x"]]),
    (Window, [{"start": "2026-11-01"}, {"start": "x"}, {"days": 2}]),
    (typing.Annotated[int, pydantic.Field(ge=0, le=9)], [5, "7", -1, 10]),
    (typing.Annotated[str, pydantic.Field(pattern=r"^[a-z]+$", max_length=4)], ["ab", "AB", "abcde"]),
]


def _outcome(check: typing.Callable[[], typing.Any]) -> typing.Any:
    try:
        return check()
    except ParameterError as e:
        return ("refused", str(e), e.parameter)


@pytest.mark.parametrize("hint, values", SAME_CHECK, ids=[str(h) for h, _ in SAME_CHECK])
def test_values_checked_against_a_recorded_schema_fare_as_against_the_hint(hint, values):
    from pydantic import TypeAdapter

    from taskflow.parameter_schemas import check_with_schemas, parameter_schema
    from taskflow.parameters import coerce_value, type_name

    record = json.loads(json.dumps(  # as the history keeps it
        [{"name": "p", "type": type_name(hint), "schema": parameter_schema(hint),
          "default": None, "required": False}]))
    as_json = TypeAdapter(hint).dump_python
    for value in values:
        here = _outcome(lambda v=value: as_json(coerce_value("f", "p", v, hint), mode="json"))
        there = _outcome(lambda v=value: check_with_schemas("f", record, {"p": v})["p"])
        assert there == here, (value, here, there)


def test_form_text_is_read_as_json_where_that_fits_and_as_text_where_not():
    from taskflow.parameter_schemas import check_with_schemas, parameter_schema
    from taskflow.parameters import type_name

    hints = {"n": int, "label": str, "xs": list[int], "day": datetime.date, "maybe": int | None}
    record = [{"name": n, "type": type_name(h), "schema": parameter_schema(h)}
              for n, h in hints.items()]
    texts = {"n": "3", "label": "123", "xs": "[1, \"2\"]", "day": "2026-11-01", "maybe": "null"}
    given = {n: _json_or_text(t) for n, t in texts.items()}
    assert check_with_schemas("f", record, given, texts=texts) == {
        "n": 3, "label": "123", "xs": [1, 2], "day": "2026-11-01", "maybe": None}
    # the same values through the flow's own check, as `taskflow run -p` reads them
    assert read_flows.typed.check_parameters(
        {"count": 3, "label": 123, "xs": [1, "2"], "day": "2026-11-01"},
        texts={"count": "3", "label": "123", "xs": "[1, \"2\"]", "day": "2026-11-01"}) == {
        "count": 3, "label": "123", "xs": [1, 2], "day": datetime.date(2026, 11, 1)}


def _json_or_text(text: str) -> typing.Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def test_a_parameter_recorded_without_a_schema_takes_any_value_and_names_are_still_checked():
    from taskflow.parameter_schemas import check_with_schemas

    old = [{"name": "n", "type": "int", "default": 1, "required": False},
           {"name": "token_secret", "type": "str", "default": "hunter2", "required": False},
           {"name": "day", "type": "date", "schema": None, "required": True}]
    assert check_with_schemas("f", old, {"n": "many", "day": "x"}) == {"n": "many", "day": "x"}
    with pytest.raises(ParameterError) as e:
        check_with_schemas("f", old, {"m": 1})
    assert str(e.value) == ("flow 'f' has no parameter 'm'; its parameters are: n=1, "
                            "token_secret=********, day")
    assert e.value.parameter == "m"
    with pytest.raises(ParameterError, match="flow 'f' needs a value for parameter 'day'"):
        check_with_schemas("f", old, {"n": 2})


def test_a_schema_keyword_the_type_reading_does_not_carry_is_still_enforced():
    from taskflow.parameter_schemas import check_with_schemas

    record = [{"name": "xs", "type": "list[int]", "schema": {
        "type": "array", "items": {"type": "integer"}, "contains": {"const": 0}}}]
    assert check_with_schemas("f", record, {"xs": ["0", 1]}) == {"xs": [0, 1]}
    with pytest.raises(ParameterError) as e:
        check_with_schemas("f", record, {"xs": [1, 2]})
    assert str(e.value).startswith("flow 'f': parameter xs=[1, 2] is not a valid list[int] (")
    assert e.value.parameter == "xs"
