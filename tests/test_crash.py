"""Crash safety with real processes: kill -9, two runners on one database, SIGHUP and
SIGTERM; on a SQLite file and on PostgreSQL (the `backend` parameter).

The simulator lives in this test process, so its log of accepted messages survives every
runner that is killed; it is the truth about what WhatsApp received.
"""

from __future__ import annotations

import collections
import os
import pty
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_helpers import raw_rows

from waha_tui.simulator import SimState, Simulator, SimulatorServer
from waha_tui.store import Store

LEASE = "1"


@pytest.fixture
def server() -> Iterator[SimulatorServer]:
    with SimulatorServer(Simulator(SimState())) as srv:
        yield srv


def env_for(srv: SimulatorServer, db: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(WAHA_URL=srv.url, WAHA_TUI_DB=db, WAHA_TUI_LEASE_SECONDS=LEASE)
    env.pop("WAHA_API_KEY", None)
    return env


def cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "waha_tui", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def spawn(env: dict[str, str], *args: str, **kwargs: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "waha_tui", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def make_campaign(env: dict[str, str], tmp_path: Path, count: int, delay: str) -> int:
    csv = tmp_path / "people.csv"
    rows = [f"49151{i:07d},Person {i}" for i in range(count)]
    csv.write_text("phone,name\n" + "\n".join(rows) + "\n", encoding="utf-8")
    made = cli(
        env,
        "campaign",
        "create",
        "--name",
        "Crash test",
        "--contacts",
        str(csv),
        "--message",
        "Hello {name}",
        "--delay",
        delay,
    )
    assert made.returncode == 0, made.stderr
    return int(made.stdout.strip().splitlines()[-1])


def rows(db: str, sql: str, **params: object) -> list[tuple]:
    found = raw_rows(db, sql, **params)
    if "://" not in db:
        assert raw_rows(db, "PRAGMA integrity_check") == [("ok",)]
    return found


def truth(db: str, cid: int) -> tuple[dict, collections.Counter]:
    fields = ("status", "sent", "failed", "unknown", "next_index", "total")
    (found,) = rows(db, f"SELECT {', '.join(fields)} FROM campaign WHERE id=:cid", cid=cid)
    camp = dict(zip(fields, found, strict=True))
    statuses = collections.Counter(
        s for (s,) in rows(db, "SELECT status FROM recipient WHERE campaign_id=:cid", cid=cid)
    )
    return camp, statuses


def assert_at_most_once_and_accounted(srv: SimulatorServer, db: str, cid: int, count: int) -> None:
    delivered = collections.Counter(m.chat_id for m in srv.state.sent())
    assert max(delivered.values()) == 1, "a recipient got the message twice"
    camp, statuses = truth(db, cid)
    assert camp["status"] == "Completed"
    assert sum(statuses.values()) == count
    assert set(statuses) <= {"sent", "failed", "unknown"}, statuses  # none lost or pending
    assert (camp["sent"], camp["failed"], camp["unknown"]) == (
        statuses["sent"],
        statuses["failed"],
        statuses["unknown"],
    )
    assert camp["next_index"] == count
    # Every `sent` recipient really reached the simulator, with the id the store holds.
    ids = {
        mid
        for (mid,) in rows(
            db, "SELECT message_id FROM recipient WHERE campaign_id=:cid AND status='sent'", cid=cid
        )
    }
    assert ids <= {m.id for m in srv.state.sent()}


@pytest.mark.parametrize("message_ids", [True, False], ids=["message-ids", "no-message-ids"])
def test_kill_9_at_random_moments_never_sends_twice_nor_loses_anyone(
    server: SimulatorServer, tmp_path: Path, db_target: str, message_ids: bool
) -> None:
    server.state.message_ids = message_ids
    server.state.set_latency(0.004)
    db = db_target
    env = env_for(server, db)
    count = 300
    cid = make_campaign(env, tmp_path, count, "0.02-0.04")
    rng = random.Random(1234 if message_ids else 4321)
    kills = runs = 0
    while kills < 24 and runs < 80:
        camp, _ = truth(db, cid)
        if camp["status"] == "Completed":
            break
        if camp["status"] != "Scheduled" and runs % 2:
            # Alternate the two kinds of runner process: `run` and `campaign resume`.
            detached = cli(env, "campaign", "resume", str(cid), "--detach")
            assert detached.returncode == 0, detached.stderr
        runs += 1
        command = (
            ("run", "--until-idle")
            if truth(db, cid)[0]["status"] == "Scheduled"
            else ("campaign", "resume", str(cid))
        )
        proc = spawn(env, *command)
        time.sleep(rng.uniform(0.5, 1.1))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=30)
        time.sleep(float(LEASE) + 0.1)  # the dead runner's lease lapses
    camp, _ = truth(db, cid)
    if camp["status"] != "Completed":  # finish it without kills
        finish = (
            ("run", "--until-idle")
            if camp["status"] == "Scheduled"
            else ("campaign", "resume", str(cid))
        )
        done = cli(env, *finish)
        assert done.returncode == 0, done.stderr
    assert kills >= 20, f"only {kills} kills happened: the test did not test much"
    assert_at_most_once_and_accounted(server, db, cid, count)


def test_two_runners_started_together_never_send_the_same_recipient(
    server: SimulatorServer, tmp_path: Path, db_target: str
) -> None:
    db = db_target
    env = env_for(server, db)
    cid = make_campaign(env, tmp_path, 120, "0-0")
    Store(db).close()
    procs = [spawn(env, "run", "--until-idle") for _ in range(2)]
    for p in procs:
        p.communicate(timeout=120)
    assert_at_most_once_and_accounted(server, db, cid, 120)
    assert len(server.state.sent()) == 120


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_signals_to_waha_tui_run_leave_the_campaign_paused_at_the_right_place(
    server: SimulatorServer, tmp_path: Path, db_target: str, sig: signal.Signals
) -> None:
    db = db_target
    env = env_for(server, db)
    cid = make_campaign(env, tmp_path, 200, "0.05-0.05")
    proc = spawn(env, "run")
    deadline = time.monotonic() + 30
    while len(server.state.sent()) < 5:
        assert time.monotonic() < deadline, "the runner never started sending"
        time.sleep(0.05)
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    camp, statuses = truth(db, cid)
    assert camp["status"] == "Paused"
    assert camp["next_index"] == len(server.state.sent()) == camp["sent"]
    assert statuses["sending"] == 0  # nothing left in flight
    ((reason, owner),) = rows(
        db, "SELECT pause_reason, lease_owner FROM campaign WHERE id=:cid", cid=cid
    )
    assert owner is None
    assert reason


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_signals_to_the_dashboard_pause_its_campaigns(
    server: SimulatorServer, tmp_path: Path, db_target: str, sig: signal.Signals
) -> None:
    db = db_target
    env = env_for(server, db)
    env.update(TERM="xterm-256color", COLUMNS="100", LINES="30")
    cid = make_campaign(env, tmp_path, 200, "0.05-0.05")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "waha_tui"],
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    try:
        deadline = time.monotonic() + 40
        while len(server.state.sent()) < 5:
            assert time.monotonic() < deadline, "the dashboard never started the campaign"
            _drain(master)
            time.sleep(0.05)
        proc.send_signal(sig)
        deadline = time.monotonic() + 30
        while proc.poll() is None:
            assert time.monotonic() < deadline, "the dashboard did not exit"
            _drain(master)
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    camp, statuses = truth(db, cid)
    assert camp["status"] == "Paused"
    assert camp["next_index"] == len(server.state.sent()) == camp["sent"]
    assert statuses["sending"] == 0


def _drain(fd: int) -> None:
    # Read what the app draws, so it never blocks on a full terminal buffer.
    import select

    while select.select([fd], [], [], 0)[0]:
        try:
            if not os.read(fd, 65536):
                return
        except OSError:
            return
