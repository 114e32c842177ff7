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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

import xxhash

from taskflow.results.errors import CorruptResultError, SignatureError

__all__ = ["HEADER_MAX", "FrameInfo", "frame", "read_header", "unframe"]

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


def _digest(key: bytes | None, fixed: bytes, name: bytes, parts: Sequence[Buffer]) -> bytes:
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
    fixed = bytes(view[:_FIXED.size])
    digest = bytes(view[_FIXED.size:_FIXED.size + _DIGEST])
    name = bytes(view[_FIXED.size + _DIGEST:info.header_size])
    payload = view[info.header_size:]
    if info.signed:
        if key is None:
            raise SignatureError(
                f"result {where} is signed, but no signing key is configured in this process "
                "(taskflow.results.signing-key); refusing to load it", location=where,
            )
        if not hmac.compare_digest(digest, _digest(key, fixed, name, [payload])):
            raise SignatureError(
                f"result {where} has a signature that does not match the configured signing "
                "key: it was written with another key or changed since; refusing to load it",
                location=where,
            )
    else:
        if digest != _digest(None, fixed, name, [payload]):
            raise CorruptResultError(
                f"result {where} is corrupted: its checksum does not match", location=where
            )
        if require_signature:
            raise SignatureError(
                f"result {where} is not signed, but a signing key is configured and its "
                f"serializer {info.serializer!r} runs code when loading; refusing to load it",
                location=where,
            )
    return info, payload
