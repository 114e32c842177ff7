"""Local disk for the result store: atomic writes, and the temporary files killed writes leave.

A write goes to a hidden temporary file in the target's directory
(``.<name>.taskflow-tmp-<pid>-<random>@<host>``), flushed (and fsynced when
asked), then ``os.replace``-d onto the final name, so a reader sees the old
file or the new one, never a torn one.  A process killed mid-write leaves only
the temporary file.  Such files are removed by the next write to the same
place, and by the next run that uses the store (:func:`remove_strays`, started
in the background by :meth:`ResultStore.check`): those whose writer ran on this
host and is gone, and those last written to longer ago than
``taskflow.results.temporary-max-age`` (default 1 hour).
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable

import dask

from taskflow import config

__all__ = ["remove_strays", "write_local"]

logger = logging.getLogger("taskflow.results")

TMP = ".taskflow-tmp-"
_CHUNK = 64 * 2**20

_HOST = socket.gethostname().replace("@", "_")


def write_local(path: str, parts: Iterable[bytes | memoryview], durable: bool = True) -> None:
    """Write ``parts`` to ``path`` atomically: temp file in the same dir, fsync, rename."""
    directory, base = os.path.split(path)
    os.makedirs(directory or ".", exist_ok=True)
    _clean_strays(directory or ".", base)
    tmp = os.path.join(directory, f".{base}{TMP}{os.getpid()}-{uuid.uuid4().hex[:8]}@{_HOST}")
    try:
        with open(tmp, "xb") as f:
            for part in parts:
                view = memoryview(part)
                for start in range(0, len(view), _CHUNK):
                    f.write(view[start:start + _CHUNK])
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        _fsync_dir(directory or ".")


def _fsync_dir(directory: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _clean_strays(directory: str, base: str) -> None:
    """Remove temporary files left at ``base`` by writers that died."""
    prefix = f".{base}{TMP}"
    try:
        entries = [e for e in os.scandir(directory) if e.name.startswith(prefix)]
    except FileNotFoundError:
        return
    now = time.time()
    for entry in entries:
        if _is_stray(entry.name[len(prefix):], entry, now):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def _stray_age() -> float:
    return float(dask.utils.parse_timedelta(config.get("results.temporary-max-age", "1h")))


def _is_stray(tail: str, entry: os.DirEntry[str], now: float) -> bool:
    """Was this temporary file left by a writer that is gone?

    Yes when its writer ran on this host and is no longer alive, or when it was
    last written to longer ago than ``taskflow.results.temporary-max-age`` (a
    writer on another host, or a process id taken again since).
    """
    pid_part, _, host = tail.rpartition("@")
    try:
        pid = int(pid_part.split("-", 1)[0])
    except ValueError:
        return False
    if host == _HOST and not _alive(pid):
        return True
    try:
        return now - entry.stat().st_mtime > _stray_age()
    except OSError:
        return False


def remove_strays(root: str) -> list[str]:
    """Remove the temporary files under ``root`` left by writes that were killed.

    Returns the paths removed.  Files being written by a live process (recent,
    or of a writer alive on this host) are left alone.

    Examples
    --------
    >>> remove_strays("/data/runs")  # doctest: +SKIP
    ['/data/runs/etl/.total.pkl.taskflow-tmp-4242-1a2b3c4d@host1']
    """
    removed: list[str] = []
    now = time.time()
    todo = [root]
    while todo:
        try:
            entries = list(os.scandir(todo.pop()))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                todo.append(entry.path)
            elif entry.name.startswith(".") and TMP in entry.name and \
                    _is_stray(entry.name.split(TMP, 1)[1], entry, now):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(entry.path)
    return removed


_swept: dict[str, float] = {}
_swept_lock = threading.Lock()


def sweep_in_background(root: str) -> None:
    """:func:`remove_strays` in a daemon thread, at most once per ``temporary-max-age``.

    Once per process and local store, then again when a long-lived process
    (``taskflow serve``) uses the store after that much time.
    """
    now = time.monotonic()
    with _swept_lock:
        if now - _swept.get(root, -float("inf")) < _stray_age():
            return
        _swept[root] = now

    def sweep() -> None:
        try:
            removed = remove_strays(root)
        except Exception as e:  # a sweep never fails a run
            logger.debug("result store %s: sweeping temporary files failed: %r", root, e)
            return
        if removed:
            logger.info("result store %s: removed %d temporary file(s) left by killed writes",
                        root, len(removed))

    threading.Thread(target=sweep, name="taskflow-store-sweep", daemon=True).start()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
