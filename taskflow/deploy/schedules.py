"""Schedules: when the serve process starts flow runs.

A schedule is a plain value (it compares, hashes and pickles).  Given a moment it
says which due times come next (:meth:`Schedule.next`) or which fell inside a window
(:meth:`Schedule.due_between`: the runs missed while a server was down).  It keeps no
state and reads the clock only when ``after`` is left out, so a restarted server
gets the same due times.  There are two kinds:

- :class:`IntervalSchedule` runs every fixed period, at ``start + k * every``.
  Without a ``start`` it counts from the Unix epoch, so ``every="15m"`` runs at
  :00, :15, :30 and :45 UTC whenever the server started.  The arithmetic uses
  whole microseconds, so due times stay exact however far they are from the anchor.
- :class:`CronSchedule` runs on a cron expression (through ``croniter``), read in
  an IANA timezone.

For both, naive datetimes (``start``, ``end``, ``after``) are taken as UTC, due
times are timezone-aware, and none comes before ``start`` or after ``end``.

Daylight saving time, for cron schedules in their own timezone:

- Spring forward: wall times in the skipped hour do not exist.  A job due in the
  gap runs once, at the end of the gap.  For example, ``0 2 * * *`` and
  ``30 2 * * *`` in Europe/Berlin on 2026-03-29 both run at 03:00 CEST.  This is
  what croniter does, and we keep it.
- Fall back: the repeated hour happens twice.  If the hour field starts with
  ``*`` (``0 * * * *``, ``*/10 * * * *``), the job runs in both passes, because
  they are different real hours.  If the hour is fixed (``30 2 * * *``), the job
  runs once, in the first pass.  croniter on its own would run it twice, so we
  drop the repeat.  Vixie cron follows the same rule.

Examples
--------
>>> from datetime import datetime, timezone
>>> after = datetime(2026, 1, 1, 9, 7, tzinfo=timezone.utc)
>>> [t.strftime("%H:%M") for t in IntervalSchedule("15m").next(3, after=after)]
['09:15', '09:30', '09:45']
>>> weekdays = CronSchedule("0 9 * * 1-5", timezone="Europe/Berlin")
>>> weekdays
CronSchedule('0 9 * * 1-5', timezone='Europe/Berlin')
>>> [t.isoformat() for t in weekdays.next(2, after=after)]
['2026-01-02T09:00:00+01:00', '2026-01-05T09:00:00+01:00']
>>> print(parse_schedule(every="1h", parameters={"region": "eu"}))
every 1h
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import islice, takewhile
from typing import Any
from zoneinfo import ZoneInfo

from croniter import (
    croniter,  # its errors are ValueErrors (CroniterError is not exported by every allowed version)
)
from dask.utils import parse_timedelta

from taskflow.exceptions import TaskflowError

__all__ = ["CronSchedule", "IntervalSchedule", "Schedule", "ScheduleError", "parse_schedule"]

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MAX = datetime.max.replace(tzinfo=timezone.utc)
MIN_INTERVAL = timedelta(milliseconds=1)
_US = timedelta(microseconds=1)
_UNITS = (("d", 86_400_000_000), ("h", 3_600_000_000), ("m", 60_000_000), ("s", 1_000_000),
          ("ms", 1_000), ("us", 1))
_CRON_HELP = ("use 5 fields (minute hour day-of-month month day-of-week) like '*/15 * * * *', "
              "6 with seconds last like '* * * * * */2', or an alias like '@hourly'")


class ScheduleError(TaskflowError, ValueError):
    """A schedule cannot be built: a bad cron expression, timezone, interval or bounds.

    Examples
    --------
    >>> CronSchedule("61 * * * *")
    Traceback (most recent call last):
    ...
    taskflow.deploy.schedules.ScheduleError: ...
    """


@dataclass(frozen=True, init=False, repr=False)
class Schedule(ABC):
    """When to start flow runs, and with which ``parameters``.

    Subclasses provide ``_forward`` (due times after a moment, ascending) and
    ``_backward`` (due times at or before a moment, descending).  Both respect
    ``start`` and ignore ``end``.  The two kinds are :class:`IntervalSchedule` and
    :class:`CronSchedule`.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> s: Schedule = IntervalSchedule("1h")
    >>> start, end = datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 1, 1, 3, tzinfo=timezone.utc)
    >>> [t.hour for t in s.due_between(start, end)]
    [1, 2, 3]
    """

    start: datetime | None
    end: datetime | None
    parameters: dict[str, Any] = field(hash=False)

    def next(self, n: int = 1, after: datetime | None = None) -> list[datetime]:
        """The next ``n`` due times strictly after ``after`` (default: now), in order.

        Returns fewer than ``n``, perhaps none, once the schedule's ``end`` is reached.
        """
        _check_count("n", n)
        after = datetime.now(timezone.utc) if after is None else _utc(after, "after")
        end = self.end or _MAX
        return list(islice(takewhile(lambda t: t <= end, self._forward(after)), n))

    def due_between(self, start: datetime, end: datetime, *, limit: int = 10_000) -> list[datetime]:
        """Due times ``t`` with ``start < t <= end``, in order, for runs missed while down.

        At most ``limit`` are returned: when more fell in the window, these are the
        ``limit`` most recent ones.
        """
        _check_count("limit", limit)
        lo, hi = _utc(start, "start"), min(_utc(end, "end"), self.end or _MAX)
        due = list(islice(takewhile(lambda t: t > lo, self._backward(hi)), limit))
        due.reverse()
        return due

    @abstractmethod
    def describe(self) -> str:
        """Short human text, like ``every 15m`` or ``cron '0 * * * *' (Europe/Berlin)``."""

    @abstractmethod
    def _forward(self, after: datetime) -> Iterator[datetime]: ...

    @abstractmethod
    def _backward(self, until: datetime) -> Iterator[datetime]: ...

    def __str__(self) -> str:
        return self.describe()

    def _bounds_text(self) -> str:
        since = f" from {self.start.isoformat()}" if self.start else ""
        return since + (f" until {self.end.isoformat()}" if self.end else "")

    def _repr_tail(self) -> str:
        keys = ("start", "end", "parameters")
        return "".join(f", {k}={getattr(self, k)!r}" for k in keys if getattr(self, k))

    def _set_common(self, start: datetime | None, end: datetime | None,
                    parameters: Mapping[str, Any] | None) -> None:
        start = None if start is None else _utc(start, "start")
        end = None if end is None else _utc(end, "end")
        if start is not None and end is not None and end <= start:
            raise ScheduleError(f"schedule end {end.isoformat()} is not after its start "
                                f"{start.isoformat()}; give an end later than the start",
                                start=start, end=end)
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "parameters", dict(parameters or {}))


@dataclass(frozen=True, init=False, repr=False)
class IntervalSchedule(Schedule):
    """Run every ``every``, at ``start + k * every``, or aligned to the Unix epoch.

    Parameters
    ----------
    every
        A ``timedelta``, a number of seconds, or text like ``"15m"``, ``"1h"``,
        ``"2 days"`` (read by :func:`dask.utils.parse_timedelta`).  At least 1 ms.
    start, end
        Optional bounds.  The first due time is ``start`` itself.  Naive means UTC.
    parameters
        Parameter values for the runs this schedule starts.

    Examples
    --------
    >>> from datetime import datetime
    >>> s = IntervalSchedule("1h", start=datetime(2026, 1, 1, 0, 30))
    >>> [t.isoformat() for t in s.next(2, after=datetime(2026, 1, 1))]
    ['2026-01-01T00:30:00+00:00', '2026-01-01T01:30:00+00:00']
    """

    every: timedelta

    def __init__(self, every: timedelta | float | int | str, start: datetime | None = None,
                 end: datetime | None = None,
                 parameters: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "every", _interval(every))
        self._set_common(start, end, parameters)

    @property
    def anchor(self) -> datetime:
        """The due time that others are counted from: ``start``, else the Unix epoch."""
        return self.start or EPOCH

    def describe(self) -> str:
        return f"every {_format_interval(self.every)}{self._bounds_text()}"

    def __repr__(self) -> str:
        return f"IntervalSchedule({_format_interval(self.every)!r}{self._repr_tail()})"

    def _forward(self, after: datetime) -> Iterator[datetime]:
        k = (after - self.anchor) // self.every + 1
        yield from self._walk(max(k, 0) if self.start else k, 1)

    def _backward(self, until: datetime) -> Iterator[datetime]:
        yield from self._walk((until - self.anchor) // self.every, -1)

    def _walk(self, k: int, step: int) -> Iterator[datetime]:
        while k >= 0 or self.start is None:
            try:
                yield self.anchor + k * self.every
            except OverflowError:  # past year 9999 or before year 1
                return
            k += step


@dataclass(frozen=True, init=False, repr=False)
class CronSchedule(Schedule):
    """Run on a cron expression read in an IANA timezone.

    Parameters
    ----------
    expr
        5 fields (minute hour day-of-month month day-of-week), or 6 where the sixth
        is seconds (``"* * * * * */2"`` runs every 2 seconds), or an alias like
        ``"@hourly"`` or ``"@daily"``.
    timezone
        IANA name like ``"Europe/Berlin"``.  Due times are returned in this zone.
    start, end, parameters
        As for :class:`IntervalSchedule`.

    Examples
    --------
    >>> from datetime import datetime
    >>> s = CronSchedule("0 2 * * *", timezone="Europe/Berlin")
    >>> [t.isoformat() for t in s.next(2, after=datetime(2026, 3, 28, 12))]
    ['2026-03-29T03:00:00+02:00', '2026-03-30T02:00:00+02:00']
    """

    expr: str
    timezone: str

    def __init__(self, expr: str, timezone: str = "UTC", start: datetime | None = None,
                 end: datetime | None = None,
                 parameters: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "expr", _cron(expr, _zone(timezone)))
        object.__setattr__(self, "timezone", timezone)
        self._set_common(start, end, parameters)

    def describe(self) -> str:
        return f"cron {self.expr!r} ({self.timezone}){self._bounds_text()}"

    def __repr__(self) -> str:
        zone = "" if self.timezone == "UTC" else f", timezone={self.timezone!r}"
        return f"CronSchedule({self.expr!r}{zone}{self._repr_tail()})"

    def _forward(self, after: datetime) -> Iterator[datetime]:
        base = after if self.start is None else max(after, self.start - _US)
        for t in self._walk(base, forward=True):
            if t > after and (self.start is None or t >= self.start):
                yield t

    def _backward(self, until: datetime) -> Iterator[datetime]:
        for t in self._walk(until + _US, forward=False):  # croniter's prev is strict
            if self.start is not None and t < self.start:
                return
            if t <= until:
                yield t

    def _walk(self, base: datetime, forward: bool) -> Iterator[datetime]:
        tz = ZoneInfo(self.timezone)
        it = croniter(self.expr, base.astimezone(tz))
        fixed_hour = not str(it.expressions[1]).startswith("*")
        while True:
            try:
                t = (it.get_next if forward else it.get_prev)(datetime).astimezone(tz)
            except (ValueError, OverflowError):  # out of datetime's range
                return
            if not (fixed_hour and _repeated_wall_time(t, tz)):
                yield t


def parse_schedule(cron: str | None = None, every: str | None = None,
                   timezone: str | None = None,
                   parameters: Mapping[str, Any] | None = None) -> Schedule:
    """Build a schedule from command line options: exactly one of ``cron`` or ``every``.

    Parameters
    ----------
    cron : str, optional
        A cron expression (``--cron``).
    every : str, optional
        An interval such as ``15m`` (``--every``).
    timezone : str, optional
        The IANA time zone of ``cron`` (default UTC); not allowed with ``every``.
    parameters : dict, optional
        Parameter values of the runs the schedule starts.

    Examples
    --------
    >>> parse_schedule(cron="@hourly", timezone="Europe/Berlin")
    CronSchedule('@hourly', timezone='Europe/Berlin')
    >>> parse_schedule(every="30s")
    IntervalSchedule('30s')
    """
    if (cron is None) == (every is None):
        raise ScheduleError("give one of --cron or --every (not both, not neither), "
                            "e.g. --every 15m or --cron '0 * * * *'", cron=cron, every=every)
    if every is not None:
        if timezone is not None:
            raise ScheduleError(f"--timezone {timezone!r} applies to --cron only; interval "
                                "schedules count from the Unix epoch in UTC", timezone=timezone)
        return IntervalSchedule(every, parameters=parameters)
    assert cron is not None
    return CronSchedule(cron, timezone=timezone or "UTC", parameters=parameters)


def _utc(dt: datetime, name: str) -> datetime:
    if not isinstance(dt, datetime):
        raise ScheduleError(f"{name} must be a datetime, got {dt!r}", value=dt)
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def _check_count(name: str, value: int) -> None:
    if not isinstance(value, int) or value < 0:
        raise ScheduleError(f"{name} must be a whole number >= 0, got {value!r}", value=value)


def _interval(every: timedelta | float | int | str) -> timedelta:
    try:
        if isinstance(every, bool):
            raise TypeError(every)
        if isinstance(every, timedelta):
            td = every
        else:
            td = timedelta(seconds=parse_timedelta(every) if isinstance(every, str) else every)
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        raise ScheduleError(f"cannot read interval {every!r}; give a duration like "
                            "'15m', '1h', '2 days' or a number of seconds", every=every) from e
    if td < MIN_INTERVAL:
        raise ScheduleError(f"interval {every!r} must be at least 1ms; give a positive "
                            "duration like '30s' or '15m'", every=every)
    return td


def _format_interval(td: timedelta) -> str:
    us = td // _US
    unit, size = next((u, s) for u, s in _UNITS if us % s == 0)
    return f"{us // size}{unit}"


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, TypeError, OSError) as e:
        raise ScheduleError(f"unknown timezone {name!r}; use an IANA name like "
                            "'Europe/Berlin' or 'UTC'", timezone=name) from e


def _cron(expr: str, tz: ZoneInfo) -> str:
    if not isinstance(expr, str):
        raise ScheduleError(f"cron expression must be text, got {expr!r}; {_CRON_HELP}", expr=expr)
    fields = expr.split()
    if not expr.startswith("@") and len(fields) not in (5, 6):
        raise ScheduleError(f"cron expression {expr!r} has {len(fields)} fields; {_CRON_HELP}",
                            expr=expr)
    try:
        croniter(" ".join(fields), datetime(2000, 1, 1, tzinfo=tz)).get_next(datetime)
    except (ValueError, KeyError, TypeError) as e:
        reason = ("it never fires" if "find next date" in str(e) else
                  "unknown alias (known: @hourly, @daily, @midnight, @weekly, @monthly, "
                  "@yearly)" if expr.startswith("@") else str(e))
        raise ScheduleError(f"invalid cron expression {expr!r}: {reason}; {_CRON_HELP}",
                            expr=expr) from e
    return " ".join(fields)


def _repeated_wall_time(t: datetime, tz: ZoneInfo) -> bool:
    """True if ``t`` is the second pass of a wall time repeated when clocks fall back."""
    wall = t.replace(tzinfo=None)
    first, second = (wall.replace(tzinfo=tz, fold=f).utcoffset() for f in (0, 1))
    if first is None or second is None or first <= second:
        return False  # not a fall-back overlap (a gap has first < second)
    return t.utcoffset() == second
