"""A real PostgreSQL for the tests: WAHA_TUI_TEST_PG (an admin URL) when set, otherwise a
private throwaway cluster started from Debian's binaries on a free loopback port.

Each test that asks for it gets a fresh, empty database, dropped afterwards.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import URL, make_url

NOT_FOUND = "PostgreSQL not found: install Debian's postgresql package, as .ci/run does"


def _bin_dir() -> Path | None:
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not found:
        return None
    # The newest major version installed.
    return Path(max(found, key=lambda p: int(Path(p).parts[-3]))).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PREFIX = "waha-tui-pg-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Cluster:
    """initdb + pg_ctl in a temporary folder; as the `postgres` user when we are root
    (PostgreSQL refuses to run as root)."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.as_user: list[str] = []
        self._stop_orphans()
        self.port = _free_port()
        self.password = secrets.token_urlsafe(16)
        self.base = Path(tempfile.mkdtemp(prefix=PREFIX))
        self.data = self.base / "data"
        (self.base / "owner").write_text(str(os.getpid()))
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "running as root and there is no 'postgres' user to run PostgreSQL as"
                ) from None
            os.chown(self.base, user.pw_uid, user.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        os.chmod(self.base, 0o700)

    def _stop_orphans(self) -> None:
        """Clusters left by a test session that was killed (no teardown ran): stopped and
        removed, once the process that started them is gone."""
        for base in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
            try:
                owner = int((base / "owner").read_text())
            except (OSError, ValueError):
                continue
            if _alive(owner):
                continue
            if (base / "data" / "postmaster.pid").exists():
                as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
                pg_ctl = str(self.bin / "pg_ctl")
                subprocess.run(
                    [*as_user, pg_ctl, "stop", "-D", str(base / "data"), "-m", "immediate"],
                    capture_output=True,
                    timeout=60,
                    cwd="/",
                )
            shutil.rmtree(base, ignore_errors=True)

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            [*self.as_user, *args], capture_output=True, text=True, timeout=120, cwd=self.base
        )
        if done.returncode != 0:
            log = self.base / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {done.stderr.strip()} {tail}")

    def start(self) -> URL:
        pwfile = self.base / "pw"
        pwfile.write_text(self.password + "\n")
        if self.as_user:
            shutil.chown(pwfile, "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        pwfile.unlink()
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.base}",
                "-c max_connections=300",
                # A throwaway cluster: durability buys nothing here, speed does.
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
            ]
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "start",
            "-w",
            "-D",
            str(self.data),
            "-l",
            str(self.base / "log"),
            "-o",
            options,
        )
        return URL.create(
            "postgresql+psycopg",
            username="postgres",
            password=self.password,
            host="127.0.0.1",
            port=self.port,
            database="postgres",
        )

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


@contextmanager
def admin_server() -> Iterator[URL]:
    """The admin URL of a PostgreSQL server for the whole test session."""
    given = os.environ.get("WAHA_TUI_TEST_PG")
    if given:
        yield make_url(given).set(drivername="postgresql+psycopg")
        return
    bin_dir = _bin_dir()
    if bin_dir is None:
        raise LookupError(NOT_FOUND)
    cluster = Cluster(bin_dir)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def libpq(url: URL) -> str:
    """The same URL as psycopg (libpq) itself reads it."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def fresh_database(admin: URL) -> Iterator[URL]:
    """CREATE DATABASE t_<uuid> (from template0: nothing in it), dropped afterwards even
    if a test left connections open."""
    name = f"t_{uuid.uuid4().hex}"
    with psycopg.connect(libpq(admin), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield admin.set(database=name)
    finally:
        with psycopg.connect(libpq(admin), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
