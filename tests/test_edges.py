"""Edges and hostile input (issue 14): a busy database, impossible values, secrets in the
process list. Each through the real CLI or the real store, on a real file or server."""

from __future__ import annotations

import base64
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from engine_helpers import PNG, force, make_campaign, people
from test_policy_runs import hold_write_lock

from waha_tui.models import utcnow
from waha_tui.simulator import SimulatorServer
from waha_tui.store import Store, StoreError


def waha_tui(db: str, *args: str, timeout: float = 60) -> tuple[int, str, str, float]:
    env = {**os.environ, "WAHA_TUI_DB": db, "WAHA_URL": "http://127.0.0.1:9"}
    env.pop("WAHA_API_KEY", None)
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "waha_tui", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.returncode, done.stdout, done.stderr, time.monotonic() - start


# -- the database -------------------------------------------------------------------------


def test_read_only_commands_do_not_wait_for_another_writer(db_target: str) -> None:
    store = Store(db_target)
    store.add_template("greeting", "Hi {name}")
    store.close()
    started = threading.Event()
    holder = threading.Thread(target=hold_write_lock, args=(db_target, 15, started))
    holder.start()
    try:
        assert started.wait(10)
        for args, out in [
            (("template", "list"), "greeting"),
            (("campaign", "list"), ""),
            (("contacts", "lists"), ""),
        ]:
            code, stdout, stderr, took = waha_tui(db_target, *args)
            assert (code, stderr) == (0, ""), (args, stderr)
            assert out in stdout
            assert took < 8, f"{args} waited {took:.1f} s behind the writer"
    finally:
        holder.join()


def test_a_write_behind_a_held_lock_says_busy_not_a_wrong_file(db_target: str) -> None:
    Store(db_target).close()
    started = threading.Event()
    holder = threading.Thread(target=hold_write_lock, args=(db_target, 3, started))
    holder.start()
    try:
        assert started.wait(10)
        store = Store(db_target, busy_timeout=0.3)
        try:
            with pytest.raises(StoreError) as info, store.write() as conn:
                conn.exec_driver_sql(
                    "LOCK TABLE campaign IN EXCLUSIVE MODE"
                    if store.is_postgres
                    else "UPDATE meta SET value = value"
                )
        finally:
            store.close()
    finally:
        holder.join()
    message = str(info.value)
    assert "is busy: another process holds its lock" in message, message
    assert "not a waha-tui database" not in message


# -- impossible values: one line each, never a traceback ------------------------------------


def one_line_error(code: int, stdout: str, stderr: str) -> str:
    assert code == 1, (stdout, stderr)
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def test_a_schema_version_that_is_not_a_number(tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    Store(db).close()
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = 'x3' WHERE key = 'schema_version'")
    code, out, err, _ = waha_tui(db, "campaign", "list")
    line = one_line_error(code, out, err)
    assert db in line and "schema_version is 'x3', not a number" in line


@pytest.mark.parametrize("command", ["show", "pause", "cancel", "recipients", "resume"])
def test_an_id_too_large_for_any_row(tmp_path: Path, command: str) -> None:
    code, out, err, _ = waha_tui(str(tmp_path / "c.db"), "campaign", command, "9" * 23)
    assert "is too large: no campaign has an id above" in one_line_error(code, out, err)


def test_a_start_time_at_the_end_of_the_calendar(tmp_path: Path) -> None:
    csv = tmp_path / "people.csv"
    csv.write_text("phone\n4915112345678\n", encoding="utf-8")
    db = str(tmp_path / "c.db")
    at = "9999-12-31T23:59:59-12:00"
    args = ("campaign", "create", "--name", "x", "--contacts", str(csv), "--message", "hi")
    code, out, err, _ = waha_tui(db, *args, "--at", at)
    assert f"--at '{at}' is out of range" in one_line_error(code, out, err)
    assert waha_tui(db, "campaign", "list")[1] == ""  # nothing half-written


# -- a pause from another process -----------------------------------------------------------


def test_paused_from_another_process_means_nothing_more_goes_out(
    tmp_path: Path, sim_server: SimulatorServer
) -> None:
    """With pre-generated ids a message has no transaction of its own before it leaves.
    Here the pause lands while WAHA takes its time over stopTyping, after the run's last
    look at the campaign during the typing wait: the message must not go out after
    `campaign pause` said `paused`."""
    state = sim_server.state
    db = str(tmp_path / "c.db")
    # A long lease: the run's heartbeat (every third of it) must not be what notices.
    env = {**os.environ, "WAHA_TUI_DB": db, "WAHA_URL": sim_server.url}
    env.update(WAHA_TUI_LEASE_SECONDS="90")
    env.pop("WAHA_API_KEY", None)
    csv = tmp_path / "people.csv"
    csv.write_text("phone\n" + "".join(f"49151{i:07d}\n" for i in range(30)), encoding="utf-8")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "waha_tui", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    made = cli(
        "campaign",
        "create",
        "--name",
        "p",
        "--contacts",
        str(csv),
        "--message",
        "hi",
        "--delay",
        "0.5-0.5",
        "--typing",
    )
    assert made.returncode == 0, made.stderr
    cid = made.stdout.strip().splitlines()[-1]
    runner = subprocess.Popen(
        [sys.executable, "-m", "waha_tui", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while len(state.sent()) < 2:
            assert time.monotonic() < deadline and runner.poll() is None
            time.sleep(0.02)
        state.set_typing_latency(2.5)
        stops = sum(1 for t in state.typing if t[2] == "stop")
        while sum(1 for t in state.typing if t[2] == "stop") == stops:
            assert time.monotonic() < deadline and runner.poll() is None
            time.sleep(0.01)
        # The run now waits 2.5 s for stopTyping, then sends: pause meanwhile.
        paused = cli("campaign", "pause", cid)
        assert paused.returncode == 0 and "paused" in paused.stdout, paused.stderr
        sent_when_paused = len(state.sent())
        time.sleep(3.5)
        assert len(state.sent()) == sent_when_paused, "a message went out after 'paused'"
    finally:
        runner.terminate()
        runner.wait(timeout=20)
    shown = cli("campaign", "show", cid, "--json")
    assert '"status": "Paused"' in shown.stdout


# -- the demo -----------------------------------------------------------------------------


def _demo_quits(tmp_path: Path, *args: str) -> str:
    """`waha-tui demo` on an 80x24 pty, quit with q (and y: it has running campaigns);
    returns what it printed after the screen closed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "waha_tui", "demo", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    seen = bytearray()

    def drain(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if select.select([master], [], [], 0.05)[0]:
                try:
                    seen.extend(os.read(master, 65536))
                except OSError:
                    return

    try:
        deadline = time.monotonic() + 40
        while b"DEMO" not in seen:
            assert time.monotonic() < deadline and proc.poll() is None, "the demo never drew"
            drain(0.2)
        start = len(seen)
        os.write(master, b"q")
        drain(1.0)
        os.write(master, b"y")
        while proc.poll() is None:
            assert time.monotonic() < deadline + 20, "the demo did not quit"
            drain(0.1)
        drain(0.3)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert proc.returncode == 0
    return seen[start:].decode("utf-8", "replace")


def test_the_demo_removes_its_temporary_folder_when_it_quits(tmp_path: Path) -> None:
    _demo_quits(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_demo_keeps_its_database_when_asked(tmp_path: Path) -> None:
    after = _demo_quits(tmp_path, "--keep")
    kept = re.search(r"The demo database is kept at (\S+):", after)
    assert kept, after
    db = Path(kept.group(1))
    assert db.is_file() and db.parent.parent == tmp_path
    assert "Spring sale" in waha_tui(str(db), "campaign", "list")[1]


# -- images: what they are, by their content; their bytes kept with the campaign ------------


def _image_campaign(tmp_path: Path, server: SimulatorServer, image: Path, **env: str) -> tuple:
    csv = tmp_path / "people.csv"
    csv.write_text("phone\n4915112345678\n4915112345679\n", encoding="utf-8")
    db = str(tmp_path / "c.db")
    full = {**os.environ, "WAHA_TUI_DB": db, "WAHA_URL": server.url, **env}
    full.pop("WAHA_API_KEY", None)
    args = ["campaign", "create", "--name", "img", "--contacts", str(csv), "--message", "hi"]
    done = subprocess.run(
        [sys.executable, "-m", "waha_tui", *args, "--image", str(image), "--delay", "0-0"],
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, db, full


@pytest.mark.parametrize(
    ("name", "content", "what"),
    [
        ("offer.png", b"just some text\n", "is a text file"),
        ("logo.svg", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
        ("scan.jpg", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "is a PDF document"),
        ("sticker.png", b"RIFF\x24\x00\x00\x00WEBPVP8 ", "is a WebP image"),
        ("empty.png", b"", "the file is empty"),
    ],
)
def test_an_image_is_checked_by_its_content_not_its_name(
    tmp_path: Path, sim_server: SimulatorServer, name: str, content: bytes, what: str
) -> None:
    image = tmp_path / name
    image.write_bytes(content)
    done, db, _ = _image_campaign(tmp_path, sim_server, image)
    line = one_line_error(done.returncode, done.stdout, done.stderr)
    assert f"--image {image}: " in line and what in line, line
    assert waha_tui(db, "campaign", "list")[1] == ""


def test_the_image_sent_is_the_one_checked_at_creation(
    tmp_path: Path, sim_server: SimulatorServer
) -> None:
    image = tmp_path / "offer.png"
    image.write_bytes(PNG)
    done, _, env = _image_campaign(tmp_path, sim_server, image)
    assert done.returncode == 0, done.stderr
    # After creation the file grows to 60 MB of something else, then goes away (as it is
    # on another host): neither changes what the campaign sends.
    with image.open("wb") as f:
        f.truncate(60 * 1024 * 1024)
    image.unlink()
    run = subprocess.run(
        [sys.executable, "-m", "waha_tui", "run", "--until-idle"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    sent = sim_server.state.sent()
    assert [m.kind for m in sent] == ["image", "image"]
    for msg in sent:
        assert msg.image is not None
        assert base64.b64decode(msg.image["data"]) == PNG
        assert (msg.image["mimetype"], msg.image["filename"]) == ("image/png", "offer.png")


def test_the_image_size_limit_is_a_setting(tmp_path: Path, sim_server: SimulatorServer) -> None:
    image = tmp_path / "offer.png"
    image.write_bytes(PNG + b"\x00" * 2048)
    done, _, _ = _image_campaign(tmp_path, sim_server, image, WAHA_TUI_MAX_IMAGE_MB="0.001")
    line = one_line_error(done.returncode, done.stdout, done.stderr)
    assert "larger than the 0.001 MB limit (WAHA_TUI_MAX_IMAGE_MB)" in line
    done, _, _ = _image_campaign(tmp_path, sim_server, image, WAHA_TUI_MAX_IMAGE_MB="lots")
    assert "WAHA_TUI_MAX_IMAGE_MB='lots' is not a number" in one_line_error(
        done.returncode, done.stdout, done.stderr
    )


# -- text from outside on the dashboard's real terminal --------------------------------------

TITLE = "\x1b]0;PWNED-TITLE\x07"  # would set the terminal's title
CLEAR = "\x1b[2J"
RLO = "\u202e"


def test_the_dashboard_shows_hostile_text_as_text_on_a_real_terminal(
    tmp_path: Path, sim_server: SimulatorServer
) -> None:
    db = str(tmp_path / "c.db")
    store = Store(db)
    cid = make_campaign(
        store,
        2,
        name=f"Sale{TITLE}",
        recipients=people(2, names=[f"Ann{CLEAR}", f"Bob{RLO}evil"]),
        scheduled_at=utcnow() + timedelta(days=1),
    )
    force(store, cid, status="Paused", pause_reason=f"WAHA said {CLEAR}no{TITLE}")
    store.close()
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "WAHA_TUI_DB": db, "WAHA_URL": sim_server.url}
    env.update(WAHA_TUI_LOG_FILE=str(tmp_path / "log"))
    env.pop("WAHA_API_KEY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "waha_tui"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    seen = bytearray()

    def read_until(token: bytes, seconds: float) -> None:
        end = time.monotonic() + seconds
        while token not in seen:
            assert time.monotonic() < end and proc.poll() is None, bytes(seen[-2000:])
            if select.select([master], [], [], 0.05)[0]:
                seen.extend(os.read(master, 65536))

    try:
        read_until(b"PWNED-TITLE", 40)  # the campaign's name (and its reason) drawn
        os.write(master, b"\r")  # its details: the recipients' names
        read_until(b"Ann", 20)
        read_until(b"Bob\\u202e", 20)  # shown as text (cut to its column after)
        time.sleep(0.5)
        while select.select([master], [], [], 0.2)[0]:
            seen.extend(os.read(master, 65536))
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
    out = bytes(seen)
    assert b"\x1b]0;PWNED" not in out, "a name set the terminal's title"
    assert b"\\x1b]0;PWNED-TITLE\\x07" in out  # shown, as text
    assert b"\x1b[2Jno" not in out and b"Ann\x1b[2J" not in out
    assert RLO.encode() not in out
