"""Where the history lives: ``taskflow.history.url``, or a SQLite file by default.

This module imports nothing heavy, so the recorder can decide where to write
without loading SQLAlchemy in the process that runs flows until it writes.

Examples
--------
>>> import dask
>>> with dask.config.set({"taskflow.history.url": "sqlite:////tmp/h.db"}):
...     resolve_url()
'sqlite:////tmp/h.db'
>>> default_url().startswith("sqlite:///") and default_url().endswith("history.db")
True
"""
from __future__ import annotations

import os

from taskflow import config

__all__ = ["data_dir", "default_url", "resolve_url"]


def data_dir() -> str:
    """The user's data directory for taskflow (``~/.local/share/taskflow`` on Linux)."""
    from platformdirs import user_data_dir  # small, but only the default URL needs it

    return user_data_dir("taskflow", appauthor=False)


def default_url() -> str:
    """The URL of the default history: ``sqlite:///<data dir>/history.db``."""
    return "sqlite:///" + os.path.join(data_dir(), "history.db")


def resolve_url(url: str | None = None) -> str:
    """``url`` if given, else ``taskflow.history.url``, else :func:`default_url`."""
    return url or config.get("history.url") or default_url()
