"""Target templates: the fields a task's ``target=`` path uses.

Read by :class:`~taskflow.task.Task` to check its option when it is defined,
and by :mod:`taskflow.results.policy` to format it for each task run.
"""
from __future__ import annotations

import re
import string

__all__ = ["template_fields"]


def template_fields(template: str) -> list[str]:
    """The field names a target template uses; ValueError when it is malformed.

    Examples
    --------
    >>> template_fields("{flow_name}/{day}/part-{map_index:03d}.parquet")
    ['flow_name', 'day', 'map_index']
    """
    names = []
    for _, name, _, _ in string.Formatter().parse(template):
        if name is None:
            continue
        base = re.split(r"[.\[]", name, maxsplit=1)[0]
        if not base or base.isdigit():
            raise ValueError(f"target {template!r}: fields must be names, like {{run_id}}")
        names.append(base)
    return names
