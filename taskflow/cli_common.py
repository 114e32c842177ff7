"""What the ``taskflow`` commands share: usage errors, parameters, formatting, executors.

Examples
--------
>>> parse_parameters(["n=10", "xs=[1, 2]", "name=etl", "flag=true", "empty="])
{'n': 10, 'xs': [1, 2], 'name': 'etl', 'flag': True, 'empty': ''}
"""
from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

import click

__all__ = ["CliError", "executor_options", "make_executor", "parameter_texts", "parse_parameters"]


class CliError(click.ClickException):
    """A usage error: one line on stderr, exit code 2."""

    exit_code = 2


def parse_parameters(pairs: Sequence[str]) -> dict[str, Any]:
    """``["n=10", "name=x"]`` -> ``{"n": 10, "name": "x"}``: JSON when it parses, else text.

    Examples
    --------
    >>> parse_parameters(["n=10", "xs=[1, 2]", "name=etl", "flag=true", "empty="])
    {'n': 10, 'xs': [1, 2], 'name': 'etl', 'flag': True, 'empty': ''}
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise CliError(f"parameter {pair!r} must look like NAME=VALUE, e.g. -p n=10")
        try:
            out[name] = json.loads(text)
        except ValueError:
            out[name] = text
    return out


def parameter_texts(pairs: Sequence[str]) -> dict[str, str]:
    """``["n=10"]`` -> ``{"n": "10"}``: the values as typed, for parameters hinted ``str``.

    Examples
    --------
    >>> parameter_texts(["label=123", "n=4"])
    {'label': '123', 'n': '4'}
    """
    out: dict[str, str] = {}
    for pair in pairs:
        name, _, text = pair.partition("=")
        out[name.strip()] = text
    return out


# -- formatting -------------------------------------------------------------------------
def format_when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def format_took(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"


def oneline(text: str | None, width: int = 70) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= width else line[: width - 3] + "..."


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(click.unstyle(r[i])) for r in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c + " " * (w - len(click.unstyle(c))) for c, w in zip(r, widths)).rstrip()
        for r in cells
    )


_STYLE = {"SUCCESS": "green", "CACHED": "green", "SKIPPED": "bright_black", "RUNNING": "yellow",
          "RETRYING": "yellow", "PENDING": "bright_black"}


def format_state(value: str) -> str:
    return click.style(value, fg=_STYLE.get(value, "red"), bold=True)


class _LineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        where = getattr(record, "task_run_name", "") or getattr(record, "flow_name", "") or "-"
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        return f"{stamp} {record.levelname:<7} {where} | {super().format(record)}"


class _ClearingHandler(logging.StreamHandler):
    """Writes records to stderr, first clearing the progress bar's line."""

    def __init__(self, clear: bool) -> None:
        super().__init__(sys.stderr)
        self.clear = clear

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return "\r\033[K" + text if self.clear else text


def log_to_stderr(level: int, clear: bool) -> logging.Handler:
    """Show ``taskflow`` records at ``level`` and above; still record info ones in history."""
    handler = _ClearingHandler(clear)
    handler.setLevel(level)
    handler.setFormatter(_LineFormatter("%(message)s"))
    # Added before the run starts, so taskflow adds no stderr handler of its own; the
    # logger's level still follows taskflow.logging.level.
    logging.getLogger("taskflow").addHandler(handler)
    return handler


def open_history() -> Any:
    from taskflow.history import open_history

    return open_history()


# -- where runs go ----------------------------------------------------------------------
_EXAMPLES = {"--cluster-kwargs": '{"n_workers": 2}', "--adapt": '{"minimum": 0, "maximum": 10}'}


def _json_option(value: str | None, option: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError as e:
        raise CliError(f"{option} must be JSON, e.g. {option} '{_EXAMPLES[option]}' ({e})") from None


def executor_options(f: Any) -> Any:
    """The options that say where runs go (shared by ``run`` and ``serve``)."""
    options = [
        click.option("--address", metavar="ADDRESS", help="Run on the Dask scheduler at ADDRESS."),
        click.option("--cluster-class", metavar="IMPORT.PATH",
                     help="Start this Dask cluster class, e.g. dask_jobqueue.SLURMCluster."),
        click.option("--cluster-kwargs", metavar="JSON",
                     help="Keyword arguments of --cluster-class, as a JSON object."),
        click.option("--adapt", "adapt", metavar="JSON",
                     help='Adaptive scaling of --cluster-class, e.g. \'{"minimum": 0, "maximum": 10}\'.'),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def make_executor(address: str | None, cluster_class: str | None, cluster_kwargs: str | None,
                  adapt: str | None, local: bool = False) -> Any:
    """The executor the options ask for, connected (None: the configured default)."""
    from taskflow.executors import DaskExecutor, LocalExecutor

    given = [n for n, v in (("--address", address), ("--cluster-class", cluster_class),
                            ("--local", local)) if v]
    if len(given) > 1:
        raise CliError(f"give one of --address, --cluster-class or --local, not {' and '.join(given)}")
    if (cluster_kwargs or adapt) and not cluster_class:
        raise CliError("--cluster-kwargs and --adapt go with --cluster-class")
    if local:
        return LocalExecutor()
    if not (address or cluster_class):
        return None
    kwargs = _json_option(cluster_kwargs, "--cluster-kwargs")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise CliError(f"--cluster-kwargs must be a JSON object, got {cluster_kwargs}")
    adapt_kwargs = _json_option(adapt, "--adapt")
    if adapt_kwargs is not None and not isinstance(adapt_kwargs, dict):
        raise CliError(f"--adapt must be a JSON object, got {adapt}")
    executor = DaskExecutor(address=address, cluster_class=cluster_class,
                            cluster_kwargs=kwargs, adapt_kwargs=adapt_kwargs)
    executor.client  # noqa: B018 - connect now: an unreachable address is a usage error
    return executor
