import pickle
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from taskflow.deploy.schedules import (
    CronSchedule,
    IntervalSchedule,
    Schedule,
    ScheduleError,
    parse_schedule,
)
from taskflow.exceptions import TaskflowError

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def hhmm(times):
    return [t.strftime("%H:%M%z") for t in times]


# Interval schedules


def test_interval_without_start_is_aligned_to_the_unix_epoch():
    s = IntervalSchedule("15m")
    assert s.next(4, after=utc(2026, 5, 17, 10, 7, 13)) == [
        utc(2026, 5, 17, 10, 15), utc(2026, 5, 17, 10, 30),
        utc(2026, 5, 17, 10, 45), utc(2026, 5, 17, 11, 0),
    ]


def test_interval_next_is_strictly_after_a_due_time():
    assert IntervalSchedule("1h").next(after=utc(2026, 1, 1, 9)) == [utc(2026, 1, 1, 10)]


def test_interval_with_start_is_aligned_to_start_and_starts_there():
    s = IntervalSchedule(timedelta(minutes=40), start=utc(2026, 1, 1, 0, 5))
    assert s.next(3, after=utc(2025, 12, 1)) == [
        utc(2026, 1, 1, 0, 5), utc(2026, 1, 1, 0, 45), utc(2026, 1, 1, 1, 25)]
    assert s.next(1, after=utc(2026, 1, 1, 0, 45)) == [utc(2026, 1, 1, 1, 25)]


def test_interval_accepts_timedelta_seconds_and_text():
    assert IntervalSchedule(timedelta(seconds=90)) == IntervalSchedule(90) == IntervalSchedule(
        90.0) == IntervalSchedule("90s") == IntervalSchedule("1.5 minutes")
    assert IntervalSchedule("2 days").every == timedelta(days=2)
    assert IntervalSchedule(0.5).every == timedelta(milliseconds=500)


def test_interval_is_exact_far_from_its_anchor():
    s = IntervalSchedule(timedelta(seconds=7, microseconds=3))
    after = utc(9000, 1, 1)
    (t,) = s.next(after=after)
    k = (t - s.anchor) // s.every
    assert t == s.anchor + k * s.every and t - s.every <= after < t


def test_interval_stops_at_end_and_returns_fewer_than_asked():
    s = IntervalSchedule("1h", start=utc(2026, 1, 1), end=utc(2026, 1, 1, 2))
    assert s.next(10, after=utc(2025, 1, 1)) == [utc(2026, 1, 1, h) for h in range(3)]
    assert s.next(10, after=utc(2026, 1, 1, 2)) == []


def test_next_of_zero_is_empty_and_results_are_in_order():
    s = IntervalSchedule("1s")
    assert s.next(0, after=utc(2026, 1, 1)) == []
    times = s.next(50, after=utc(2026, 1, 1))
    assert len(times) == 50 and times == sorted(times) and len(set(times)) == 50


def test_next_without_after_means_from_now():
    before = datetime.now(UTC)
    (t,) = IntervalSchedule("2s").next()
    assert before < t <= datetime.now(UTC) + timedelta(seconds=2)
    assert t.tzinfo is not None


def test_naive_datetimes_are_taken_as_utc_and_results_are_aware_utc():
    s = IntervalSchedule("1h", start=datetime(2026, 1, 1, 0, 30))
    assert s.start == utc(2026, 1, 1, 0, 30)
    (t,) = s.next(after=datetime(2026, 1, 1, 5))
    assert t == utc(2026, 1, 1, 5, 30) and t.utcoffset() == timedelta(0)
    aware = datetime(2026, 1, 1, 6, tzinfo=BERLIN)  # 05:00 UTC
    assert s.next(after=aware) == [utc(2026, 1, 1, 5, 30)]


@pytest.mark.parametrize("bad", [0, -5, "0s", "-1m", "soon", "15 fortnights", None, True,
                                 float("nan"), timedelta(0), "0.1ms"])
def test_interval_must_be_a_positive_duration(bad):
    with pytest.raises(ScheduleError, match=r"interval .*(15m|30s)") as info:
        IntervalSchedule(bad)
    assert repr(bad) in str(info.value)
    assert info.value.every is bad


# Missed runs


def test_due_between_lists_runs_missed_while_down():
    s = IntervalSchedule("15m")
    assert s.due_between(utc(2026, 1, 1, 10, 0), utc(2026, 1, 1, 11, 0)) == [
        utc(2026, 1, 1, 10, 15), utc(2026, 1, 1, 10, 30),
        utc(2026, 1, 1, 10, 45), utc(2026, 1, 1, 11, 0)]
    assert s.due_between(utc(2026, 1, 1, 10, 1), utc(2026, 1, 1, 10, 14)) == []


def test_due_between_keeps_only_the_most_recent_limit_runs():
    s = IntervalSchedule("1s")
    start, end = utc(2000, 1, 1), utc(2026, 1, 1)  # ~800 million seconds
    got = s.due_between(start, end)
    assert len(got) == 10_000 and got[-1] == end and got[0] == end - timedelta(seconds=9_999)
    assert s.due_between(start, end, limit=3) == [end - timedelta(seconds=i) for i in (2, 1, 0)]


def test_due_between_respects_start_and_end_of_the_schedule():
    s = IntervalSchedule("1h", start=utc(2026, 1, 1, 3), end=utc(2026, 1, 1, 5))
    assert s.due_between(utc(2026, 1, 1), utc(2026, 1, 2)) == [
        utc(2026, 1, 1, 3), utc(2026, 1, 1, 4), utc(2026, 1, 1, 5)]
    c = CronSchedule("0 * * * *", start=utc(2026, 1, 1, 3), end=utc(2026, 1, 1, 5))
    assert c.due_between(utc(2026, 1, 1), utc(2026, 1, 2)) == [
        utc(2026, 1, 1, 3), utc(2026, 1, 1, 4), utc(2026, 1, 1, 5)]


def test_cron_due_between_is_bounded_by_limit():
    s = CronSchedule("* * * * * *")
    got = s.due_between(utc(2020, 1, 1), utc(2026, 1, 1), limit=5)
    assert got == [utc(2026, 1, 1) - timedelta(seconds=i) for i in (4, 3, 2, 1, 0)]


@pytest.mark.parametrize("bad", [-1, 1.5])
def test_counts_must_be_whole_and_not_negative(bad):
    with pytest.raises(ScheduleError, match="n must be"):
        IntervalSchedule("1s").next(bad, after=utc(2026, 1, 1))
    with pytest.raises(ScheduleError, match="limit must be"):
        IntervalSchedule("1s").due_between(utc(2026, 1, 1), utc(2026, 1, 2), limit=bad)


# Cron schedules


def test_cron_five_fields_in_utc_by_default():
    s = CronSchedule("*/20 9 * * *")
    assert s.next(4, after=utc(2026, 1, 1, 9, 30)) == [
        utc(2026, 1, 1, 9, 40), utc(2026, 1, 2, 9, 0), utc(2026, 1, 2, 9, 20),
        utc(2026, 1, 2, 9, 40)]


def test_cron_sixth_field_is_seconds():
    s = CronSchedule("* * * * * */2")
    assert s.next(3, after=utc(2026, 1, 1, 0, 0, 0, 500_000)) == [
        utc(2026, 1, 1, 0, 0, 2), utc(2026, 1, 1, 0, 0, 4), utc(2026, 1, 1, 0, 0, 6)]


@pytest.mark.parametrize("alias, first", [("@hourly", utc(2026, 1, 1, 1)),
                                          ("@daily", utc(2026, 1, 2))])
def test_cron_aliases(alias, first):
    assert CronSchedule(alias).next(after=utc(2026, 1, 1, 0, 30)) == [first]


def test_cron_times_are_in_the_schedule_timezone():
    s = CronSchedule("0 9 * * *", timezone="Europe/Berlin")
    (t,) = s.next(after=utc(2026, 7, 1))
    assert t.tzinfo == BERLIN and t.isoformat() == "2026-07-01T09:00:00+02:00"
    (t,) = s.next(after=utc(2026, 1, 1))
    assert t.isoformat() == "2026-01-01T09:00:00+01:00"


def test_cron_start_is_inclusive_and_end_is_inclusive():
    s = CronSchedule("0 * * * *", start=utc(2026, 1, 1, 3), end=utc(2026, 1, 1, 5))
    assert s.next(10, after=utc(2025, 1, 1)) == [utc(2026, 1, 1, h) for h in (3, 4, 5)]


def test_spring_forward_fixed_time_in_the_gap_runs_once_at_the_end_of_the_gap():
    # Europe/Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST.
    after = datetime(2026, 3, 28, 12, tzinfo=BERLIN)
    for expr in ["0 2 * * *", "30 2 * * *", "*/15 2 * * *"]:
        got = CronSchedule(expr, timezone="Europe/Berlin").next(2, after=after)
        assert got[0].isoformat() == "2026-03-29T03:00:00+02:00", expr
        assert got[1].date().isoformat() == "2026-03-30", expr


def test_spring_forward_day_has_23_hourly_runs():
    s = CronSchedule("0 * * * *", timezone="Europe/Berlin")
    day = s.due_between(datetime(2026, 3, 29, tzinfo=BERLIN) - timedelta(microseconds=1),
                        datetime(2026, 3, 29, 23, 59, tzinfo=BERLIN))
    assert len(day) == 23 and "2026-03-29T02" not in " ".join(t.isoformat() for t in day)


def test_fall_back_fixed_time_in_the_repeated_hour_runs_once():
    # Europe/Berlin, 2026-10-25: 03:00 CEST falls back to 02:00 CET.
    s = CronSchedule("30 2 * * *", timezone="Europe/Berlin")
    got = s.next(3, after=datetime(2026, 10, 24, 12, tzinfo=BERLIN))
    assert [t.isoformat() for t in got] == [
        "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00", "2026-10-27T02:30:00+01:00"]


def test_fall_back_after_the_first_pass_does_not_run_the_fixed_time_again():
    s = CronSchedule("30 2 * * *", timezone="Europe/Berlin")
    between_passes = datetime(2026, 10, 25, 2, 15, fold=1, tzinfo=BERLIN)  # 01:15 UTC
    (t,) = s.next(after=between_passes)
    assert t.isoformat() == "2026-10-26T02:30:00+01:00"


def test_fall_back_one_thirty_in_new_york_runs_once():
    # America/New_York, 2026-11-01: 02:00 EDT falls back to 01:00 EST.
    s = CronSchedule("30 1 * * *", timezone="America/New_York")
    got = s.next(2, after=datetime(2026, 10, 31, 12, tzinfo=NEW_YORK))
    assert [t.isoformat() for t in got] == ["2026-11-01T01:30:00-04:00",
                                            "2026-11-02T01:30:00-05:00"]


def test_fall_back_day_has_25_hourly_runs_including_both_passes():
    s = CronSchedule("0 * * * *", timezone="Europe/Berlin")
    day = s.next(30, after=datetime(2026, 10, 25, tzinfo=BERLIN) - timedelta(microseconds=1))
    day = [t for t in day if t.date().isoformat() == "2026-10-25"]
    assert len(day) == 25
    assert hhmm(day[1:5]) == ["01:00+0200", "02:00+0200", "02:00+0100", "03:00+0100"]
    utcs = [t.astimezone(UTC) for t in day]
    assert all(b - a == timedelta(hours=1) for a, b in zip(utcs, utcs[1:]))


@pytest.mark.parametrize("expr", ["0 2 * * *", "30 2 * * *", "0 * * * *", "*/20 1-3 * * *",
                                  "0 */2 * * *", "15 2,3 * * *", "0 */10 * * * *"])
@pytest.mark.parametrize("day", [datetime(2026, 3, 28, tzinfo=BERLIN),
                                 datetime(2026, 10, 24, tzinfo=BERLIN)])
def test_due_between_agrees_with_next_across_dst_days(expr, day):
    s = CronSchedule(expr, timezone="Europe/Berlin")
    end = day + timedelta(days=2)
    missed = s.due_between(day, end)
    *forward, beyond = s.next(len(missed) + 1, after=day)
    assert forward == missed and beyond > end
    assert [t.astimezone(UTC) for t in missed] == sorted({t.astimezone(UTC) for t in missed})


# Errors


@pytest.mark.parametrize("expr, reason", [("61 * * * *", "out of range"),
                                          ("* * *", "3 fields"),
                                          ("* * * * * * 2030", "7 fields"),
                                          ("every day", "2 fields"),
                                          ("0 0 31 2 *", "never fires"),
                                          ("@sometimes", "unknown alias")])
def test_bad_cron_expression_is_named_with_the_reason_and_an_example(expr, reason):
    with pytest.raises(ScheduleError, match="cron expression") as info:
        CronSchedule(expr)
    msg = str(info.value)
    assert repr(expr) in msg and reason in msg and "'*/15 * * * *'" in msg
    assert info.value.expr == expr


def test_unknown_timezone_is_named_with_an_example():
    with pytest.raises(ScheduleError, match=r"unknown timezone 'Europe/Berln'.*'Europe/Berlin'"):
        CronSchedule("0 * * * *", timezone="Europe/Berln")
    with pytest.raises(ScheduleError, match="unknown timezone '../etc'"):
        CronSchedule("0 * * * *", timezone="../etc")


@pytest.mark.parametrize("make", [lambda **kw: IntervalSchedule("1h", **kw),
                                  lambda **kw: CronSchedule("0 * * * *", **kw)])
def test_end_must_be_after_start(make):
    with pytest.raises(ScheduleError, match=r"end 2026-01-01T00:00:00\+00:00 is not after"):
        make(start=utc(2026, 1, 2), end=utc(2026, 1, 1))
    with pytest.raises(ScheduleError, match="not after its start"):
        make(start=utc(2026, 1, 1), end=datetime(2026, 1, 1))


def test_schedule_error_is_a_taskflow_error_and_a_value_error_and_pickles():
    with pytest.raises(ScheduleError) as info:
        CronSchedule("0 * * * *", timezone="Mars/Olympus")
    err = info.value
    assert isinstance(err, TaskflowError) and isinstance(err, ValueError)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is ScheduleError and str(back) == str(err)
    assert back.timezone == "Mars/Olympus"


# Values: parameters, equality, pickling, text


def test_parameters_are_carried_and_copied():
    given = {"region": "eu"}
    s = CronSchedule("0 * * * *", parameters=given)
    given["region"] = "us"
    assert s.parameters == {"region": "eu"}
    assert IntervalSchedule("1h").parameters == {}


@pytest.mark.parametrize("s", [
    IntervalSchedule("15m"),
    IntervalSchedule("1s", start=utc(2026, 1, 1), end=utc(2026, 2, 1), parameters={"x": [1]}),
    CronSchedule("* * * * * */2", timezone="Europe/Berlin", parameters={"x": 1}),
    CronSchedule("@daily", start=datetime(2026, 1, 1)),
])
def test_schedules_pickle_compare_and_hash_by_value(s):
    back = pickle.loads(pickle.dumps(s))
    assert back == s and hash(back) == hash(s) and isinstance(back, Schedule)
    after = utc(2026, 1, 1, 12)
    assert back.next(3, after=after) == s.next(3, after=after)
    assert eval(repr(s), {"IntervalSchedule": IntervalSchedule, "CronSchedule": CronSchedule,
                          "datetime": __import__("datetime")}) == s


def test_schedules_differ_by_parameters_and_kind():
    assert IntervalSchedule("1h", parameters={"a": 1}) != IntervalSchedule("1h")
    assert IntervalSchedule("1h") != CronSchedule("0 * * * *")
    assert len({IntervalSchedule("1h"), IntervalSchedule(3600), CronSchedule("@hourly")}) == 2


def test_schedules_are_frozen():
    s = IntervalSchedule("1h")
    with pytest.raises(AttributeError):
        s.every = timedelta(1)  # type: ignore[misc]


def test_describe_str_and_repr():
    assert IntervalSchedule("15m").describe() == "every 15m"
    assert str(IntervalSchedule(5400)) == "every 90m"
    assert str(IntervalSchedule("1.5s")) == "every 1500ms"
    assert str(IntervalSchedule("1h", start=datetime(2026, 1, 1))) == (
        "every 1h from 2026-01-01T00:00:00+00:00")
    cron = CronSchedule("0  *  * * *", timezone="Europe/Berlin", parameters={"x": 1})
    assert str(cron) == "cron '0 * * * *' (Europe/Berlin)"
    assert repr(cron) == "CronSchedule('0 * * * *', timezone='Europe/Berlin', parameters={'x': 1})"
    assert repr(IntervalSchedule("2 days")) == "IntervalSchedule('2d')"


# Command line


def test_parse_schedule_every_and_cron():
    assert parse_schedule(every="15m") == IntervalSchedule("15m")
    assert parse_schedule(cron="0 * * * *") == CronSchedule("0 * * * *", timezone="UTC")
    assert parse_schedule(cron="0 9 * * *", timezone="Europe/Berlin",
                          parameters={"x": 1}) == CronSchedule(
        "0 9 * * *", timezone="Europe/Berlin", parameters={"x": 1})
    assert parse_schedule(every="1s", parameters={"x": 1}).parameters == {"x": 1}


@pytest.mark.parametrize("kw", [{}, {"cron": "0 * * * *", "every": "1h"}, {"timezone": "UTC"}])
def test_parse_schedule_needs_exactly_one_of_cron_or_every(kw):
    with pytest.raises(ScheduleError, match="give one of --cron or --every"):
        parse_schedule(**kw)


def test_parse_schedule_timezone_only_with_cron():
    with pytest.raises(ScheduleError, match="--timezone 'Europe/Berlin' applies to --cron only"):
        parse_schedule(every="1h", timezone="Europe/Berlin")


def test_parse_schedule_passes_on_bad_values():
    with pytest.raises(ScheduleError, match="interval 'often'"):
        parse_schedule(every="often")
    with pytest.raises(ScheduleError, match="cron expression '0 0 \\* \\*'"):
        parse_schedule(cron="0 0 * *")
