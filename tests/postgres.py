"""A throwaway PostgreSQL server for the tests: a real server, so that what a search does to a
shared database (several drivers writing at once, connections from other processes) is tested
against the database a cluster would use, not SQLite.

The server is started once per test session from Debian's binaries (`sh
tests/install_postgres.sh` installs them), listens only on 127.0.0.1 at a free port with its
socket in its own temporary folder, trusts every local connection, and is stopped and deleted
at the end. initdb refuses to run as root, so as root the server runs as the `postgres` system
user the package creates. Every test gets its own database, so no test sees another's studies.

Missing binaries FAIL the tests that need them (a skipped database test would pass CI
without testing anything).
"""
from __future__ import annotations

import glob
import itertools
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

INSTALL = "sh tests/install_postgres.sh"


def server_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl: Debian's newest version, else the PATH's."""
    def version(folder: str) -> tuple:
        name = Path(folder).parent.name
        return tuple(int(p) for p in name.split(".") if p.isdigit())

    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if all(os.access(Path(folder) / tool, os.X_OK) for tool in ("initdb", "pg_ctl")):
            return Path(folder)
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    return Path(initdb).parent if initdb and pg_ctl else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, bin_dir: Path):
        self.bin = bin_dir
        self.user = None
        if os.geteuid() == 0:  # initdb and postgres refuse root
            try:
                self.user = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail("running as root, the test server needs the `postgres` system "
                            f"user: run `{INSTALL}`", pytrace=False)
        self.root = Path(tempfile.mkdtemp(prefix="hpo_prune_pg_"))
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self.databases = itertools.count(1)

    def _run(self, *cmd: str) -> subprocess.CompletedProcess:
        argv = [str(self.bin / cmd[0]), *cmd[1:]]
        if self.user is not None:
            argv = ["runuser", "-u", "postgres", "--", *argv] if shutil.which("runuser") else \
                ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(argv)]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        init = self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                         "-E", "UTF8", "--no-sync")
        if init.returncode:
            pytest.fail(f"initdb failed: {init.stderr.strip()[-2000:]}", pytrace=False)
        for _ in range(3):  # another process may take the free port before the server does
            self.port = free_port()
            options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
                       "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
            started = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w",
                                "-t", "60", "-o", options, "start")
            if started.returncode == 0:
                return
        log = self.log.read_text()[-2000:] if self.log.exists() else started.stderr
        pytest.fail(f"the test PostgreSQL server did not start: {log}", pytrace=False)

    def stop(self) -> None:
        if self.port:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A new, empty database; its URL."""
        import psycopg2

        name = f"test_{next(self.databases)}"
        conn = psycopg2.connect(self.url())
        try:
            conn.autocommit = True  # CREATE DATABASE runs outside a transaction
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE {name}")
        finally:
            conn.close()
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_server():
    bin_dir = server_binaries()
    if bin_dir is None:
        pytest.fail(f"the PostgreSQL server binaries (initdb, pg_ctl) are missing: run "
                    f"`{INSTALL}`", pytrace=False)
    server = Server(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """postgresql://postgres@127.0.0.1:PORT/DB: a database of its own for this test."""
    return postgres_server.new_database()
