"""Parameter values checked against a flow's type hints, before anything runs.

A ``@flow`` function's annotations say what each parameter takes.  When a run
starts (``flow.run(...)``, ``taskflow run -p ...``, a schedule, a serve request)
every value *given* is checked against its hint by pydantic's
:class:`~pydantic.TypeAdapter`, before a cluster is reached or a task is sent:

* a value that already fits (a strict check) is kept as it is, the very object;
* otherwise it is converted where pydantic's lax mode finds one unambiguous
  reading (``"3"`` -> ``3`` for ``int``, ``"2026-11-01"`` -> a ``date``, a JSON
  list for ``list[int]``); text given on the command line is also read as JSON
  when that is what fits;
* anything else is a :class:`~taskflow.exceptions.ParameterError` of one line
  naming the parameter, the value and the type.

Defaults are not checked (the author wrote them), parameters without a hint
(or hinted ``Any``) take anything, and a hint pydantic cannot read is skipped
rather than guessed at.  Builder-style flows (``Parameter("n")``) have no hints.

Where the flow cannot be imported (``taskflow server``), the same check runs on
the JSON schemas of the hints that its serve process recorded:
:mod:`taskflow.parameter_schemas`.

Examples
--------
>>> def etl(count: int, label="x"): ...
>>> hints = parameter_hints(etl)
>>> hints
{'count': <class 'int'>}
>>> coerce_value("etl", "count", "3", hints["count"])
3
>>> coerce_value("etl", "count", "abc", hints["count"])
Traceback (most recent call last):
...
taskflow.exceptions.ParameterError: flow 'etl': parameter count='abc' is not a valid int (Input should be a valid integer, unable to parse string as an integer)
"""
from __future__ import annotations

import inspect
import sys
import typing
from collections.abc import Callable, Mapping
from typing import Any

from taskflow.exceptions import ParameterError
from taskflow.secrets import MASK, is_secret

__all__ = ["coerce_parameters", "coerce_value", "json_default", "parameter_hints", "refused", "type_name"]

_SKIP: Any = object()


def json_default(value: Any) -> Any:
    """A parameter value JSON cannot hold, as JSON: ``json.dumps(..., default=json_default)``.

    Dates, enums, sets, pydantic models... become what pydantic would write for
    them (so a server, the CLI and a schema check read them back as the flow
    would); anything else its ``repr``.

    Examples
    --------
    >>> import datetime, json
    >>> json.dumps({"day": datetime.date(2026, 11, 1), "tags": {"a"}}, default=json_default)
    '{"day": "2026-11-01", "tags": ["a"]}'
    >>> json.dumps({"fn": len}, default=json_default)
    '{"fn": "<built-in function len>"}'
    """
    from pydantic_core import to_jsonable_python

    return to_jsonable_python(value, fallback=repr)


def parameter_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """Parameter name to its type hint, for the parameters of ``fn`` that have one.

    String annotations (``from __future__ import annotations``) are resolved in
    the function's module; one that cannot be resolved is left out.
    """
    try:
        return {n: h for n, h in typing.get_type_hints(fn, include_extras=True).items()
                if n != "return" and h is not Any}
    except Exception:  # one hint names something unknown: resolve the others one by one
        pass
    out: dict[str, Any] = {}
    module = sys.modules.get(getattr(fn, "__module__", "") or "")
    namespace = dict(vars(module)) if module is not None else {}
    for p in inspect.signature(fn).parameters.values():
        hint = p.annotation
        if hint is p.empty:
            continue
        if isinstance(hint, str):
            try:
                hint = eval(hint, namespace)  # noqa: S307 - the author's own annotation
            except Exception:
                continue
        if hint is not Any:
            out[p.name] = hint
    return out


def _adapter(hint: Any) -> Any:
    from pydantic import ConfigDict, TypeAdapter

    try:
        return TypeAdapter(hint, config=ConfigDict(arbitrary_types_allowed=True))
    except Exception:
        try:  # dataclasses and TypedDicts carry their own config
            return TypeAdapter(hint)
        except Exception:
            return None  # a hint pydantic cannot read: not checked


def type_name(hint: Any) -> str:
    """``int``, ``list[int]``, ``datetime.date``: how a person writes the hint."""
    if isinstance(hint, type) and not typing.get_args(hint):
        module = hint.__module__
        return hint.__qualname__ if module in ("builtins", "__main__") else f"{module}.{hint.__qualname__}"
    return repr(hint).replace("typing.", "")


def coerce_value(flow_name: str, name: str, value: Any, hint: Any, *, text: str | None = None,
                 adapter: Any = _SKIP, expected: str | None = None) -> Any:
    """``value`` checked against ``hint``: kept, converted, or refused (see the module).

    ``text`` is the value as it was typed on a command line, tried when ``value``
    (its JSON reading) does not fit, so ``-p label=123`` gives ``label: str`` ``"123"``.
    ``expected`` names the type in the error (default: :func:`type_name` of ``hint``).
    """
    from pydantic import ValidationError

    if adapter is _SKIP:
        adapter = _adapter(hint)
    if adapter is None:
        return value
    try:
        adapter.validate_python(value, strict=True)
        return value
    except ValidationError:
        pass
    except Exception:  # a validator that cannot even look at it: let the lax check say
        pass
    first: ValidationError | None = None
    for candidate in (value, text) if text is not None and text is not value else (value,):
        try:
            return adapter.validate_python(candidate)
        except ValidationError as e:
            first = first or e
        except Exception as e:  # noqa: BLE001 - a hint's own validator raised
            raise refused(flow_name, name, value, expected or type_name(hint),
                          f"{type(e).__name__}: {e}") from None
    assert first is not None
    raise refused(flow_name, name, value, expected or type_name(hint), _reason(first)) from None


def _reason(error: Any) -> str:
    errors = error.errors(include_url=False)
    if not errors:
        return str(error).splitlines()[0]
    e = errors[0]
    where = "".join(f"[{p!r}]" for p in e.get("loc", ()) if not isinstance(p, str) or p)
    more = f"; and {len(errors) - 1} more" if len(errors) > 1 else ""
    return f"{where + ': ' if where else ''}{e.get('msg', '')}{more}"


def refused(flow_name: str, name: str, value: Any, expected: str, reason: str) -> ParameterError:
    """The one-line error for a value of parameter ``name`` that is not a valid ``expected``."""
    shown = MASK if is_secret(name) else repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    reason = " ".join(reason.split())
    return ParameterError(
        f"flow {flow_name!r}: parameter {name}={shown} is not a valid {expected} ({reason})",
        flow=flow_name, parameter=name, expected=expected,
    )


_BUILTINS = (int, float, str, bool, bytes, list, dict, tuple, set)


def _fits_plainly(value: Any, hint: Any) -> bool:
    """True when ``value`` is plainly of the plain class ``hint`` (no pydantic needed).

    Most runs pass values of their hinted types; pydantic is imported only when
    a value needs a closer look.
    """
    if not isinstance(hint, type) or typing.get_args(hint):
        return False
    if hint in _BUILTINS:
        return type(value) is hint  # (bool is not an int here; a plain list takes any items)
    return isinstance(value, hint) and hint.__module__ not in ("builtins", "typing")


def coerce_parameters(flow_name: str, hints: Mapping[str, Any], given: Mapping[str, Any],
                      texts: Mapping[str, str] | None = None,
                      adapters: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every value of ``given`` checked against its hint (the others untouched).

    ``adapters`` caches one TypeAdapter per parameter across calls.
    """
    out = dict(given)
    for name, value in given.items():
        if name not in hints or _fits_plainly(value, hints[name]):
            continue
        if adapters is not None and name in adapters:
            adapter = adapters[name]
        else:
            adapter = _adapter(hints[name])
            if adapters is not None:
                adapters[name] = adapter
        out[name] = coerce_value(flow_name, name, value, hints[name],
                                 text=(texts or {}).get(name), adapter=adapter)
    return out
