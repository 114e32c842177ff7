"""A real PostgreSQL server for the history tests, started once per test session.

The server runs as the ``postgres`` user (PostgreSQL refuses root) from a fresh
data directory, on 127.0.0.1 and a free port, with its socket in that
directory; it is stopped and removed at the end of the session.  PostgreSQL is
installed with apt when missing and this process is root; the tests using it
are skipped, with the reason, only when it cannot be installed.

Each test gets a database of its own (:func:`postgres_url`).
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid

import pytest


def _bin_dir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


def _install() -> str:
    """Try apt; return '' on success, else why not."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "PostgreSQL is not installed and this is not a root Debian machine to apt-get it on"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"]):
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"`{' '.join(cmd)}` failed: {e}"
        if proc.returncode != 0:
            return f"`{' '.join(cmd)}` failed: {proc.stderr.strip()[-300:]}"
    return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server():
    """``postgresql://postgres@127.0.0.1:PORT`` of a server running for the session."""
    pytest.importorskip("psycopg", reason="psycopg 3 is needed for PostgreSQL (pip install "
                        "'psycopg[binary]')")
    bindir = _bin_dir()
    if bindir is None:
        why = _install()
        bindir = _bin_dir()
        if bindir is None:
            pytest.skip(f"no PostgreSQL server to test against: {why or 'initdb not found'}")
    root = os.geteuid() == 0
    as_pg = ["runuser", "-u", "postgres", "--"] if root else []
    data = tempfile.mkdtemp(prefix="taskflow-pg-")
    if root:
        shutil.chown(data, "postgres", "postgres")
    port = _free_port()
    pg_ctl = [*as_pg, os.path.join(bindir, "pg_ctl"), "-D", data]
    try:
        subprocess.run([*as_pg, os.path.join(bindir, "initdb"), "-D", data, "-U", "postgres",
                        "-A", "trust", "-E", "UTF8"], check=True, capture_output=True, timeout=120)
        subprocess.run([*pg_ctl, "-o", f"-k {data} -h 127.0.0.1 -p {port}", "-l",
                        os.path.join(data, "server.log"), "-w", "-t", "60", "start"],
                       check=True, capture_output=True, timeout=90)
    except subprocess.CalledProcessError as e:
        shutil.rmtree(data, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {e.stderr.decode(errors='replace')[-500:]}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "-w", "-t", "30", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty database on the session's server; dropped after the test."""
    import psycopg

    name = f"taskflow_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{postgres_server}/{name}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
