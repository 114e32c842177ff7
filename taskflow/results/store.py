"""One result store over fsspec URLs: local disk, S3, memory, any fsspec filesystem.

A :class:`ResultStore` is a URL (``file:///data/runs``, ``s3://bucket/prefix``,
``memory://tests``), a default serializer and fsspec ``storage_options``.  It is
small and pickles without its filesystem object, so it travels inside task
specs; every worker opens the filesystem itself, with **its own credentials**
(environment, profile, instance role).  Secrets given in ``storage_options``
are used in this process only and never sent to workers (a warning says so).

Writes are atomic:

* local disk: a temporary file in the same directory, flushed (and fsynced when
  ``taskflow.results.fsync`` is on), then ``os.replace`` onto the final name.  A process
  killed mid-write leaves only a hidden temporary file, which the next write to
  the same place removes;
* S3 and other object stores: one upload (``pipe_file``); the object becomes
  visible only when it is complete.

Every file is framed (:mod:`taskflow.results.frame`): a truncated or corrupted
file, or a pickle whose signature does not match, is refused, never loaded.
Before a stored result stands in for a task run (a target, a checkpoint of the
run being resumed, a cache entry), the whole file is checked
(:meth:`ResultStore.verify`, nothing deserialized): one that fails is a cache
miss, the task runs again with a warning naming the file and why, and its new
result replaces the file.  Read result files with :meth:`ResultStore.load` (or
:func:`load_url`).

Examples
--------
>>> store = ResultStore("memory://doctest-store", serializer="json")
>>> store.write("a/b.json", {"x": 1})
'memory://doctest-store/a/b.json'
>>> store.load("a/b.json")
{'x': 1}
>>> store.exists("a/b.json"), store.exists("nope")
(True, False)
"""
from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

from taskflow import config
from taskflow.results.errors import CorruptResultError, ResultError, ResultStoreError
from taskflow.results.frame import (
    HEADER_MAX,
    FrameInfo,
    check_stream,
    frame,
    read_header,
    unframe,
)
from taskflow.results.local import remove_strays, sweep_in_background, write_local
from taskflow.results.serializers import (
    dumps_parts,
    executes_code,
    get_serializer,
    serializer_name,
)
from taskflow.secrets import is_secret

__all__ = ["Persisted", "ResultStore", "as_store", "load_url", "remove_strays", "signing_key"]




_NOT_SECRET = {"endpoint_url", "region_name", "key_prefix"}
_OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss"}


def signing_key() -> bytes | None:
    """The HMAC key from ``taskflow.results.signing-key`` in this process, if set."""
    key = config.get("results.signing-key")
    if key in (None, ""):
        return None
    return key if isinstance(key, bytes) else str(key).encode()


def _secret_paths(options: Any, prefix: str = "") -> list[str]:
    out: list[str] = []
    if isinstance(options, dict):
        for k, v in options.items():
            name = str(k).lower()
            if isinstance(v, dict):
                out.extend(_secret_paths(v, f"{prefix}{k}."))
            elif v and name not in _NOT_SECRET and is_secret(name):
                out.append(f"{prefix}{k}")
    return out


def _without(options: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in options.items():
        inner = [p[len(k) + 1:] for p in paths if p.startswith(f"{k}.")]
        if k in paths:
            continue
        out[k] = _without(v, inner) if isinstance(v, dict) and inner else v
    return out


class ResultStore:
    """Where results go: a URL, a default serializer, fsspec storage options.

    Parameters
    ----------
    url : str
        ``file:///abs/path`` (or a plain path), ``s3://bucket/prefix``,
        ``memory://name``, or any fsspec URL.
    serializer : str or object
        The default serializer (``pickle``, ``json``, ``parquet``, ``npy``, or an
        object with ``dumps``/``loads``); a task's ``serializer=`` overrides it.
    storage_options : dict, optional
        fsspec options, e.g. ``{"client_kwargs": {"endpoint_url": ...}}``.  Keep
        credentials out: workers use their own environment.  Secrets given here
        are used by this process only and dropped when the store is sent to
        workers (with a warning).
    fsync : bool, optional
        Local disk: fsync each result before renaming it into place, so it
        survives a machine crash or power loss.  Default: the config
        ``taskflow.results.fsync`` (false).  Without it, writes are still atomic
        for every reader and for a worker process killed mid-write, and a file
        torn by a machine crash is refused by its checksum (the task runs
        again).  Object stores ignore it.

    Notes
    -----
    A store without a signing key (``taskflow.results.signing-key``) must be
    trusted: loading a pickle runs code.

    Examples
    --------
    >>> store = ResultStore("memory://doc-store-class", serializer="json")
    >>> url = store.write("runs/a.json", [1, 2])
    >>> url, store.load("runs/a.json")
    ('memory://doc-store-class/runs/a.json', [1, 2])
    >>> @flow(result_store=store)  # doctest: +SKIP
    ... def etl(): ...
    """

    def __init__(
        self,
        url: str,
        serializer: str | Any = "pickle",
        storage_options: dict[str, Any] | None = None,
        *,
        fsync: bool | None = None,
    ) -> None:
        if not isinstance(url, str) or not url:
            raise TypeError(f"a result store needs a URL string, got {url!r}")
        self.url = url if url.endswith("://") else url.rstrip("/")
        self.serializer = get_serializer(serializer)
        self.storage_options = dict(storage_options or {})
        self._secrets = _secret_paths(self.storage_options)
        if self._secrets:
            warnings.warn(
                f"result store {url}: storage_options hold secrets ({', '.join(self._secrets)}). "
                "They are used in this process only and never sent to Dask workers; give "
                "workers credentials through their environment, profile or instance role.",
                UserWarning,
                stacklevel=2,
            )
        self.fsync = bool(config.get("results.fsync") if fsync is None else fsync)
        self._fs: Any = None
        self._root = ""

    def __repr__(self) -> str:
        return f"ResultStore({self.url!r}, serializer={serializer_name(self.serializer)!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ResultStore)
            and other.url == self.url
            and other.storage_options == self.storage_options
        )

    def __hash__(self) -> int:
        return hash(self.url)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fs"] = None
        state["storage_options"] = _without(self.storage_options, self._secrets)
        state["_secrets"] = []
        return state

    def __dask_tokenize__(self) -> tuple[str, str]:
        return ("taskflow.ResultStore", self.url)

    # -- the filesystem -----------------------------------------------------------
    @property
    def fs(self) -> Any:
        """The fsspec filesystem (opened on first use, in each process)."""
        if self._fs is None:
            import fsspec.core  # here: importing it costs every worker ~20 ms, used or not

            self._fs, self._root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        return self._fs

    @property
    def root(self) -> str:
        _ = self.fs
        return self._root

    @property
    def is_local(self) -> bool:
        protocol = self.fs.protocol
        protocols = (protocol,) if isinstance(protocol, str) else tuple(protocol)
        return "file" in protocols or "local" in protocols

    def path(self, relpath: str) -> str:
        """The filesystem path of ``relpath`` inside the store."""
        root = self.root.rstrip("/")
        return f"{root}/{relpath.lstrip('/')}" if root else relpath.lstrip("/")

    def location(self, relpath: str) -> str:
        """The URL of ``relpath``: what states record as ``result_location``."""
        return f"{self.url.rstrip('/')}/{relpath.lstrip('/')}" if not self.url.endswith("://") \
            else f"{self.url}{relpath.lstrip('/')}"

    # -- checking -----------------------------------------------------------------
    def check(self) -> None:
        """Fail fast, naming the URL, when the store cannot be used from here.

        Object stores: the bucket must exist and the credentials be accepted.
        Local disk: the directory is created if needed and must be writable, and
        temporary files left by writes that were killed are removed in the
        background (at most once per ``taskflow.results.temporary-max-age``;
        :func:`~taskflow.results.local.remove_strays`).
        """
        try:
            fs = self.fs
            if self.is_local:
                os.makedirs(self.root, exist_ok=True)
                if not os.access(self.root, os.W_OK):
                    raise PermissionError(f"{self.root} is not writable")
                sweep_in_background(self.root)
                return
            with contextlib.suppress(Exception):
                fs.invalidate_cache()
            protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
            if protocol in _OBJECT_STORES:
                bucket = self.root.split("/", 1)[0]
                try:
                    fs.info(bucket)
                except FileNotFoundError:
                    try:
                        fs.ls(bucket)  # some s3fs versions: info() misses an empty bucket
                    except FileNotFoundError:
                        raise ResultStoreError(
                            f"result store {self.url}: bucket {bucket!r} does not exist (or is "
                            "not visible with these credentials); create it or fix the URL",
                            url=self.url,
                        ) from None
            else:
                fs.makedirs(self.root, exist_ok=True)
        except ResultStoreError:
            raise
        except PermissionError as e:
            raise ResultStoreError(
                f"result store {self.url}: access refused ({e}); check the credentials this "
                "process and the Dask workers get from their environment",
                url=self.url,
            ) from None
        except Exception as e:
            raise ResultStoreError(
                f"result store {self.url} cannot be used: {type(e).__name__}: {e}", url=self.url
            ) from None

    # -- writing ------------------------------------------------------------------
    def write(self, relpath: str, value: Any, serializer: Any = None, *, durable: bool = True) -> str:
        """Serialize ``value`` and write it atomically at ``relpath``; return its URL."""
        ser = self.serializer if serializer is None else get_serializer(serializer)
        return self.write_payload(relpath, dumps_parts(ser, value), ser, durable=durable)

    def write_payload(
        self, relpath: str, payload: Any, serializer: Any, *, durable: bool = True
    ) -> str:
        """Frame serialized bytes (a buffer or a list of them) and write them atomically.

        Returns the result's URL.

        On local disk the data is fsynced before the rename (and the directory
        after it) unless ``durable`` is False: the write stays atomic for every
        reader, but may be lost, never torn, if the machine itself goes down.
        """
        key = signing_key() if executes_code(serializer) else None
        header, parts = frame(payload, serializer_name(serializer), written_at=time.time(), key=key)
        path = self.path(relpath)
        with self._named_errors("write", relpath):
            if self.is_local:
                write_local(path, [header, *parts], durable=durable and self.fsync)
            else:  # one upload: visible when complete
                self._write_remote(path, b"".join([header, *parts]))
        return self.location(relpath)

    @contextlib.contextmanager
    def _named_errors(self, doing: str, relpath: str) -> Iterator[None]:
        """Storage errors as a :class:`ResultStoreError` naming the store, the file and the cause.

        ``FileNotFoundError`` passes (callers say what a missing file means), and
        so do taskflow's own errors.
        """
        try:
            yield
        except (ResultError, FileNotFoundError):
            raise
        except Exception as e:
            where = self.location(relpath)
            cause = f"{type(e).__name__}: {e}"
            raise ResultStoreError(
                f"result store {self.url}: could not {doing} {where}: {cause}",
                url=self.url, location=where, cause=cause,
            ) from e

    def _write_remote(self, path: str, data: bytes) -> None:
        fs = self.fs
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        if protocol not in _OBJECT_STORES:
            parent = path.rsplit("/", 1)[0]
            with contextlib.suppress(Exception):
                fs.makedirs(parent, exist_ok=True)
        fs.pipe_file(path, data)

    # -- reading ------------------------------------------------------------------
    def exists(self, relpath: str) -> bool:
        """True when a (complete) result is at ``relpath``."""
        path = self.path(relpath)
        if self.is_local:
            return os.path.isfile(path)
        with contextlib.suppress(Exception):
            self.fs.invalidate_cache(path)
        with self._named_errors("look for", relpath):
            return bool(self.fs.isfile(path))  # a folder (a prefix on S3) is not a result

    def read_bytes(self, relpath: str) -> bytes | bytearray:
        """The whole file (local files into writable memory, so loaded arrays are writable)."""
        path = self.path(relpath)
        try:
            with self._named_errors("read", relpath):
                return self._read_bytes(path)
        except FileNotFoundError:
            raise ResultError(
                f"no result at {self.location(relpath)}", location=self.location(relpath)
            ) from None

    def _read_bytes(self, path: str) -> bytes | bytearray:
        if self.is_local:
            with open(path, "rb") as f:
                buf = bytearray(os.fstat(f.fileno()).st_size)
                got = f.readinto(buf)
            return buf if got == len(buf) else buf[:got]
        return bytes(self.fs.cat_file(path))

    def load(self, relpath: str, serializer: Any = None) -> Any:
        """Read, check and deserialize the result at ``relpath``."""
        ser = self.serializer if serializer is None else get_serializer(serializer)
        where = self.location(relpath)
        data = self.read_bytes(relpath)
        key = signing_key()
        info, payload = unframe(data, where=where, key=key,
                                require_signature=key is not None and executes_code(ser))
        name = serializer_name(ser)
        if info.serializer != name:
            raise CorruptResultError(
                f"result {where} was written with serializer {info.serializer!r}, "
                f"not {name!r}; load it with that one", location=where,
            )
        return ser.loads(payload)

    def verify(self, relpath: str, serializer: Any = None) -> str | None:
        """Why the result at ``relpath`` must not be trusted, or None when it may be.

        Reads the whole file in chunks and checks what :meth:`load` checks (its
        length, checksum or signature, its serializer) without deserializing
        anything, so no code in the file runs.  Used before a stored result
        stands in for a task run: a file that fails is a cache miss, and the
        task is computed again.

        Examples
        --------
        >>> store = ResultStore("memory://doctest-verify", serializer="json")
        >>> _ = store.write("ok.json", [1, 2])
        >>> store.verify("ok.json") is None
        True
        >>> store.fs.pipe_file(store.path("bad.json"), b"not a result")
        >>> store.verify("bad.json")
        'result memory://doctest-verify/bad.json is not a taskflow result file (bad or missing header)'
        """
        ser = self.serializer if serializer is None else get_serializer(serializer)
        where = self.location(relpath)
        key = signing_key()
        try:
            with self.fs.open(self.path(relpath), "rb") as f:
                info = check_stream(f.read, where=where, key=key,
                                    require_signature=key is not None and executes_code(ser))
        except FileNotFoundError:
            return f"result {where} is missing"
        except ResultError as e:
            return str(e)
        except OSError as e:
            return f"result {where} cannot be read: {type(e).__name__}: {e}"
        if info.serializer != serializer_name(ser):
            return (f"result {where} was written with serializer {info.serializer!r}, "
                    f"not {serializer_name(ser)!r}")
        return None

    def header(self, relpath: str) -> FrameInfo | None:
        """The header of the result at ``relpath`` (a short read), or None when absent."""
        try:
            with self._named_errors("read", relpath):
                data = self.fs.cat_file(self.path(relpath), start=0, end=HEADER_MAX)
        except FileNotFoundError:
            return None
        return read_header(data, where=self.location(relpath))

    def listdir(self, relpath: str) -> list[str]:
        """Relative paths of the files directly under ``relpath`` (empty when none)."""
        path = self.path(relpath)
        try:
            with contextlib.suppress(Exception):
                self.fs.invalidate_cache(path)
            entries = self.fs.ls(path, detail=False)
        except FileNotFoundError:
            return []
        root = self.root.rstrip("/")
        out = []
        for e in entries:
            e = self.fs._strip_protocol(e) if isinstance(e, str) else e
            rel = e[len(root):].lstrip("/") if root and e.startswith(root) else e.lstrip("/")
            if not os.path.basename(rel).startswith("."):
                out.append(rel)
        return sorted(out)

    def files_under(self, relpath: str) -> list[str]:
        """Filesystem paths of every file under the folder ``relpath`` (empty when none).

        One listing request on S3 (``find`` on the folder itself costs three when
        it is empty: a listing, then a file check of two requests).  Nothing is
        left in fsspec's listing cache.

        Examples
        --------
        >>> store = ResultStore("memory://doctest-files-under", serializer="json")
        >>> _ = store.write("d/a.json", 1), store.write("d/e/b.json", 2), store.write("dx.json", 3)
        >>> [p.rsplit("/", 2)[-2:] for p in store.files_under("d")], store.files_under("nope")
        ([['d', 'a.json'], ['e', 'b.json']], [])
        """
        path = self.path(relpath).rstrip("/")
        fs = self.fs
        parent, _, name = path.rpartition("/")
        with contextlib.suppress(Exception):
            fs.invalidate_cache(path)
        try:
            with self._named_errors("list", relpath):
                if self.is_local:
                    found = fs.find(path) if os.path.isdir(path) else []
                elif self._protocol() in ("s3", "s3a") and parent:
                    found = fs.find(parent, prefix=f"{name}/")  # only keys under path/
                else:
                    found = fs.find(path)
        except FileNotFoundError:
            found = []
        finally:
            with contextlib.suppress(Exception):
                fs.invalidate_cache(path)
        out = []
        for f in found:
            f = fs._strip_protocol(f)
            if f.startswith(f"{path}/"):
                out.append(f)
        return sorted(out)

    def _protocol(self) -> str:
        protocol = self.fs.protocol
        return protocol if isinstance(protocol, str) else protocol[0]

    def read_many(self, relpaths: Iterable[str]) -> dict[str, bytes]:
        """Several small files at once (concurrently on object stores); missing ones left out."""
        rels = list(relpaths)
        if not rels:
            return {}
        fs = self.fs
        paths = [self.path(r) for r in rels]
        back = {fs._strip_protocol(p): r for p, r in zip(paths, rels)}
        got = fs.cat(paths, on_error="omit")
        if not isinstance(got, dict):
            got = {paths[0]: got}
        return {back[fs._strip_protocol(p)]: v for p, v in got.items() if fs._strip_protocol(p) in back}

    def delete(self, relpath: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.path(relpath), recursive=True)


class Persisted:
    """A result that lives in a store: what a CACHED task's Dask key holds.

    It is small (store URL, path, serializer) so Dask moves it cheaply; the
    worker-side runner of a task that needs the value calls :meth:`load` on its
    own worker.  Nothing loads it otherwise.

    Parameters
    ----------
    store : ResultStore
        The store the result lives in.
    path : str
        Its path inside the store.
    serializer : object
        The serializer that reads it.

    Examples
    --------
    >>> store = ResultStore("memory://doc-persisted", serializer="json")
    >>> _ = store.write("t.json", {"n": 1})
    >>> ref = Persisted(store, "t.json", store.serializer)
    >>> ref, ref.load()
    (Persisted('memory://doc-persisted/t.json'), {'n': 1})
    """

    __slots__ = ("path", "serializer", "store")

    def __init__(self, store: ResultStore, path: str, serializer: Any) -> None:
        self.store = store
        self.path = path
        self.serializer = serializer

    @property
    def location(self) -> str:
        return self.store.location(self.path)

    def load(self) -> Any:
        """The value (a dataset: a lazy collection over its files, see :mod:`~taskflow.results.datasets`)."""
        load_from = getattr(self.serializer, "load_from", None)
        if load_from is not None:
            return load_from(self.store, self.path)
        return self.store.load(self.path, self.serializer)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Persisted, (self.store, self.path, self.serializer))

    def __repr__(self) -> str:
        return f"Persisted({self.location!r})"

    def __sizeof__(self) -> int:
        return 256


def as_store(value: str | ResultStore) -> ResultStore:
    """A ResultStore from a URL string (or the store itself).

    Parameters
    ----------
    value : str or ResultStore
        A URL such as ``s3://bucket/prefix``, or a store.

    Examples
    --------
    >>> as_store("memory://doc-as-store")
    ResultStore('memory://doc-as-store', serializer='pickle')
    """
    if isinstance(value, ResultStore):
        return value
    if isinstance(value, str):
        return ResultStore(value)
    raise TypeError(f"result_store must be a URL string or a ResultStore, got {value!r}")


def load_url(url: str, serializer: Any = "pickle", storage_options: dict[str, Any] | None = None) -> Any:
    """Load one result file by its URL (a ``result_location``), checking its frame.

    Parameters
    ----------
    url : str
        The file's URL, e.g. a task state's ``result_location``.
    serializer : str or object
        The serializer it was written with (default ``pickle``).
    storage_options : dict, optional
        fsspec options for the URL's filesystem.

    Examples
    --------
    >>> url = ResultStore("memory://doc-load-url", serializer="json").write("a.json", [1])
    >>> load_url(url, serializer="json")
    [1]
    """
    parent, _, name = url.rstrip("/").rpartition("/")
    return ResultStore(parent, serializer, storage_options).load(name)
