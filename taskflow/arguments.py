"""Markers on a task call's arguments: :class:`unmapped` and :class:`flatten`.

They only wrap a value; the flow builder (:mod:`taskflow.graph`) reads them when
it records a call.
"""
from __future__ import annotations

from typing import Any

__all__ = ["flatten", "unmapped"]


class unmapped:  # noqa: N801 - reads like a function at the call site
    """Pass ``value`` whole to every child of a ``task.map`` call.

    Parameters
    ----------
    value : object
        A constant, a parameter or a task handle (a list too), given to every child.

    Examples
    --------
    >>> from taskflow import flow, task, unmapped
    >>> @task
    ... def scale(x, factor):
    ...     return x * factor
    >>> @flow
    ... def scaled(factor: int = 10):
    ...     return scale.map([1, 2, 3], factor=unmapped(factor))
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class flatten:  # noqa: N801
    """The concatenation of a list of lists: ``task.map(flatten(h))`` maps over it.

    ``task(flatten(h))`` receives it as one list (a small ``flatten`` task makes it).

    Parameters
    ----------
    value : Handle or list of lists
        A task returning a list of lists, a mapped task whose children return
        lists, or a constant list of lists.

    Examples
    --------
    >>> from taskflow import task, flatten
    >>> @task
    ... def double(x):
    ...     return 2 * x
    >>> double.map(flatten([[1, 2], [3]]))  # outside a flow: computed here
    [2, 4, 6]
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value
