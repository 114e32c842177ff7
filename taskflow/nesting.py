"""Walking the nested arguments of a task call: lists, tuples, dicts, sets.

A task call's arguments are kept as *templates* (see :mod:`taskflow.graph`):
the nested containers the user passed, with markers where handles were.
:func:`substitute` rebuilds one with each leaf replaced; :func:`iter_leaves`
visits the leaves.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["iter_leaves", "substitute"]

_CONTAINERS = (list, tuple, dict, set, frozenset)
_WALKED = frozenset(_CONTAINERS)


def substitute(template: Any, leaf: Callable[[Any], Any]) -> Any:
    """Rebuild ``template`` with every non-container leaf passed through ``leaf``.

    Lists, tuples (named tuples too), dicts (values only), sets and frozensets are
    walked; anything else is a leaf.

    Examples
    --------
    >>> substitute([1, (2, {"a": 3})], lambda x: x * 10)
    [10, (20, {'a': 30})]
    """
    typ = type(template)
    if typ is tuple or typ is list:  # most calls' arguments: a tuple of leaves, walked here
        items = [substitute(v, leaf) if type(v) in _WALKED or isinstance(v, tuple) else leaf(v)
                 for v in template]
        return tuple(items) if typ is tuple else items
    if typ not in _WALKED and not (isinstance(template, tuple) and hasattr(template, "_fields")):
        return leaf(template)  # one check, no walking
    if typ is dict:
        return {k: substitute(v, leaf) for k, v in template.items()}
    if typ is set or typ is frozenset:
        return typ([substitute(v, leaf) for v in template])
    return typ(*[substitute(v, leaf) for v in template])  # a named tuple


def iter_leaves(template: Any) -> Iterator[Any]:
    """Every leaf of a template, depth first."""
    if isinstance(template, dict):
        for v in template.values():
            yield from iter_leaves(v)
    elif isinstance(template, _CONTAINERS):
        for v in template:
            yield from iter_leaves(v)
    else:
        yield template
