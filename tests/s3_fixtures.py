"""S3 for tests: a moto server on 127.0.0.1, dummy credentials, a fresh bucket per test.

Test modules import the fixture functions (``from tests.s3_fixtures import
s3_fixture, moto_endpoint_fixture  # noqa: F401``); tests ask for them as ``s3``,
``moto_endpoint`` and ``doomed_s3``.  The dummy credentials go into the
environment when this module is imported, at collection,
so the worker processes of clusters started later inherit them; the endpoint is
not a secret and travels in ``storage_options`` (``client_kwargs.endpoint_url``).
"""
from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_EC2_METADATA_DISABLED="true",
)
for _name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
    os.environ.pop(_name, None)

BUCKET = "taskflow-tests"


def s3_options(endpoint: str, **config: Any) -> dict[str, Any]:
    """storage_options for the moto endpoint: no credentials, only where to go."""
    opts: dict[str, Any] = {"client_kwargs": {"endpoint_url": endpoint}}
    if config:
        opts["config_kwargs"] = config
    return opts


@pytest.fixture(scope="session", name="moto_endpoint")
def moto_endpoint_fixture() -> Iterator[str]:
    """A moto S3 server in this process for the whole session."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _reset(endpoint: str) -> None:
    req = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(req, timeout=10):
        pass


@pytest.fixture(name="s3")
def s3_fixture(moto_endpoint: str) -> Iterator[dict[str, Any]]:
    """A clean moto server with one empty bucket: ``{"endpoint", "bucket", "options", "fs"}``."""
    import s3fs

    _reset(moto_endpoint)
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": moto_endpoint}, skip_instance_cache=True)
    fs.mkdir(BUCKET)
    yield {"endpoint": moto_endpoint, "bucket": BUCKET, "options": s3_options(moto_endpoint),
           "fs": fs}
    with contextlib.suppress(Exception):
        _reset(moto_endpoint)


_SERVE = """
import sys
from moto.server import ThreadedMotoServer
s = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
s.start()
print(s.get_host_and_port()[1], flush=True)
sys.stdin.read()
"""


@pytest.fixture(name="doomed_s3")
def doomed_s3_fixture() -> Iterator[dict[str, Any]]:
    """A moto server in its own process (a task may kill it): ``{"endpoint", "pid"}``."""
    import s3fs

    proc = subprocess.Popen([sys.executable, "-c", _SERVE], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        endpoint = f"http://127.0.0.1:{port}"
        s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint},
                          skip_instance_cache=True).mkdir(BUCKET)
        yield {"endpoint": endpoint, "pid": proc.pid, "bucket": BUCKET}
    finally:
        proc.kill()
        proc.wait(timeout=10)
