"""Per-number caps from the outside: two real `waha-tui` processes sharing one cap (SQLite
and PostgreSQL), and `waha-tui caps set/show/clear` with their errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from engine_helpers import force, make_campaign, raw_rows
from test_cli import Cli

from waha_tui.models import utcnow
from waha_tui.simulator import SimState, Simulator, SimulatorServer
from waha_tui.status import CampaignStatus
from waha_tui.store import Store

NUMBER = "15550000000"  # both simulator sessions' me.id: one phone, two session names


def zone_far_from_midnight() -> str:
    """A fixed-offset zone where it is about noon now: a day cap's count cannot roll over
    during the test."""
    east = (12 - datetime.now(UTC).hour) % 24
    east = east - 24 if east > 12 else east
    return "UTC" if east == 0 else f"Etc/GMT{-east:+d}"  # Etc/GMT-3 is UTC+3


@pytest.fixture
def server() -> Iterator[SimulatorServer]:
    state = SimState(sessions={"default": "WORKING", "second": "WORKING"})
    with SimulatorServer(Simulator(state)) as srv:
        yield srv


def test_two_processes_on_two_session_names_of_one_number_never_exceed_its_cap(
    server: SimulatorServer, db_target: str
) -> None:
    store = Store(db_target)
    try:
        store.set_caps(
            NUMBER,
            per_hour=None,
            per_day=5,
            zone=zone_far_from_midnight(),
            warmup=None,
            warmup_start=None,
        )
        ids = []
        for session in ("default", "second"):
            cid = make_campaign(store, 10, session=session, delay_min=0.3, delay_max=0.3)
            force(store, cid, status=CampaignStatus.PAUSED)
            ids.append(cid)
    finally:
        store.close()
    env = {**os.environ, "WAHA_URL": server.url, "WAHA_TUI_DB": db_target}
    env.pop("WAHA_API_KEY", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "waha_tui", "campaign", "resume", str(cid)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for cid in ids
    ]
    try:
        deadline = time.monotonic() + 60
        while True:
            waiting = raw_rows(db_target, "SELECT status, waiting_for FROM campaign ORDER BY id")
            if all(w and "cap of 5/day reached on +1…0000" in w for _, w in waiting):
                break
            assert all(p.poll() is None for p in procs), [
                p.stderr.read() for p in procs if p.stderr
            ]
            assert time.monotonic() < deadline, waiting
            time.sleep(0.1)
        assert [s for s, _ in waiting] == ["Running", "Running"]  # waiting, not paused
        time.sleep(1.0)  # several pacing delays: nothing more goes out
        sent = server.state.sent()
        assert len(sent) == 5
        assert {m.session for m in sent} == {"default", "second"}  # both took part
        assert raw_rows(db_target, "SELECT count(*) FROM send_log") == [(5,)]
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            _, err = p.communicate(timeout=30)
            assert p.returncode == 3, err  # paused by the stop, resumable
    rows = raw_rows(db_target, "SELECT status, next_index FROM campaign ORDER BY id")
    assert [s for s, _ in rows] == ["Paused", "Paused"] and sum(n for _, n in rows) == 5


# -- the command line ----------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path, server: SimulatorServer) -> Cli:
    return Cli(tmp_path / "campaigns.db", server)


def test_caps_set_show_and_clear(cli: Cli, server: SimulatorServer) -> None:
    # By session: WAHA says its number; the zone and the plan are kept as given.
    line = cli.ok(
        "caps",
        "set",
        "default",
        "--per-day",
        "200",
        "--per-hour",
        "30",
        "--timezone",
        "Europe/Berlin",
        "--warmup",
        "20,40,80",
        "--warmup-start",
        "2026-05-01",
    ).stdout
    assert line.split("\t")[:5] == [
        "+15550000000",
        "30/hour",
        "200/day",
        "Europe/Berlin",
        "warm-up 20,40,80 from 2026-05-01",
    ]
    # By number: another number, its zone this machine's; an option not given is kept.
    cli.ok("caps", "set", "+49 151 12345678", "--per-day", "50", "--timezone", "UTC")
    cli.ok("caps", "set", "4915112345678", "--per-hour", "10")
    shown = cli.json("caps", "show")
    assert [c["number"] for c in shown] == ["+15550000000", "+4915112345678"]
    first, second = shown
    assert first["warmup"] == [20, 40, 80] and first["warmup_start"] == "2026-05-01"
    assert first["warmup_day"] is None  # the plan ended in May
    assert first["today"] == {"sent": 0, "cap": 200}
    assert first["this_hour"] == {"sent": 0, "cap": 30}
    assert (second["per_day"], second["per_hour"], second["timezone"]) == (50, 10, "UTC")
    # 0 removes one cap; the warm-up starts today unless given.
    cli.ok("caps", "set", "+4915112345678", "--per-hour", "0", "--warmup", "5,10")
    again = {c["number"]: c for c in cli.json("caps", "show")}["+4915112345678"]
    assert again["per_hour"] is None and again["warmup_day"] == 1
    assert again["today"]["cap"] == 5
    assert again["warmup_start"] == utcnow().date().isoformat()

    assert (
        cli.ok("caps", "clear", "+4915112345678").stdout.strip() == "+4915112345678: caps removed"
    )
    assert [c["number"] for c in cli.json("caps", "show")] == ["+15550000000"]


def test_caps_errors_are_one_line_naming_what(cli: Cli, server: SimulatorServer) -> None:
    server.state.add_session("unlinked", "SCAN_QR_CODE")
    assert "--timezone 'Mars/Base'" in cli.error(
        "caps", "set", "default", "--per-day", "5", "--timezone", "Mars/Base"
    )
    assert "--warmup" in cli.error("caps", "set", "default", "--warmup", "20,,40")
    assert "--per-day -3" in cli.error("caps", "set", "default", "--per-day", "-3")
    assert "--warmup-start" in cli.error(
        "caps", "set", "default", "--per-day", "5", "--warmup-start", "May 1"
    )
    assert "no cap for 15550000000" in cli.error("caps", "set", "default")
    assert "WAHA has no session 'nope'" in cli.error("caps", "set", "nope", "--per-day", "5")
    no_me = cli.error("caps", "set", "unlinked", "--per-day", "5")
    assert "session 'unlinked' shows no number yet" in no_me
    assert "needs 7 to 15" in cli.error("caps", "set", "+1 2", "--per-day", "5")
    assert "+4915112345678 has no caps" in cli.error("caps", "clear", "+4915112345678")
    assert cli.json("caps", "show") == []  # nothing was written
