"""Clean exits with real processes: the dashboard in a pseudo-terminal whose other end
closes, and SIGTERM while WAHA hangs on a send. Every time the process pauses its
campaigns, releases their leases and is gone within 10 s, whatever the terminal does.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
import tty
from pathlib import Path

import pytest
import test_crash
from test_crash import _drain, env_for, make_campaign, rows, truth

from waha_tui.simulator import SimulatorServer
from waha_tui.stopping import IN_FLIGHT_GRACE, Stopper
from waha_tui.tui.terminal import STALL, GuardedTerminal

server = test_crash.server  # the simulator fixture, shared
EXIT_WITHIN = 10.0


def _dashboard_in_pty(env: dict[str, str], *, controlling: bool) -> tuple[subprocess.Popen, int]:
    """The dashboard on an 80x24 pseudo-terminal. With `controlling`, the pty is the
    process's controlling terminal, so closing the other end sends it a real SIGHUP (an
    SSH drop); without, nothing is signalled and only the terminal itself tells."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))

    def become_session_leader() -> None:
        os.setsid()
        if controlling:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [sys.executable, "-m", "waha_tui"],
        env={**env, "TERM": "xterm-256color"},
        stdin=slave,
        stdout=slave,
        stderr=slave,
        preexec_fn=become_session_leader,
    )
    os.close(slave)
    return proc, master


def _wait_for(what: str, cond, timeout: float, master: int | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what
        if master is not None:
            _drain(master)
        time.sleep(0.05)


def _exits_within(proc: subprocess.Popen, seconds: float) -> float:
    start = time.monotonic()
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"the process was still running {seconds:g} s after it was told to stop")
    return time.monotonic() - start


def _assert_paused_and_released(db: str, cid: int) -> None:
    camp, _ = truth(db, cid)
    assert camp["status"] == "Paused", camp
    ((reason, owner, until),) = rows(
        db, "SELECT pause_reason, lease_owner, lease_until FROM campaign WHERE id=:cid", cid=cid
    )
    assert owner is None and until is None, "the lease was not released"
    assert reason


@pytest.mark.parametrize("controlling", [True, False], ids=["sighup", "no-signal"])
def test_the_dashboard_exits_when_its_terminal_closes_mid_campaign(
    server: SimulatorServer,
    tmp_path: Path,
    db_target: str,
    controlling: bool,
) -> None:
    env = env_for(server, db_target)
    cid = make_campaign(env, tmp_path, 400, "0.05-0.05")
    proc, master = _dashboard_in_pty(env, controlling=controlling)
    try:
        _wait_for(
            "the dashboard never started the campaign",
            lambda: len(server.state.sent()) >= 5,
            40,
            master,
        )
    except BaseException:
        proc.kill()
        os.close(master)
        raise
    os.close(master)  # the SSH connection is gone: nobody reads the terminal again
    sent_at_close = len(server.state.sent())
    _exits_within(proc, EXIT_WITHIN)
    sent_at_exit = len(server.state.sent())
    time.sleep(0.5)
    assert len(server.state.sent()) == sent_at_exit, "messages went out after the exit"
    # A send already on the wire when the terminal closed may finish; nothing after it.
    assert sent_at_exit <= sent_at_close + 1
    _assert_paused_and_released(db_target, cid)
    camp, statuses = truth(db_target, cid)
    assert camp["sent"] + statuses["sending"] >= sent_at_exit - 1  # accounted, not lost


def _hang_then_sigterm(
    server: SimulatorServer, db: str, proc: subprocess.Popen, master: int | None
) -> None:
    _wait_for("nothing was sent", lambda: len(server.state.sent()) >= 3, 40, master)
    server.state.set_hang(60)  # WAHA takes the next send and never answers (in time)
    _wait_for("no send was left hanging", lambda: server.state.held >= 1, 10, master)
    proc.send_signal(signal.SIGTERM)


def test_waha_tui_run_exits_on_sigterm_while_waha_hangs_on_a_send(
    server: SimulatorServer,
    tmp_path: Path,
    db_target: str,
) -> None:
    env = env_for(server, db_target)
    cid = make_campaign(env, tmp_path, 100, "0.05-0.05")
    proc = subprocess.Popen(
        [sys.executable, "-m", "waha_tui", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _hang_then_sigterm(server, db_target, proc, None)
        sent = len(server.state.sent())
        _exits_within(proc, EXIT_WITHIN)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(server.state.sent()) == sent  # the hanging send is not recorded yet either
    _assert_paused_and_released(db_target, cid)
    camp, statuses = truth(db_target, cid)
    # The abandoned send's fate is unknown: left for the next resume to settle, never
    # counted sent or failed.
    assert statuses["sending"] == 1
    assert camp["sent"] == sent and camp["failed"] == 0


def test_the_dashboard_exits_on_sigterm_while_waha_hangs_on_a_send(
    server: SimulatorServer,
    tmp_path: Path,
    db_target: str,
) -> None:
    env = env_for(server, db_target)
    cid = make_campaign(env, tmp_path, 100, "0.05-0.05")
    proc, master = _dashboard_in_pty(env, controlling=True)
    try:
        _hang_then_sigterm(server, db_target, proc, master)
        sent = len(server.state.sent())
        start = time.monotonic()
        while proc.poll() is None and time.monotonic() - start < EXIT_WITHIN:
            _drain(master)  # a terminal that still reads: the exit must not need it anyway
            time.sleep(0.05)
        _exits_within(proc, 0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert len(server.state.sent()) == sent
    _assert_paused_and_released(db_target, cid)
    _camp, statuses = truth(db_target, cid)
    assert statuses["sending"] == 1


def test_the_dashboard_exits_when_its_terminal_stops_reading(
    server: SimulatorServer, tmp_path: Path, db_target: str
) -> None:
    """A frozen SSH client: the terminal is there but takes no more output. The process
    notices (STALL seconds without a byte taken) and stops like on SIGHUP."""
    env = env_for(server, db_target)
    cid = make_campaign(env, tmp_path, 2000, "0.01-0.01")
    proc, master = _dashboard_in_pty(env, controlling=False)
    try:
        _wait_for("the dashboard never started", lambda: len(server.state.sent()) >= 5, 40, master)
        # From here nobody reads: the screen's updates fill the terminal's buffer.
        _exits_within(proc, STALL + EXIT_WITHIN + 10)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    _assert_paused_and_released(db_target, cid)


def test_a_second_sigterm_exits_at_once(
    server: SimulatorServer, tmp_path: Path, db_target: str
) -> None:
    env = env_for(server, db_target)
    make_campaign(env, tmp_path, 100, "0.05-0.05")
    proc = subprocess.Popen(
        [sys.executable, "-m", "waha_tui", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _hang_then_sigterm(server, db_target, proc, None)
        time.sleep(0.3)  # the orderly stop is under way, waiting for the hanging send
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        took = _exits_within(proc, 1.5)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    assert took < IN_FLIGHT_GRACE  # it did not wait for the send's grace


def test_the_watchdog_ends_a_stop_that_hangs() -> None:
    """Whatever blocks the orderly stop, the exit comes EXIT_DEADLINE after it began."""
    exited: list[tuple[int, str]] = []
    done = threading.Event()

    def exit_(code: int, why: str) -> None:
        exited.append((code, why))
        done.set()

    stopper = Stopper(lambda why: None, deadline=1.0, exit=exit_)  # on_stop never finishes
    start = time.monotonic()
    stopper.request("SIGTERM")
    assert done.wait(5), "the watchdog never fired"
    assert 0.4 <= time.monotonic() - start < 1.5
    ((code, why),) = exited
    assert code == 1 and "SIGTERM" in why


def test_a_stop_asked_before_the_loop_took_requests_is_not_lost() -> None:
    """A terminal gone while the dashboard starts (its output thread sees EIO before the
    app bound the stopper): the stop happens once the loop is there, and the watchdog is
    armed from the request on. It used to be logged and dropped; the dashboard then ran
    on with no terminal, for an hour, at most of a core."""
    exited: list[tuple[int, str]] = []
    done = threading.Event()
    stops: list[str] = []

    def exit_(code: int, why: str) -> None:
        exited.append((code, why))
        done.set()

    stopper = Stopper(stops.append, deadline=1.5, exit=exit_)
    asked = threading.Thread(target=stopper.request_threadsafe, args=("the terminal is gone",))
    asked.start()
    asked.join()

    async def app_starts() -> None:
        stopper.bind()
        await asyncio.sleep(0.05)

    asyncio.run(app_starts())
    assert stops == ["the terminal is gone"]  # carried out on the loop, once
    assert done.wait(5), "the watchdog was never armed"
    assert "the terminal is gone" in exited[0][1]


def test_a_repeated_sighup_is_not_a_second_signal() -> None:
    exited: list[tuple[int, str]] = []
    stops: list[str] = []
    stopper = Stopper(stops.append, watchdog=False, exit=lambda c, w: exited.append((c, w)))
    stopper.on_signal(signal.SIGHUP)
    stopper.on_signal(signal.SIGHUP)
    assert (stops, exited) == (["the terminal closed (SIGHUP)"], [])
    stopper.on_signal(signal.SIGINT)
    assert exited and exited[0][0] == 128 + signal.SIGINT


def _unread_pty() -> tuple[int, int]:
    master, slave = pty.openpty()
    tty.setraw(slave)
    return master, slave


def test_the_guarded_terminal_gives_up_on_a_terminal_that_stops_reading() -> None:
    master, slave = _unread_pty()
    gone: list[str] = []
    with os.fdopen(slave, "w", closefd=True) as file:
        out = GuardedTerminal(file, gone.append, stall=0.3)
        start = time.monotonic()
        for _ in range(1000):  # far more than any terminal buffers
            out.write("x" * 1024)
        took = time.monotonic() - start
        out.close()
    os.close(master)
    assert gone and "no output for 0.3 s" in gone[0]
    assert took < 3  # one stall, then every write is dropped at once


def test_the_guarded_terminal_reports_a_hung_up_terminal_once() -> None:
    master, slave = _unread_pty()
    gone: list[str] = []
    with os.fdopen(slave, "w", closefd=True) as file:
        out = GuardedTerminal(file, gone.append, stall=5)
        out.write("before\n")
        assert os.read(master, 100) == b"before\n"
        os.close(master)  # the SSH connection dropped
        out.write("after\n")
        out.write("and more\n")
        out.close()
    assert len(gone) == 1 and "gone" in gone[0]
