"""Small formatting helpers of the templates (Jinja2 filters), shared with the dashboard page.

Examples
--------
>>> took(0.25), took(12.345), took(125)
('250 ms', '12.3 s', '2 min 5 s')
>>> short("3f2a9c0d11", 8)
'3f2a9c0d'
"""
from __future__ import annotations

import json
import time
from typing import Any

from taskflow.schematic import colour, ink

__all__ = ["FILTERS", "short", "took", "when"]


def when(t: float | None) -> str:
    """Local time of an epoch timestamp, or empty."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else ""


def took(seconds: float | None) -> str:
    """A duration people read at a glance."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms" if seconds >= 0.0005 else "<1 ms"
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    minutes, s = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {s} s"
    return f"{minutes // 60} h {minutes % 60} min"


def short(text: str | None, n: int = 8) -> str:
    return (text or "")[:n]


def shown(value: Any) -> str:
    """A parameter value as text: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def ago(t: float | None) -> str:
    if not t:
        return "never"
    return took(max(0.0, time.time() - t)) + " ago"


FILTERS = {"when": when, "took": took, "short": short, "colour": colour, "ink": ink,
           "shown": shown, "ago": ago}
