"""Logging: where each process logs and in which form, the file's place and mode, and that
no secret reaches a line. The real CLI in subprocesses (the dashboard on a pseudo-terminal,
`waha-tui run` with stderr a pipe or the journal) against the simulator on a real socket."""

from __future__ import annotations

import io
import logging
import os
import pty
import re
import select
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from engine_helpers import make_campaign, module_simulator, reset_simulator
from typer.testing import CliRunner

from waha_tui import events as ev
from waha_tui import logs
from waha_tui.cli import app
from waha_tui.secret import url_password
from waha_tui.simulator import SimState, SimulatorServer
from waha_tui.store import Store

KEY = "sekrit-Key-77-never-logged"
OTHER_KEY = "the-key-waha-wants"


@pytest.fixture(scope="module")
def module_server() -> Iterator[SimulatorServer]:
    yield from module_simulator()


@pytest.fixture
def sim_server(module_server: SimulatorServer) -> SimulatorServer:
    """Overrides conftest's per-test server: the module's one, reset."""
    return reset_simulator(module_server)


def env_for(server: SimulatorServer, db: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAHA_", "JOURNAL_"))}
    env.update(WAHA_URL=server.url, WAHA_TUI_DB=db, PYTHONUNBUFFERED="1", **extra)
    return env


def ours() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if getattr(h, logs._OURS, False)]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- the file ----------------------------------------------------------------------------


def test_the_log_file_is_0600_whatever_the_umask_and_so_is_every_rotation(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state" / "waha-tui" / "waha-tui.log"
    old = os.umask(0)
    try:
        logs.configure(level=logging.INFO, file=path)
        logging.getLogger("waha_tui.test").info("campaign 1: a line")
        (handler,) = ours()
        handler.flush()
        rotating = logs.PrivateRotatingFileHandler(tmp_path / "r.log", maxBytes=100, backupCount=2)
        rotating.setFormatter(logging.Formatter("%(message)s"))
        for i in range(12):
            rotating.emit(logging.makeLogRecord({"msg": f"line {i} " + "x" * 40}))
        rotating.close()
    finally:
        os.umask(old)
    assert "campaign 1: a line" in path.read_text()
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700  # the state directory it made
    rotated = sorted(p.name for p in tmp_path.glob("r.log*"))
    assert rotated == ["r.log", "r.log.1", "r.log.2"]
    assert {mode(tmp_path / name) for name in rotated} == {0o600}


def test_a_log_file_left_readable_by_others_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "old.log"
    path.write_text("from before\n")
    path.chmod(0o644)
    logs.configure(level=logging.INFO, file=path)
    assert mode(path) == 0o600


def test_an_unwritable_log_file_is_one_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "taken"
    folder.write_text("a file where the folder should be")
    with pytest.raises(logs.UserError) as info:
        logs.configure(level=logging.INFO, file=folder / "waha-tui.log")
    assert str(info.value).startswith(f"cannot write the log file {folder / 'waha-tui.log'}:")
    assert "--log-file" in str(info.value)


def test_the_default_place_is_the_users_state_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("WAHA_TUI_LOG_FILE", raising=False)
    expected = tmp_path / "xdg" / "waha-tui" / "waha-tui.log"
    assert logs.log_file() == expected
    monkeypatch.setenv("WAHA_TUI_LOG_FILE", str(tmp_path / "env.log"))
    assert logs.log_file() == tmp_path / "env.log"
    assert logs.log_file(str(tmp_path / "flag.log")) == tmp_path / "flag.log"
    # --help names it (a line of its own: the path is never broken at its hyphens).
    monkeypatch.delenv("WAHA_TUI_LOG_FILE")
    done = subprocess.run(
        [sys.executable, "-m", "waha_tui", "--help"],
        env={**os.environ, "COLUMNS": "80"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert f"The dashboard logs to {expected}\n" in done.stdout
    assert "--log-level" in done.stdout and "--log-file" in done.stdout


# -- the form of a line, and secrets -----------------------------------------------------


def test_no_line_shows_the_api_key_or_the_database_password(tmp_path: Path) -> None:
    password = "pa@ss/w0rd-77"
    url = f"postgresql+psycopg://waha:{quote(password, safe='')}@db.internal:5432/waha"
    path = tmp_path / "w.log"
    logs.configure(level=logging.DEBUG, file=path, secrets=[KEY, url_password(url)])
    log = logging.getLogger("waha_tui.test")
    log.info("connecting to %s with key %s", url, KEY)
    log.info("a password as written: %s; another URL http://u:zzz-not-known@h:1/x", password)
    try:
        raise RuntimeError(f"boom at {url} with {KEY}")
    except RuntimeError:
        log.exception("campaign 4: it failed")
    for handler in ours():
        handler.flush()
    text = path.read_text()
    for secret in (KEY, password, quote(password, safe=""), "zzz-not-known"):
        assert secret not in text
    assert "connecting to postgresql+psycopg://waha:***@db.internal:5432/waha" in text
    assert "http://u:***@h:1/x" in text
    assert "Traceback" in text and "RuntimeError: boom at" in text  # the traceback is kept


def test_stderr_lines_carry_a_time_and_the_level(tmp_path: Path) -> None:
    out = io.StringIO()
    logs.configure(level=logging.INFO, stream=out)
    logging.getLogger("waha_tui.x").warning("campaign 3: paused: %s", "WAHA said \x1b[2Jno\nINFO x")
    logging.getLogger("waha_tui.x").debug("not at info")
    logging.getLogger("httpx").info("HTTP Request: POST http://waha/api/sendText")
    line = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING waha_tui.x: campaign 3")
    # One line: WAHA's words neither forge a second one nor reach the terminal as commands.
    assert [bool(line.match(x)) for x in out.getvalue().splitlines()] == [True]
    assert out.getvalue().endswith("campaign 3: paused: WAHA said \\x1b[2Jno\\x0aINFO x\n")


def test_on_the_journal_lines_carry_the_priority_and_no_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open(tmp_path / "journal", "w") as stream:
        found = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{found.st_dev}:{found.st_ino}")
        logs.configure(level=logging.INFO, stream=stream)
        logging.getLogger("waha_tui.x").info("campaign 3: claimed")
        try:
            raise ValueError("bad")
        except ValueError:
            logging.getLogger("waha_tui.x").exception("campaign 3: unexpected error")
    lines = (tmp_path / "journal").read_text().splitlines()
    assert lines[0] == "<6>waha_tui.x: campaign 3: claimed"
    assert lines[1] == "<3>waha_tui.x: campaign 3: unexpected error"
    assert len(lines) > 3 and all(x.startswith("<3>") for x in lines[1:])  # the traceback too
    # Another stream is not the journal, whatever JOURNAL_STREAM says.
    out = io.StringIO()
    logs.configure(level=logging.INFO, stream=out)
    logging.getLogger("waha_tui.x").info("campaign 3: claimed")
    assert not out.getvalue().startswith("<")


def test_log_level_flag_and_environment(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"WAHA_TUI_DB": str(tmp_path / "c.db"), "WAHA_TUI_LOG_LEVEL": None}
    bad = runner.invoke(app, ["--log-level", "loud", "campaign", "list"], env=env)
    assert bad.exit_code == 2
    assert bad.stderr == "error: --log-level 'loud' is not one of debug, info, warning, error\n"
    bad = runner.invoke(app, ["campaign", "list"], env={**env, "WAHA_TUI_LOG_LEVEL": "x"})
    assert bad.exit_code == 2 and "WAHA_TUI_LOG_LEVEL 'x' is not one of" in bad.stderr
    store = Store(tmp_path / "c.db")
    cid = make_campaign(store, 1)
    other = make_campaign(store, 1)
    store.close()
    # One-shot commands log warnings by default: a pause is one, a cancel is not.
    done = runner.invoke(app, ["campaign", "pause", str(cid)], env=env)
    assert done.exit_code == 0
    assert f"WARNING waha_tui.history: campaign {cid}: paused: paused by the operator" in (
        done.stderr
    )
    done = runner.invoke(app, ["campaign", "cancel", str(other)], env=env)
    assert done.exit_code == 0 and "waha_tui.history" not in done.stderr
    done = runner.invoke(
        app, ["campaign", "cancel", str(cid)], env={**env, "WAHA_TUI_LOG_LEVEL": "INFO"}
    )
    assert done.exit_code == 0
    assert f"INFO waha_tui.history: campaign {cid}: cancelled: cancelled by the operator" in (
        done.stderr
    )
    done = runner.invoke(
        app, ["--log-level", "error", "campaign", "list"], env={**env, "WAHA_TUI_LOG_LEVEL": "x"}
    )
    assert done.exit_code == 0  # the flag wins over the environment


# -- the event bus -----------------------------------------------------------------------


def test_a_failing_subscriber_is_logged_and_the_others_still_hear(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = ev.EventBus()
    heard: list[ev.CampaignEvent] = []

    def broken(event: ev.CampaignEvent) -> None:
        raise KeyError("a bug in a screen")

    bus.subscribe(broken)
    bus.subscribe(heard.append)
    with caplog.at_level(logging.ERROR, logger="waha_tui.events"):
        bus.publish(ev.Paused(7, "why", 3))
    assert heard == [ev.Paused(7, "why", 3)]
    (record,) = [r for r in caplog.records if r.name == "waha_tui.events"]
    assert record.levelno == logging.ERROR
    assert record.getMessage().startswith("campaign 7: event subscriber ")
    assert "broken" in record.getMessage() and "Paused" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is KeyError


# -- the real processes ------------------------------------------------------------------


def test_run_logs_a_pause_with_its_campaign_id_on_stderr_and_hides_the_secrets(
    db_target: str, sim_server: SimulatorServer, state: SimState
) -> None:
    state.require_api_key(OTHER_KEY)  # our key is refused: the campaign pauses
    store = Store(db_target)
    cid = make_campaign(store, 2)
    store.close()
    args = ["--api-key", KEY, "--log-level", "debug", "run", "--until-idle"]
    done = subprocess.run(
        [sys.executable, "-m", "waha_tui", *args],
        env=env_for(sim_server, db_target),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    paused = rf"^{stamp} WARNING waha_tui.history: campaign {cid}: paused: WAHA refused the API key"
    assert re.search(paused, done.stderr, re.M), done.stderr
    assert re.search(rf"^{stamp} INFO waha_tui.history: campaign {cid}: claimed", done.stderr, re.M)
    # The database it works on is named, its password masked.
    shown = Store(db_target)
    assert f"scheduling the campaigns of {shown.location} " in done.stderr
    shown.close()
    password = url_password(db_target)
    assert (password is not None) == db_target.startswith("postgresql")
    for secret in (KEY, password):
        assert not secret or secret not in done.stderr + done.stdout


def test_run_under_systemd_writes_the_journals_form(
    tmp_path: Path, sim_server: SimulatorServer, state: SimState
) -> None:
    db = str(tmp_path / "c.db")
    store = Store(db)
    cid = make_campaign(store, 2)
    store.close()
    state.set_status("default", "STOPPED")
    read_end, write_end = os.pipe()
    found = os.fstat(write_end)
    env = env_for(sim_server, db, JOURNAL_STREAM=f"{found.st_dev}:{found.st_ino}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "waha_tui", "run", "--until-idle"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=write_end,
    )
    os.close(write_end)
    with os.fdopen(read_end, encoding="utf-8") as pipe:
        err = pipe.read()
    assert proc.wait(timeout=120) == 0, err
    lines = err.splitlines()
    assert f"<6>waha_tui.history: campaign {cid}: claimed: on session 'default', from " in err
    assert f"<4>waha_tui.history: campaign {cid}: paused: session 'default' is STOPPED" in err
    logged = [x for x in lines if x.startswith("<")]
    assert logged and all(re.match(r"<[0-7]>waha_tui(\.\w+)+: ", x) for x in logged)


def _drain(fd: int, into: bytearray) -> None:
    while select.select([fd], [], [], 0)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return
        if not chunk:
            return
        into.extend(chunk)


def test_the_dashboard_logs_to_its_private_file_and_never_to_the_terminal(
    db_target: str, sim_server: SimulatorServer, state: SimState, tmp_path: Path
) -> None:
    state.require_api_key(OTHER_KEY)  # our key is refused: the campaign pauses
    store = Store(db_target)
    cid = make_campaign(store, 3)
    store.close()
    xdg = tmp_path / "xdg"
    log_file = xdg / "waha-tui" / "waha-tui.log"
    env = env_for(
        sim_server,
        db_target,
        WAHA_API_KEY=KEY,
        XDG_STATE_HOME=str(xdg),
        TERM="xterm-256color",
        COLUMNS="100",
        LINES="30",
    )
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "waha_tui"],
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        umask=0,  # the file is private all the same
    )
    os.close(slave)
    screen = bytearray()
    try:
        deadline = time.monotonic() + 60
        wanted = f"campaign {cid}: paused: WAHA refused the API key"
        while not (log_file.exists() and wanted in log_file.read_text()):
            assert proc.poll() is None, "the dashboard exited"
            assert time.monotonic() < deadline, "the pause was never logged"
            _drain(master, screen)
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while proc.poll() is None:
            assert time.monotonic() < deadline, "the dashboard did not exit"
            _drain(master, screen)
            time.sleep(0.05)
        _drain(master, screen)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        os.close(master)
    text = log_file.read_text()
    assert mode(log_file) == 0o600 and mode(log_file.parent) == 0o700
    assert re.search(rf"INFO \[{proc.pid}\] waha_tui.history: campaign {cid}: claimed", text)
    terminal = screen.decode("utf-8", "replace")
    assert terminal  # the dashboard drew something
    for logged in (f"campaign {cid}: paused", f"campaign {cid}: claimed", "waha_tui.", "WARNING"):
        assert logged not in terminal
    password = url_password(db_target)
    for secret in (KEY, password):
        assert not secret or (secret not in text and secret not in terminal)
