"""Rate and time: the one estimate (pacing.Estimate), the stored next message time, and the
dashboard's countdown, ETA and rate cells."""

from __future__ import annotations

import random
import statistics
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from engine_helpers import FakeClock, fast_config, make_campaign, run_to_end
from textual.pilot import Pilot

from tests.tui_helpers import Rig, make_rig, wait_for
from waha_tui import events as ev
from waha_tui.models import utcnow
from waha_tui.pacing import SEND_SECONDS, Pacing
from waha_tui.simulator import SimulatorServer
from waha_tui.status import CampaignStatus
from waha_tui.store import Store
from waha_tui.tui.format import due_cell, duration, eta_cell, per_minute, rate_cell, rough
from waha_tui.tui.screens.main import MainScreen
from waha_tui.tui.widgets.keyed_table import KeyedTable
from waha_tui.waha import WahaClient

S = CampaignStatus


# -- the estimate ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "pacing",
    [
        Pacing(30, 60),
        Pacing(5, 10, break_every=4, break_seconds=120),
        Pacing(5, 10, break_every=4, break_seconds=60, break_max=300),  # a break's range
        Pacing(20, 40, typing=True),
        Pacing(0, 0),
    ],
)
def test_the_estimate_agrees_with_the_waits_the_runner_draws(pacing: Pacing) -> None:
    """The ETA and rate come from the same rules the runner waits by: the mean of many
    drawn waits (and typing) is the estimate's gap."""
    rng = random.Random(7)
    text = "Hello Maria, our spring offer is here: 20% off everything until Sunday."
    gaps = [
        pacing.delay_after(n, rng) + pacing.typing_seconds(text, rng) + SEND_SECONDS
        for n in range(1, 20_001)
    ]
    mean = statistics.fmean(gaps)
    assert pacing.mean_gap(len(text)) == pytest.approx(mean, rel=0.02)
    est = pacing.estimate(101, text_length=len(text))
    assert est.per_minute == pytest.approx(60 / mean, rel=0.02)
    # The next goes now, then 100 gaps; a wait under way adds what is left of it.
    assert est.seconds_left == pytest.approx(SEND_SECONDS + 100 * mean, rel=0.02)
    waiting = pacing.estimate(101, next_in=12.0, text_length=len(text))
    assert waiting.seconds_left == pytest.approx(est.seconds_left + 12.0)
    assert pacing.estimate(0).seconds_left == 0


def test_durations_read_short_and_estimates_no_finer_than_they_are() -> None:
    assert [duration(s) for s in (0, 42.2, 59.5, 60, 305, 3600, 7500, 90000, 9e6)] == [
        "0s",
        "43s",
        "1m00s",  # rounded up: a countdown never says 0 while something is still due
        "1m00s",
        "5m05s",
        "1h00m",
        "2h05m",
        "1d01h",
        "105d",
    ]
    assert [rough(s) for s in (30, 61, 1499, 7500)] == ["<1m", "~2m", "~25m", "~2h05m"]
    rates = (1.333, 120.4, 4617.0, 12_480.0, 480_000.0, 2e6)
    shown_as = ["1.3/min", "120/min", "4.6k/min", "12k/min", "480k/min", ">1M/min"]
    assert [per_minute(r) for r in rates] == shown_as
    sweep = [0.01 * 1.07**n for n in range(300)]  # 0.01 to beyond 10 million a minute
    assert max(len(per_minute(r)) for r in sweep) <= 8  # the Rate column: never cut


def test_cells_by_status(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    try:
        cid = make_campaign(store, 100, delay_min=30.0, delay_max=60.0)
        now = utcnow()
        c = store.get_campaign(cid)
        # Scheduled for later: when it starts; due now: "due".
        later = c.model_copy(update={"scheduled_at": now + timedelta(hours=2, seconds=30)})
        assert due_cell(later, now).plain == "2h01m"
        assert due_cell(c.model_copy(update={"scheduled_at": now}), now).plain == "due"
        # Running, 40 sent, waiting 43 s for the next: the countdown, what is left.
        running = c.model_copy(
            update={
                "status": S.RUNNING,
                "next_index": 40,
                "sent": 40,
                "next_send_at": now + timedelta(seconds=42.4),
            }
        )
        assert due_cell(running, now).plain == "43s"
        assert due_cell(running, now + timedelta(seconds=43)).plain == "now"  # sending
        assert due_cell(running.model_copy(update={"waiting_for": "session"}), now).plain == (
            "wait"
        )
        assert eta_cell(running, now).plain == rough(42.4 + SEND_SECONDS + 59 * 45.5)
        assert rate_cell(running).plain == "1.3/min"
        # Ended: no countdown, no ETA; the rate it really averaged.
        done = running.model_copy(
            update={
                "status": S.COMPLETED,
                "next_index": 100,
                "sent": 90,
                "failed": 10,
                "started_at": now - timedelta(minutes=50),
                "completed_at": now,
            }
        )
        assert (due_cell(done, now).plain, eta_cell(done, now).plain) == ("-", "-")
        assert rate_cell(done).plain == "2.0/min"
    finally:
        store.close()


# -- the stored next message time ------------------------------------------------------


async def test_the_runner_stores_when_its_next_message_goes(
    store: Store, sim_server: SimulatorServer
) -> None:
    """Every host's dashboard counts down to the same time: it is in the database while
    the run waits (and only waits worth a countdown are written)."""
    seen: list[float] = []

    def during_wait(seconds: float) -> None:
        stored = store.get_campaign(cid).next_send_at
        assert stored is not None
        seen.append((stored - utcnow()).total_seconds() - seconds)

    cid = make_campaign(store, 4, delay_min=20.0, delay_max=40.0)
    client = WahaClient(sim_server.url)
    try:
        end, _ = await run_to_end(store, client, cid, fast_config(FakeClock(during_wait)))
    finally:
        await client.aclose()
    assert isinstance(end, ev.Completed) and end.sent == 4
    assert len(seen) == 3  # one wait between each two messages
    # The stored time is the wait's end (give or take the test's own reads).
    assert all(-2.0 < off <= 0.01 for off in seen), seen


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    st = Store(tmp_path / "campaigns.db")
    yield st
    st.close()


# -- the dashboard -----------------------------------------------------------------------


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    rig = make_rig(tmp_path)
    yield rig
    await rig.service.aclose()


def table(pilot: Pilot) -> KeyedTable:
    return pilot.app.screen.query_one("#campaigns", KeyedTable)


def cell(pilot: Pilot, cid: int, key: str) -> str:
    return str(table(pilot).get_cell(str(cid), key))


async def test_at_80x24_the_next_message_counts_down_with_no_write(rig: Rig) -> None:
    """A campaign run by another host, waiting 90 s: the row counts down by itself (no
    database change), with its ETA and, under the table, the rate and time to go."""
    cid = rig.add("Spring sale", 100, status=S.RUNNING, done=40, delay=(30.0, 60.0))
    rig.force(
        cid,
        lease_owner="other-host:999:x",
        lease_until=utcnow() + timedelta(minutes=5),
        next_send_at=utcnow() + timedelta(seconds=90),
    )
    async with rig.app().run_test(size=(80, 24)) as pilot:
        screen = pilot.app.screen
        assert isinstance(screen, MainScreen)
        await wait_for(pilot, lambda: str(cid) in table(pilot).rows)
        labels = [str(c.label) for c in table(pilot).columns.values()]
        assert labels[-2:] == ["ETA", "Next in"]  # at 80 wide, beside the progress
        first = cell(pilot, cid, "due")
        assert first in ("1m30s", "1m29s", "1m28s")
        eta = cell(pilot, cid, "eta")
        assert eta.startswith("~") and eta.endswith("m")
        await wait_for(pilot, lambda: cell(pilot, cid, "due") != first, timeout=3)
        second = cell(pilot, cid, "due")
        assert int(second[2:4]) < int(first[2:4])  # it went down, by the clock alone
        info = str(screen.query_one("#row-info").render())
        assert "next message in" in info and "/min" in info and "to go" in info


async def test_a_finished_run_shows_its_real_rate(rig: Rig) -> None:
    cid = rig.add("Quick", 3)
    async with rig.app().run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: str(cid) in table(pilot).rows)
        await rig.service.start(cid)
        await wait_for(pilot, lambda: "Completed" in cell(pilot, cid, "status"))
        assert cell(pilot, cid, "due") == "-" and cell(pilot, cid, "eta") == "-"
        assert cell(pilot, cid, "rate").endswith("/min")


async def test_a_scheduled_campaign_says_when_it_starts_under_the_table(rig: Rig) -> None:
    later = rig.add("Tomorrow", 3)
    rig.force(later, scheduled_at=utcnow() + timedelta(hours=2, minutes=5))
    async with rig.app().run_test(size=(80, 24)) as pilot:
        screen = pilot.app.screen
        await wait_for(pilot, lambda: str(later) in table(pilot).rows)
        await wait_for(
            pilot, lambda: "starts in 2h0" in str(screen.query_one("#row-info").render())
        )
        assert cell(pilot, later, "due").startswith("2h0")
