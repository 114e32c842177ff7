"""Parameter values checked against recorded JSON schemas, away from the flow's code.

A ``taskflow serve`` process records, for each parameter of the flow it serves,
the JSON schema pydantic makes of its type hint (:func:`parameter_schema`).  A
process that cannot import the flow (``taskflow server``) checks a run's values
against those schemas with :func:`check_with_schemas`, and the check is the
in-process one of :mod:`taskflow.parameters`, not a second one:

* the schema is read back into the Python type it describes (:func:`schema_type`:
  ``{"type": "integer"}`` -> ``int``, ``{"format": "date", ...}`` -> ``date``,
  ``anyOf`` -> a union, an enum -> an Enum or a ``Literal``, an object with
  properties -> a model), and :func:`taskflow.parameters.coerce_value` checks
  the value against it with pydantic: the same conversions (``"3"`` -> ``3``,
  ``"2026-11-01"`` -> a date, text read as JSON when that fits) and the same
  one-line :class:`~taskflow.exceptions.ParameterError`;
* what comes out is made JSON-ready (a date as ``"2026-11-01"``) and checked
  against the whole schema by ``jsonschema``, so a keyword the reading above
  does not carry over is still enforced rather than let through;
* a parameter without a schema (no hint, a hint pydantic cannot describe, or a
  history row written before schemas were recorded) takes anything: the serve
  process checks it again against the real hint when the run starts.

Examples
--------
>>> sig = [{"name": "n", "type": "int", "schema": {"type": "integer"}, "required": True},
...        {"name": "day", "type": "datetime.date", "default": "2026-01-01",
...         "schema": parameter_schema(__import__("datetime").date)}]
>>> check_with_schemas("etl", sig, {"n": "3", "day": "2026-11-01"})
{'n': 3, 'day': '2026-11-01'}
>>> check_with_schemas("etl", sig, {"n": "abc"})
Traceback (most recent call last):
...
taskflow.exceptions.ParameterError: flow 'etl': parameter n='abc' is not a valid int (Input should be a valid integer, unable to parse string as an integer)
>>> schema_label({"anyOf": [{"items": {"type": "integer"}, "type": "array"}, {"type": "null"}]})
'list[int] | None'
"""
from __future__ import annotations

import enum
import functools
import json
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from taskflow.exceptions import ParameterError
from taskflow.parameters import coerce_value, refused
from taskflow.secrets import MASK, is_secret

__all__ = ["accepts_none", "check_with_schemas", "parameter_schema", "schema_label",
           "schema_type"]

_FORMATS: dict[str, tuple[str, str]] = {  # JSON schema string format -> (module, name)
    "date": ("datetime", "date"), "date-time": ("datetime", "datetime"),
    "time": ("datetime", "time"), "duration": ("datetime", "timedelta"),
    "uuid": ("uuid", "UUID"), "binary": ("builtins", "bytes"), "path": ("pathlib", "Path"),
}
_PLAIN = {"integer": "int", "number": "float", "string": "str", "boolean": "bool",
          "null": "None"}
_BOUNDS = {"minimum": "ge", "maximum": "le", "exclusiveMinimum": "gt", "exclusiveMaximum": "lt",
           "multipleOf": "multiple_of", "minLength": "min_length", "maxLength": "max_length",
           "pattern": "pattern", "minItems": "min_length", "maxItems": "max_length"}


def parameter_schema(hint: Any) -> dict[str, Any] | None:
    """The JSON schema pydantic makes of ``hint`` (None: it makes none, so "any").

    Examples
    --------
    >>> parameter_schema(list[int])
    {'items': {'type': 'integer'}, 'type': 'array'}
    >>> parameter_schema(object) is None
    True
    """
    from pydantic import TypeAdapter

    try:
        schema = TypeAdapter(hint).json_schema(mode="validation")
        json.dumps(schema)
    except Exception:  # arbitrary classes, callables...: nothing a form or a JSON body can fit
        return None
    return schema or None


# -- the schema read back as a type ------------------------------------------------------
def schema_type(schema: Mapping[str, Any] | bool | None) -> Any:
    """The Python type (for pydantic) that ``schema`` describes; ``Any`` where unsure.

    Examples
    --------
    >>> schema_type({"anyOf": [{"type": "integer"}, {"type": "null"}]})
    typing.Optional[int]
    >>> schema_type({"enum": ["a", "b"], "type": "string"})
    typing.Literal['a', 'b']
    """
    if not isinstance(schema, Mapping):
        return Any
    return _Reader(schema.get("$defs") or {}).read(schema)


class _Reader:
    """Reads one schema (and the ``$defs`` its ``$ref`` point at) into a type."""

    def __init__(self, defs: Mapping[str, Any]) -> None:
        self.defs = defs
        self.done: dict[str, Any] = {}

    def read(self, s: Any) -> Any:
        if not isinstance(s, Mapping):
            return Any
        try:
            return self._read(s)
        except Exception:  # a schema this reading does not know: jsonschema alone checks it
            return Any

    def _read(self, s: Mapping[str, Any]) -> Any:
        if "$ref" in s:
            name = str(s["$ref"]).rpartition("/")[2]
            if name not in self.done:
                self.done[name] = Any  # a recursive type is read once, then taken as any
                self.done[name] = self.read(self.defs.get(name, {}))
            return self.done[name]
        if "enum" in s:
            return _enum(s)
        if "const" in s:
            return typing.Literal[s["const"]]
        for key in ("anyOf", "oneOf"):
            if key in s:
                return typing.Union[tuple(self.read(x) for x in s[key])]  # noqa: UP007
        if "allOf" in s:
            return self.read(s["allOf"][0]) if len(s["allOf"]) == 1 else Any
        kind = s.get("type")
        if isinstance(kind, list):
            return typing.Union[tuple(self._read({**s, "type": k}) for k in kind)]  # noqa: UP007
        if kind == "array":
            return self._array(s)
        if kind == "object":
            return self._object(s)
        if kind == "string" and s.get("format") in _FORMATS:
            module, name = _FORMATS[s["format"]]
            return getattr(__import__(module), name)
        base = {"integer": int, "number": float, "string": str, "boolean": bool,
                "null": type(None)}.get(kind)  # type: ignore[arg-type]
        return Any if base is None else _bounded(base, s)

    def _array(self, s: Mapping[str, Any]) -> Any:
        if "prefixItems" in s:
            return tuple[tuple(self.read(x) for x in s["prefixItems"])]  # type: ignore[misc]
        item = self.read(s["items"]) if "items" in s else Any
        outer: Any = frozenset if s.get("uniqueItems") else list
        return _bounded(outer[item], s)

    def _object(self, s: Mapping[str, Any]) -> Any:
        props = s.get("properties")
        if not props:
            extra = s.get("additionalProperties")
            value = self.read(extra) if isinstance(extra, Mapping) else Any
            return dict[str, value]  # type: ignore[valid-type]
        from pydantic import create_model

        required = set(s.get("required") or ())
        fields = {name: (self.read(p), ... if name in required else p.get("default"))
                  for name, p in props.items()}
        return create_model(str(s.get("title") or "Value"), **fields)  # type: ignore[call-overload]


def _enum(s: Mapping[str, Any]) -> Any:
    values = list(s["enum"])
    if not s.get("title"):  # a Literal[...] hint
        return typing.Literal[tuple(values)]
    base: Any = {"integer": int, "string": str}.get(s.get("type"))  # type: ignore[arg-type]
    members = {f"v{i}": v for i, v in enumerate(values)}
    return enum.Enum(str(s["title"]), members, type=base) if base else enum.Enum(str(s["title"]), members)


def _bounded(base: Any, s: Mapping[str, Any]) -> Any:
    bounds = {arg: s[key] for key, arg in _BOUNDS.items() if key in s}
    if not bounds:
        return base
    from pydantic import Field

    return typing.Annotated[base, Field(**bounds)]


# -- the schema as a person reads it -----------------------------------------------------
def schema_label(schema: Mapping[str, Any] | None, defs: Mapping[str, Any] | None = None) -> str:
    """A short type name for ``schema``: ``int``, ``list[date]``, ``'a' | 'b'``, ``any``.

    Examples
    --------
    >>> schema_label({"enum": ["red", "green"], "title": "Color", "type": "string"})
    "Color ('red' | 'green')"
    """
    if not isinstance(schema, Mapping) or not schema:
        return "any"
    defs = schema.get("$defs", defs) or {}
    s = schema
    if "$ref" in s:
        return schema_label(defs.get(str(s["$ref"]).rpartition("/")[2]), defs)
    if "enum" in s or "const" in s:
        choices = " | ".join(repr(v) for v in s.get("enum", [s.get("const")]))
        return f"{s['title']} ({choices})" if s.get("title") else choices
    for key in ("anyOf", "oneOf"):
        if key in s:
            return " | ".join(schema_label(x, defs) for x in s[key])
    kind = s.get("type")
    if isinstance(kind, list):
        return " | ".join(schema_label({**s, "type": k}, defs) for k in kind)
    if kind == "string" and s.get("format") in _FORMATS:
        return _FORMATS[s["format"]][1]
    if kind == "array":
        if "prefixItems" in s:
            return f"tuple[{', '.join(schema_label(x, defs) for x in s['prefixItems'])}]"
        outer = "set" if s.get("uniqueItems") else "list"
        return f"{outer}[{schema_label(s['items'], defs)}]" if "items" in s else outer
    if kind == "object":
        if s.get("properties"):
            return str(s.get("title") or "object")
        extra = s.get("additionalProperties")
        return f"dict[str, {schema_label(extra, defs)}]" if isinstance(extra, Mapping) else "dict"
    return _PLAIN.get(kind, "any")  # type: ignore[arg-type]


def accepts_none(schema: Mapping[str, Any] | None) -> bool:
    """Whether ``null`` fits ``schema`` (an ``Optional`` parameter); a missing schema: yes."""
    if not isinstance(schema, Mapping) or not schema:
        return True
    kinds = schema.get("type")
    return (kinds == "null" or (isinstance(kinds, list) and "null" in kinds)
            or any(accepts_none(x) for x in schema.get("anyOf", schema.get("oneOf", [])) if x))


# -- the check -----------------------------------------------------------------------------
@functools.lru_cache(maxsize=256)
def _compiled(schema_json: str) -> tuple[Any, Any, Any]:
    """(type, pydantic TypeAdapter, jsonschema validator) for a schema given as JSON text."""
    from pydantic import TypeAdapter

    schema = json.loads(schema_json)
    hint = schema_type(schema)
    try:
        adapter = TypeAdapter(hint)
    except Exception:  # a type pydantic refuses after all: the schema alone checks
        hint, adapter = Any, TypeAdapter(Any)
    try:
        import jsonschema

        cls = jsonschema.validators.validator_for(schema)
        validator = cls(schema)  # formats were checked by pydantic (jsonschema's need extras)
    except Exception:  # jsonschema missing, or a schema it cannot read
        validator = None
    return hint, adapter, validator


def _listing(signature: Sequence[Mapping[str, Any]]) -> str:
    def one(p: Mapping[str, Any]) -> str:
        if p.get("required"):
            return str(p["name"])
        return f"{p['name']}={MASK if is_secret(p['name']) else repr(p.get('default'))}"

    return ", ".join(one(p) for p in signature) or "none"


def check_with_schemas(flow_name: str, signature: Sequence[Mapping[str, Any]],
                       given: Mapping[str, Any], *, texts: Mapping[str, str] | None = None,
                       require: bool = True) -> dict[str, Any]:
    """The values of ``given`` checked against the schemas ``signature`` recorded, JSON-ready.

    ``signature`` holds one dict per parameter (``name``, ``type``: the hint as
    written, ``schema``, ``default``, ``required``), as a serve process records
    it.  ``texts`` holds values as a person typed them (a form field), tried when
    ``given``'s JSON reading does not fit.  With ``require``, a required
    parameter missing from ``given`` is refused too.

    Raises
    ------
    ParameterError
        Worded as the in-process check words it: an unknown name, a missing
        value, or a value that does not fit (``parameter`` names it).
    """
    params = {str(p["name"]): p for p in signature}
    unknown = [n for n in given if n not in params]
    if unknown:
        raise ParameterError(
            f"flow {flow_name!r} has no parameter{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))}; its parameters are: {_listing(signature)}",
            flow=flow_name, unknown=unknown, parameter=unknown[0])
    out: dict[str, Any] = {}
    for name, value in given.items():
        schema = params[name].get("schema")
        if not isinstance(schema, Mapping) or not schema:
            out[name] = value  # no schema recorded: any value (the serve process checks it)
            continue
        hint, adapter, validator = _compiled(json.dumps(schema, sort_keys=True))
        expected = str(params[name].get("type") or schema_label(schema))
        text = (texts or {}).get(name)
        checked = coerce_value(flow_name, name, value, hint, text=text, adapter=adapter,
                               expected=expected)
        plain = adapter.dump_python(checked, mode="json")
        if validator is not None:
            error = _first_error(validator, plain)
            if error is not None:
                raise refused(flow_name, name, value, expected, error)
        out[name] = plain
    missing = [n for n, p in params.items() if p.get("required") and n not in given]
    if require and missing:
        raise ParameterError(
            f"flow {flow_name!r} needs a value for parameter{'s' if len(missing) > 1 else ''} "
            f"{', '.join(map(repr, missing))}; its parameters are: {_listing(signature)}",
            flow=flow_name, missing=missing, parameter=missing[0])
    return out


def _first_error(validator: Any, value: Any) -> str | None:
    import jsonschema

    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return None
    where = "".join(f"[{p!r}]" for p in error.absolute_path)
    return f"{where + ': ' if where else ''}{error.message}"
