"""A task call's arguments: the markers :class:`unmapped` and :class:`flatten`,
and :func:`binds`, the quick check that they fit the task's signature.

The markers only wrap a value; the flow builder (:mod:`taskflow.graph`) reads
them when it records a call.
"""
from __future__ import annotations

import inspect
from typing import Any

__all__ = ["binds", "flatten", "unmapped"]


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


_PLAIN = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_Shape = tuple[tuple[str, ...], int, frozenset[str]]
# by id: hashing a Signature hashes every parameter (~10 us); the signature is kept
# beside its shape, so an id is never reused while its entry lives
_shapes: dict[int, tuple[inspect.Signature, _Shape | None]] = {}


def binds(sig: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """True when the call surely fits ``sig`` (then ``sig.bind``, 5-10 us, is not needed).

    Only for plain parameters (no ``*args``, ``**kwargs``, positional-only); False
    means "ask ``sig.bind``", which accepts the call or says why not.  Tracing
    asks it once per task call.

    Examples
    --------
    >>> def f(a, b=1, *, c): ...
    >>> binds(inspect.signature(f), (1,), {"c": 2}), binds(inspect.signature(f), (1,), {})
    (True, False)
    """
    known = _shapes.get(id(sig))
    if known is None or known[0] is not sig:
        params = list(sig.parameters.values())
        found: _Shape | None = None
        if all(p.kind in _PLAIN for p in params):
            positional = tuple(p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD)
            required = frozenset(p.name for p in params if p.default is p.empty)
            found = (positional, len(params), required)
        known = _shapes[id(sig)] = (sig, found)
    shape = known[1]
    if shape is None:
        return False
    positional, n, required = shape
    given = len(args)
    if given > len(positional) or given + len(kwargs) > n:
        return False
    taken = positional[:given]
    if any(k in taken or k not in sig.parameters for k in kwargs):
        return False
    return all(r in kwargs or r in taken for r in required)
