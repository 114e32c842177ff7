"""Serializers: how a result becomes bytes and back.

A serializer is any object with ``dumps(value) -> bytes`` and
``loads(data: bytes) -> value``.  Four are built in, chosen by name:

``pickle``
    cloudpickle; any Python object.  **Loading a pickle runs code**: read pickled
    results only from a store you trust, or configure a signing key
    (``taskflow.results.signing-key``) so tampered results are refused.
``json``
    JSON text (UTF-8): dicts, lists, strings, numbers, booleans and None.
``parquet``
    a pandas DataFrame as Parquet (needs pandas and pyarrow).
``npy``
    a numpy array in ``.npy`` format, without pickled objects
    (``allow_pickle=False``), so loading it runs no code.

A custom serializer may set ``name`` (recorded in each result file; default:
its class name), ``ext`` (the file extension of checkpoints, default ``""``) and
``executes_code`` (default True: results it writes are signed like pickles when a
signing key is set).

Examples
--------
>>> s = get_serializer("json")
>>> s.loads(s.dumps({"a": [1, 2]}))
{'a': [1, 2]}
>>> get_serializer("pickle").ext
'.pkl'
"""
from __future__ import annotations

import io
import json
import pickle
import struct
from typing import Any, Protocol, runtime_checkable

import cloudpickle

__all__ = [
    "JSONSerializer",
    "NpySerializer",
    "ParquetSerializer",
    "PickleSerializer",
    "Serializer",
    "get_serializer",
    "serializer_name",
]


@runtime_checkable
class Serializer(Protocol):
    """What a serializer provides: ``dumps`` and ``loads``.

    Examples
    --------
    >>> class Upper:
    ...     name, ext, executes_code = "upper", ".txt", False
    ...     def dumps(self, value):
    ...         return value.upper().encode()
    ...     def loads(self, data):
    ...         return data.decode()
    >>> isinstance(Upper(), Serializer), get_serializer(Upper()).loads(b"HI")
    (True, 'HI')
    """

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class PickleSerializer:
    """cloudpickle: any Python object.  Loading runs code: trust the store or sign.

    Pickle protocol 5 with out-of-band buffers: the large buffers of numpy arrays
    (and so of pandas objects) and of ``bytes`` values are written as they are in
    memory, without a copy into the pickle stream.  The payload is a small table
    of part lengths, the pickle stream, then the buffers.

    Examples
    --------
    >>> s = PickleSerializer()
    >>> s.loads(s.dumps({"any": {1, 2}}))
    {'any': {1, 2}}
    """

    name = "pickle"
    ext = ".pkl"
    executes_code = True

    def dumps_parts(self, value: Any) -> list[Any]:
        """The payload as a list of buffers (written one after the other, uncopied)."""
        buffers: list[pickle.PickleBuffer] = []
        kind = _RAW_BYTES if type(value) is bytes else _PICKLED
        obj = pickle.PickleBuffer(value) if kind == _RAW_BYTES else value
        stream = cloudpickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
        parts = [memoryview(stream), *(b.raw() for b in buffers)]
        table = _TABLE_HEAD.pack(kind, len(parts)) + b"".join(
            _LENGTH.pack(p.nbytes) for p in parts
        )
        return [table, *parts]

    def dumps(self, value: Any) -> bytes:
        return b"".join(self.dumps_parts(value))

    def loads(self, data: bytes | memoryview) -> Any:
        view = memoryview(data).cast("B")
        kind, n = _TABLE_HEAD.unpack_from(view)
        offset = _TABLE_HEAD.size
        lengths = [_LENGTH.unpack_from(view, offset + i * _LENGTH.size)[0] for i in range(n)]
        offset += n * _LENGTH.size
        parts = []
        for length in lengths:
            parts.append(view[offset:offset + length])
            offset += length
        if offset != len(view):
            raise ValueError("pickle payload does not match its table of parts")
        stream, buffers = parts[0], parts[1:]
        if view.readonly:  # arrays get writable memory, as if they had never left
            buffers = [memoryview(bytearray(b)) for b in buffers]
        value = pickle.loads(stream, buffers=buffers)
        if kind == _RAW_BYTES:
            return bytes(value)
        return value

    def __repr__(self) -> str:
        return "PickleSerializer()"


class JSONSerializer:
    """JSON text: plain data only (no NaN, no custom objects).

    Examples
    --------
    >>> JSONSerializer().loads(JSONSerializer().dumps({"n": [1, 2]}))
    {'n': [1, 2]}
    """

    name = "json"
    ext = ".json"
    executes_code = False

    def dumps(self, value: Any) -> bytes:
        return json.dumps(value, allow_nan=False, separators=(",", ":")).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(bytes(data))

    def __repr__(self) -> str:
        return "JSONSerializer()"


class ParquetSerializer:
    """A pandas DataFrame as Parquet (pyarrow).

    Examples
    --------
    >>> import pandas as pd
    >>> s = ParquetSerializer()
    >>> s.loads(s.dumps(pd.DataFrame({"x": [1, 2]})))["x"].tolist()
    [1, 2]
    """

    name = "parquet"
    ext = ".parquet"
    executes_code = False

    def dumps(self, value: Any) -> bytes:
        import pandas as pd

        if not isinstance(value, pd.DataFrame):
            raise TypeError(f"parquet writes pandas DataFrames, not {type(value).__name__}")
        buf = io.BytesIO()
        value.to_parquet(buf)
        return buf.getvalue()

    def loads(self, data: bytes) -> Any:
        import pandas as pd

        return pd.read_parquet(io.BytesIO(data))

    def __repr__(self) -> str:
        return "ParquetSerializer()"


class NpySerializer:
    """A numpy array as ``.npy``; object arrays are refused (no pickles).

    Examples
    --------
    >>> import numpy as np
    >>> s = NpySerializer()
    >>> s.loads(s.dumps(np.arange(3))).tolist()
    [0, 1, 2]
    """

    name = "npy"
    ext = ".npy"
    executes_code = False

    def dumps(self, value: Any) -> bytes:
        import numpy as np

        if not isinstance(value, (np.ndarray, np.generic)):
            raise TypeError(f"npy writes numpy arrays, not {type(value).__name__}")
        buf = io.BytesIO()
        np.save(buf, value, allow_pickle=False)
        return buf.getvalue()

    def loads(self, data: bytes) -> Any:
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)

    def __repr__(self) -> str:
        return "NpySerializer()"


_PICKLED, _RAW_BYTES = 0, 1
_TABLE_HEAD = struct.Struct(">BI")  # kind, number of parts
_LENGTH = struct.Struct(">Q")

_BUILTIN: dict[str, Any] = {
    "pickle": PickleSerializer(),
    "json": JSONSerializer(),
    "parquet": ParquetSerializer(),
    "npy": NpySerializer(),
}


def get_serializer(spec: str | Any) -> Any:
    """The serializer named ``spec``, or ``spec`` itself when it has dumps/loads.

    Raises ValueError for an unknown name and TypeError for an object without
    ``dumps``/``loads``.

    Parameters
    ----------
    spec : str or object
        ``"pickle"``, ``"json"``, ``"parquet"``, ``"npy"``, or a serializer object.

    Examples
    --------
    >>> get_serializer("npy")
    NpySerializer()
    >>> get_serializer("yaml")
    Traceback (most recent call last):
    ...
    ValueError: unknown serializer 'yaml'; use one of ['json', 'npy', 'parquet', 'pickle'] or an object with dumps() and loads()
    """
    if isinstance(spec, str):
        try:
            return _BUILTIN[spec]
        except KeyError:
            raise ValueError(
                f"unknown serializer {spec!r}; use one of {sorted(_BUILTIN)} "
                "or an object with dumps() and loads()"
            ) from None
    if callable(getattr(spec, "dumps", None)) and callable(getattr(spec, "loads", None)):
        return spec
    raise TypeError(
        f"a serializer is a name ({', '.join(sorted(_BUILTIN))}) or an object with "
        f"dumps() and loads(), got {spec!r}"
    )


def serializer_name(serializer: Any) -> str:
    """The name recorded in result files: ``name`` or the class name."""
    name = getattr(serializer, "name", None)
    return name if isinstance(name, str) and name else type(serializer).__name__


def dumps_parts(serializer: Any, value: Any) -> list[Any]:
    """``value`` serialized as a list of buffers (one for serializers without ``dumps_parts``)."""
    parts = getattr(serializer, "dumps_parts", None)
    if parts is not None:
        return list(parts(value))
    return [serializer.dumps(value)]


def extension(serializer: Any) -> str:
    ext = getattr(serializer, "ext", "")
    return ext if isinstance(ext, str) else ""


def executes_code(serializer: Any) -> bool:
    """True when loading may run code (pickle, and custom serializers unless they say no)."""
    return bool(getattr(serializer, "executes_code", True))
