from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from pg_helpers import admin_server, fresh_database
from sqlalchemy.engine import URL

from tests.tui_helpers import Rig, make_rig
from waha_tui import logs
from waha_tui.simulator import SimState, Simulator, SimulatorServer
from waha_tui.store import Store
from waha_tui.waha import WahaClient


@pytest.fixture(scope="session", autouse=True)
def _state_dir() -> Iterator[Path]:
    """The user's state directory, where the dashboard logs: a throwaway one for the whole
    session (and every process it starts), never the home of whoever runs the tests."""
    old = os.environ.get("XDG_STATE_HOME")
    with tempfile.TemporaryDirectory(prefix="waha-tui-state-") as folder:
        os.environ["XDG_STATE_HOME"] = folder
        os.environ.pop("WAHA_TUI_LOG_FILE", None)
        os.environ.pop("WAHA_TUI_LOG_LEVEL", None)
        yield Path(folder)
    if old is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = old


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """A command run in-process (CliRunner) configures logging: undone after each test, so
    no handler outlives the stream it writes to and no level leaks into another test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in logs.QUIET}
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)
    logging.captureWarnings(False)


@pytest.fixture
def sim_server() -> Iterator[SimulatorServer]:
    """The simulator on a real loopback socket."""
    with SimulatorServer(Simulator(SimState(start_delay=0.05))) as server:
        yield server


@pytest.fixture
def state(sim_server: SimulatorServer) -> SimState:
    """The simulator's state, for faults and what it was sent."""
    return sim_server.state


@pytest.fixture
async def client(sim_server: SimulatorServer) -> AsyncIterator[WahaClient]:
    """A WahaClient of the test's simulator (a module's shared one, where the module
    overrides sim_server)."""
    c = WahaClient(sim_server.url)
    yield c
    await c.aclose()


@pytest.fixture
def sim() -> Simulator:
    return Simulator(SimState(start_delay=0.05))


@pytest.fixture
async def asgi_client(sim: Simulator) -> AsyncIterator[WahaClient]:
    """A client talking to the simulator app in-process through httpx's ASGI transport."""
    client = WahaClient("http://waha.test", transport=httpx.ASGITransport(app=sim))
    yield client
    await client.aclose()


# -- the two database backends ------------------------------------------------------------

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[URL | str]:
    """One PostgreSQL server for the session (see pg_helpers); its absence is a failure of
    every test that needs it, never a skip. Yields the reason instead of a URL then."""
    try:
        with admin_server() as url:
            yield url
    except LookupError as exc:
        yield str(exc)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def db_target(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """What `Store(...)`, `--db` and WAHA_TUI_DB take: a SQLite file path, or the URL of a
    fresh, empty PostgreSQL database."""
    if backend == "sqlite":
        yield str(tmp_path / "campaigns.db")
        return
    admin = request.getfixturevalue("pg_admin")
    if isinstance(admin, str):
        pytest.fail(admin, pytrace=False)
    with fresh_database(admin) as url:
        yield url.render_as_string(hide_password=False)


@pytest.fixture
def store(db_target: str) -> Iterator[Store]:
    """The store on `db_target`, closed after the test."""
    st = Store(db_target)
    yield st
    st.close()


# -- the dashboard -------------------------------------------------------------------------


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """The app's parts on a new SQLite file, with an in-process simulator."""
    rig = make_rig(tmp_path)
    yield rig
    await rig.service.aclose()


@pytest.fixture
def utc() -> Iterator[None]:
    """Local time is UTC, so times drawn in snapshots do not depend on the machine."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()
