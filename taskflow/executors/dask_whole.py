"""A long list a map runs over, held on its worker so that Dask moves it as one pickle.

A worker sends a value to another (``get_data``) wrapped in Dask's ``Serialize``,
which serializes a plain ``list``, ``tuple`` or ``set`` element by element: about
35 us an element, on the sending worker's event loop.  A run-time list of 100,000
numbers took 3.6 s to leave its worker, and for that long the worker started no
task and reported none (a map's first child waited on it).  Held as a
:class:`Whole`, the same list is one C-speed pickle (a few ms).

Only the output of a task a map runs over (the ``of`` of a
:class:`~taskflow.engine.steps.Length` step) is held so, from
:data:`_WHOLE_FROM` elements.  Everything that reads such a key unwraps it
first: a :class:`~taskflow.executors.dask_spec.SentTask`'s upstream values, the
probe, length and item steps (:func:`state_probe`, :func:`length_of`,
:func:`item_of` here), and the client's gather of a run's returned values.

Examples
--------
>>> import pickle
>>> held = hold(list(range(5000)))
>>> type(held).__name__, unwrap(pickle.loads(pickle.dumps(held)))[-1]
('Whole', 4999)
>>> hold([1, 2]), unwrap(7)
([1, 2], 7)
"""
from __future__ import annotations

from typing import Any

from dask.sizeof import sizeof

from taskflow.engine import markers

__all__ = ["Whole", "hold", "item_of", "length_of", "state_probe", "unwrap"]

# a shorter list costs Dask at most ~35 ms to send element by element
_WHOLE_FROM = 1000


class Whole:
    """A list or tuple as its worker holds it: one pickle, its own size to Dask."""

    __slots__ = ("value",)

    def __init__(self, value: list[Any] | tuple[Any, ...]) -> None:
        self.value = value

    def __reduce__(self) -> tuple[Any, ...]:
        return (Whole, (self.value,))

    def __repr__(self) -> str:
        return f"<Whole {type(self.value).__name__} of {len(self.value)}>"


@sizeof.register(Whole)
def _sizeof_whole(held: Whole) -> int:
    return int(sizeof(held.value))


def hold(value: Any) -> Any:
    """``value`` as a Whole when it is a long plain list or tuple, else itself."""
    if (type(value) is list or type(value) is tuple) and len(value) >= _WHOLE_FROM:
        return Whole(value)
    return value


def unwrap(value: Any) -> Any:
    """The value a :class:`Whole` holds; anything else as it is."""
    return value.value if type(value) is Whole else value


def state_probe(value: Any) -> Any:
    """:func:`taskflow.engine.markers.state_probe` of a value that may be held."""
    return markers.state_probe(unwrap(value))


def length_of(value: Any, nested: bool = False) -> Any:
    """:func:`taskflow.engine.markers.length_of` of a value that may be held."""
    return markers.length_of(unwrap(value), nested)


def item_of(value: Any, index: int | tuple[int, int]) -> Any:
    """:func:`taskflow.engine.markers.item_of` of a value that may be held."""
    return markers.item_of(unwrap(value), index)
