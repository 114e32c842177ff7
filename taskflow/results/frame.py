"""The frame around every result file: a small header, then the serializer's bytes.

A result file is::

    magic "TFR1" | version | flags | name length | payload length | written at | digest | name | payload

(big-endian; 56 bytes plus the serializer's name).  The digest covers the header
fields, the name and the payload:

* unsigned: an XXH3-128 checksum (integrity: a truncated or corrupted file is
  refused; at ~20 GB/s it costs little next to the write itself);
* signed (a signing key is configured and the serializer may run code when
  loading, like pickle): an HMAC-SHA256 with the key, so a result written by
  someone without the key is refused before it is unpickled.

Pure functions, no I/O.

Examples
--------
>>> header, parts = frame(b"payload", "json", written_at=1.0)
>>> data = b"".join([header, *parts])
>>> info, payload = unframe(data, where="x")
>>> bytes(payload), info.serializer, info.written_at
(b'payload', 'json', 1.0)
>>> unframe(data[:-1], where="x")
Traceback (most recent call last):
...
taskflow.results.errors.CorruptResultError: result x is truncated: 66 bytes, expected 67
"""
from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Union

import xxhash

from taskflow.results.errors import CorruptResultError, SignatureError

__all__ = ["HEADER_MAX", "FrameInfo", "check_stream", "frame", "read_header", "unframe"]

MAGIC = b"TFR1"
VERSION = 2  # version 1 (CRC-32 checksums, taskflow 0.1 pre-releases) is no longer read
SIGNED = 1
_FIXED = struct.Struct(">4sBBHQd")  # magic, version, flags, name length, payload length, written at
_DIGEST = 32
HEADER_MAX = _FIXED.size + _DIGEST + 0xFFFF
Buffer = Union[bytes, bytearray, memoryview]


@dataclass(frozen=True)
class FrameInfo:
    """What a result file's header says."""

    serializer: str
    written_at: float
    length: int
    signed: bool
    header_size: int
    version: int = VERSION


def _digest(key: bytes | None, fixed: bytes, name: bytes, parts: Iterable[Buffer]) -> bytes:
    if key is not None:
        mac = hmac.new(key, fixed, hashlib.sha256)
        mac.update(name)
        for part in parts:
            mac.update(part)
        return mac.digest()
    check = xxhash.xxh3_128(fixed)
    check.update(name)
    for part in parts:
        check.update(part)
    return check.digest().ljust(_DIGEST, b"\0")


def frame(
    payload: Buffer | Sequence[Buffer], serializer: str, *, written_at: float,
    key: bytes | None = None,
) -> tuple[bytes, list[memoryview]]:
    """``(header, parts)``: write the header, then the payload's parts, in order.

    ``payload`` is one buffer or a list of them (written one after the other).
    With ``key``, the header carries an HMAC instead of a checksum.
    """
    raw = [payload] if isinstance(payload, (bytes, bytearray, memoryview)) else list(payload)
    parts = [memoryview(p).cast("B") for p in raw]
    name = serializer.encode()
    fixed = _FIXED.pack(MAGIC, VERSION, SIGNED if key is not None else 0, len(name),
                        sum(p.nbytes for p in parts), written_at)
    return fixed + _digest(key, fixed, name, parts) + name, parts


def read_header(data: Buffer, *, where: str) -> FrameInfo:
    """Parse the header at the start of ``data`` (which may hold only the header)."""
    if len(data) < _FIXED.size + _DIGEST or bytes(data[:4]) != MAGIC:
        raise CorruptResultError(
            f"result {where} is not a taskflow result file (bad or missing header)", location=where
        )
    _, version, flags, name_len, length, written_at = _FIXED.unpack_from(data)
    if version != VERSION:
        raise CorruptResultError(
            f"result {where} has format version {version}; this taskflow reads version "
            f"{VERSION} (another taskflow wrote it: read it with that one, or run its task again)",
            location=where,
        )
    start = _FIXED.size + _DIGEST
    if len(data) < start + name_len:
        raise CorruptResultError(f"result {where} is truncated inside its header", location=where)
    name = bytes(data[start:start + name_len]).decode(errors="replace")
    return FrameInfo(name, written_at, length, bool(flags & SIGNED), start + name_len, version)


def unframe(
    data: Buffer,
    *,
    where: str,
    key: bytes | None = None,
    require_signature: bool = False,
) -> tuple[FrameInfo, memoryview]:
    """Check a whole result file and return its header and payload (no copy).

    Raises :class:`CorruptResultError` when it is truncated or its checksum does
    not match, and :class:`SignatureError` when it is signed and ``key`` is
    missing or different, or when ``require_signature`` and it is not signed.
    """
    view = memoryview(data)
    info = read_header(view, where=where)
    expected = info.header_size + info.length
    if len(view) != expected:
        what = "truncated" if len(view) < expected else "longer than its header says"
        raise CorruptResultError(
            f"result {where} is {what}: {len(view)} bytes, expected {expected}", location=where
        )
    payload = view[info.header_size:]
    header = bytes(view[:info.header_size])
    _compare(info, header, _digest_of(info, header, [payload], where=where, key=key),
             where=where, key=key, require_signature=require_signature)
    return info, payload


def check_stream(
    read: Callable[[int], bytes],
    *,
    where: str,
    key: bytes | None = None,
    require_signature: bool = False,
    chunk: int = 16 * 2**20,
) -> FrameInfo:
    """Check a whole result file read from ``read(n)`` (a file's ``read``), in chunks.

    The same checks as :func:`unframe` (length, checksum or signature), holding
    at most ``chunk`` bytes: nothing is deserialized, so no code in the file runs.

    Examples
    --------
    >>> import io
    >>> header, parts = frame(b"payload", "json", written_at=1.0)
    >>> check_stream(io.BytesIO(b"".join([header, *parts])).read, where="x").length
    7
    >>> check_stream(io.BytesIO(header + b"pay").read, where="x")
    Traceback (most recent call last):
    ...
    taskflow.results.errors.CorruptResultError: result x is truncated: 63 bytes, expected 67
    """
    head = read(HEADER_MAX)
    info = read_header(head, where=where)
    header = bytes(head[:info.header_size])
    size = [0]

    def parts() -> Iterator[bytes]:
        data = head[info.header_size:]
        while data:
            size[0] += len(data)
            yield data
            data = read(chunk)

    computed = _digest_of(info, header, parts(), where=where, key=key)
    if size[0] != info.length:
        what = "truncated" if size[0] < info.length else "longer than its header says"
        raise CorruptResultError(
            f"result {where} is {what}: {info.header_size + size[0]} bytes, "
            f"expected {info.header_size + info.length}", location=where,
        )
    _compare(info, header, computed, where=where, key=key, require_signature=require_signature)
    return info


def _digest_of(info: FrameInfo, header: bytes, parts: Iterable[Buffer], *, where: str,
               key: bytes | None) -> bytes:
    """The digest of a file with this header and payload (HMAC when it says it is signed)."""
    if info.signed and key is None:
        raise SignatureError(
            f"result {where} is signed, but no signing key is configured in this process "
            "(taskflow.results.signing-key); refusing to load it", location=where,
        )
    fixed, name = header[:_FIXED.size], header[_FIXED.size + _DIGEST:info.header_size]
    return _digest(key if info.signed else None, fixed, name, parts)


def _compare(info: FrameInfo, header: bytes, computed: bytes, *, where: str,
             key: bytes | None, require_signature: bool) -> None:
    digest = header[_FIXED.size:_FIXED.size + _DIGEST]
    if info.signed:
        if not hmac.compare_digest(digest, computed):
            raise SignatureError(
                f"result {where} has a signature that does not match the configured signing "
                "key: it was written with another key or changed since; refusing to load it",
                location=where,
            )
        return
    if digest != computed:
        raise CorruptResultError(
            f"result {where} is corrupted: its checksum does not match", location=where
        )
    if require_signature:
        raise SignatureError(
            f"result {where} is not signed, but a signing key is configured and its "
            f"serializer {info.serializer!r} runs code when loading; refusing to load it",
            location=where,
        )
