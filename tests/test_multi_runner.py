"""Several hosts, one PostgreSQL: three `waha-tui run` processes share a dozen campaigns on
two WAHA sessions of the simulator; one runner is killed with SIGKILL mid-way. The same
on one SQLite file (several runners on one machine): no feature is one backend's only.

The simulator lives in this test process: its log of accepted messages is the truth about
what WhatsApp received. A sampler thread reads the campaign table the whole time, straight
through psycopg or sqlite3, to catch two campaigns of one session Running at once or a
campaign taken from an owner whose lease was still live.
"""

from __future__ import annotations

import collections
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from engine_helpers import raw_rows

from waha_tui.models import Campaign, utcnow
from waha_tui.simulator import SimState, Simulator, SimulatorServer
from waha_tui.store import NewRecipient, Store

SESSIONS = ("default", "second")
PER_SESSION = 6
PEOPLE = 10
LEASE = "1.5"
DEADLINE = 60.0


@pytest.fixture
def server() -> Iterator[SimulatorServer]:
    state = SimState(sessions={name: "WORKING" for name in SESSIONS})
    with SimulatorServer(Simulator(state)) as srv:
        yield srv


def chat(campaign: int, person: int) -> str:
    return f"49151{campaign:02d}{person:05d}@c.us"


def create_campaigns(db: str) -> dict[int, tuple[str, bool]]:
    """12 campaigns, due now, alternating sessions; the first of "second" (and every other
    one after) has auto-resume. Returns id -> (session, auto_resume)."""
    store = Store(db)
    made: dict[int, tuple[str, bool]] = {}
    try:
        for k in range(len(SESSIONS) * PER_SESSION):
            session = SESSIONS[k % 2]
            auto = session == "second" and k % 4 == 1
            people = [
                NewRecipient(chat(k, i).split("@")[0], chat(k, i), f"P{i}", {})
                for i in range(PEOPLE)
            ]
            camp = Campaign(
                name=f"c{k}",
                session=session,
                template_text=f"campaign {k} to {{name}}",
                scheduled_at=utcnow() - timedelta(seconds=len(SESSIONS) * PER_SESSION - k),
                delay_min=0.08,
                delay_max=0.08,
                auto_resume=auto,
            )
            made[store.create_campaign(camp, people)] = (session, auto)
    finally:
        store.close()
    return made


def _aware(value: datetime | str | None) -> datetime | None:
    """lease_until as psycopg (aware) or sqlite3 (naive UTC text) hands it back."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Sampler(threading.Thread):
    """Reads every campaign every 30 ms: (id, session, status, owner, live lease, reason)."""

    def __init__(self, db: str) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.samples: list[list[tuple]] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                now = datetime.now(UTC)
                found = raw_rows(
                    self.db,
                    "SELECT id, session, status, lease_owner, lease_until, pause_reason "
                    "FROM campaign ORDER BY id",
                )
                self.samples.append(
                    [
                        (cid, session, status, owner, (_aware(until) or now) > now, reason)
                        for cid, session, status, owner, until, reason in found
                    ]
                )
                time.sleep(0.03)
        except BaseException as exc:  # reported by the test, not lost in a thread
            self.error = exc

    def latest(self) -> dict[int, tuple]:
        while not self.samples:
            time.sleep(0.01)
        return {row[0]: row for row in self.samples[-1]}


def spawn_runner(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "waha_tui", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(
    what: str, check: Callable[[dict[int, tuple]], bool], sampler: Sampler, started: float
) -> None:
    while not check(sampler.latest()):
        assert sampler.error is None, sampler.error
        assert time.monotonic() - started < DEADLINE, f"timed out waiting for {what}"
        time.sleep(0.05)


def pid_of(owner: str | None) -> int | None:
    return int(owner.split(":")[-2]) if owner else None


def test_three_runners_one_killed_every_recipient_exactly_once(
    server: SimulatorServer, db_target: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    campaigns = create_campaigns(db_target)
    env = dict(os.environ)
    env.update(WAHA_URL=server.url, WAHA_TUI_DB=db_target, WAHA_TUI_LEASE_SECONDS=LEASE)
    env.pop("WAHA_API_KEY", None)
    sampler = Sampler(db_target)
    sampler.start()
    first_manual = min(c for c, (s, auto) in campaigns.items() if s == "default")
    first_auto = min(c for c, (s, auto) in campaigns.items() if s == "second")
    assert not campaigns[first_manual][1] and campaigns[first_auto][1]

    # The victim starts alone, so it claims the first campaign of each session: one the
    # operator must resume, one that resumes itself.
    victim = spawn_runner(env)
    survivors: list[subprocess.Popen] = []
    try:
        wait_for(
            "the first runner to claim both sessions",
            lambda rows: all(rows[c][2] == "Running" for c in (first_manual, first_auto)),
            sampler,
            started,
        )
        survivors = [spawn_runner(env) for _ in range(2)]
        while len(server.state.sent()) < 8:
            assert time.monotonic() - started < DEADLINE, "the runner never got going"
            time.sleep(0.02)
        rows = sampler.latest()
        assert {pid_of(rows[c][3]) for c in (first_manual, first_auto)} == {victim.pid}
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        killed_at = time.monotonic()
        sent_by_victim = len(server.state.sent())

        # The survivors let its lease lapse, then recover: Paused "interrupted" for the
        # manual one (the operator resumes it), Scheduled again for the auto one.
        wait_for(
            "the dead runner's campaign to be Paused as interrupted",
            lambda rows: (
                rows[first_manual][2] == "Paused" and "interrupted" in (rows[first_manual][5] or "")
            ),
            sampler,
            started,
        )
        assert time.monotonic() - killed_at >= float(LEASE) - 0.2  # not before the lease ran out
        resumed = subprocess.run(
            [sys.executable, "-m", "waha_tui", "campaign", "resume", str(first_manual), "--detach"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert resumed.returncode == 0, resumed.stderr
        wait_for(
            "every campaign to complete",
            lambda rows: all(row[2] == "Completed" for row in rows.values()),
            sampler,
            started,
        )
        for proc in survivors:
            proc.send_signal(signal.SIGTERM)
        for proc in survivors:
            _out, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err
            # Losing a claim to another runner is not worth a line.
            assert "already running" not in err and "busy" not in err, err
    finally:
        sampler.stop.set()
        for proc in [victim, *survivors]:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    sampler.join(5)
    assert sampler.error is None, sampler.error
    elapsed = time.monotonic() - started
    assert elapsed < DEADLINE

    # Every recipient got exactly one message, and the right one.
    sent = server.state.sent()
    delivered = collections.Counter(m.chat_id for m in sent)
    expected = {chat(k, i) for k in range(len(campaigns)) for i in range(PEOPLE)}
    assert set(delivered) == expected, "a recipient was skipped"
    assert max(delivered.values()) == 1, "a recipient got two messages"
    for m in sent:
        k = int(m.chat_id[5:7])
        assert m.text == f"campaign {k} to P{int(m.chat_id[7:12])}"
        assert m.session == SESSIONS[k % 2]
    assert 8 <= sent_by_victim < len(expected)

    counts = raw_rows(
        db_target,
        "SELECT count(*), sum(sent), sum(failed + unknown), min(next_index) FROM campaign "
        "WHERE status = 'Completed'",
    )
    assert counts == [(len(campaigns), len(expected), 0, PEOPLE)]

    # One campaign per WAHA session at a time: never two live leases on one session...
    owners: dict[int, list[int]] = collections.defaultdict(list)
    for rows_at in sampler.samples:
        live = collections.Counter(row[1] for row in rows_at if row[2] == "Running" and row[4])
        assert max(live.values(), default=0) <= 1, rows_at
        for row in rows_at:
            pid = pid_of(row[3])
            if pid is not None and (not owners[row[0]] or owners[row[0]][-1] != pid):
                owners[row[0]].append(pid)
        auto_row = next(row for row in rows_at if row[0] == first_auto)
        assert auto_row[2] != "Paused", "the auto-resume campaign waited for the operator"
    # ...and a campaign changed hands only from the dead runner.
    for cid, pids in owners.items():
        for before, after in itertools.pairwise(pids):
            assert before == victim.pid and after != victim.pid, (cid, pids)
    assert len(owners[first_manual]) == len(owners[first_auto]) == 2
    # The simulator agrees: per session, campaigns' messages never interleave; only the
    # two interrupted campaigns come back once more.
    for session in SESSIONS:
        labels = [m.chat_id[5:7] for m in sorted(server.state.sent(session), key=lambda m: m.at)]
        blocks = [k for i, k in enumerate(labels) if i == 0 or labels[i - 1] != k]
        assert len(blocks) <= PER_SESSION + 1, blocks
