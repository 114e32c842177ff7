"""The Jinja2 templates of every taskflow page: the server's and the Dask dashboard's.

One environment over ``templates/`` (one ``base.html``) and ``static/`` (the one
style sheet, linked by the server and inlined by the dashboard page, whose
scheduler serves no static files).  This module imports only Jinja2 and the
schematic, so the scheduler can render the dashboard page without the server's
dependencies.

Examples
--------
>>> html = templates().get_template("macros.html").module.badge("FAILED")
>>> 'data-state="FAILED"' in html and "#d9534f" in html
True
"""
from __future__ import annotations

import functools
import os

import jinja2

from taskflow.schematic import COLOURS, DARK_INK
from taskflow.server.filters import FILTERS

__all__ = ["STATIC", "TEMPLATES", "templates"]

_HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = os.path.join(_HERE, "templates")
STATIC = os.path.join(_HERE, "static")


@functools.lru_cache(maxsize=1)
def templates() -> jinja2.Environment:
    """The shared environment (autoescaping HTML; filters of :mod:`taskflow.server.filters`)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([TEMPLATES, STATIC]),
                             autoescape=jinja2.select_autoescape(["html"]),
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(FILTERS)
    env.globals.update(colours=COLOURS, dark=sorted(DARK_INK))
    return env
