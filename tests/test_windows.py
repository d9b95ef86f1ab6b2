"""Send windows (issue 17): the rule in pacing.SendWindow (inside or not, when it opens,
across midnight, DST changes, days of the week), the runner waiting outside it with the
campaign Running, pause and resume while it waits, the estimate counting its closures, the
long breaks' range, sendSeen before typing, and the CLI's flags."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from engine_helpers import FakeClock, fast_config, make_campaign, phone, run_to_end
from textual.widgets import Static

from tests.test_cli import Cli
from tests.test_tui import shown
from tests.tui_helpers import Rig, make_rig, wait_for
from waha_tui import events as ev
from waha_tui.errors import UserError
from waha_tui.models import utcnow
from waha_tui.pacing import (
    SEND_SECONDS,
    Pacing,
    SendWindow,
    check_zone,
    local_zone,
    parse_break,
    parse_days,
    parse_window,
)
from waha_tui.runner import RunnerPool
from waha_tui.simulator import SimState, SimulatorServer
from waha_tui.status import CampaignStatus
from waha_tui.store import Store
from waha_tui.tui.format import due_cell, estimate, reason_cell
from waha_tui.tui.screens.details import DetailsScreen
from waha_tui.tui.screens.main import MainScreen
from waha_tui.tui.widgets.keyed_table import KeyedTable
from waha_tui.waha import WahaClient

S = CampaignStatus
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def window(hours: str, zone: str = "Europe/Berlin", days: str | None = None) -> SendWindow:
    found = SendWindow.of(
        SimpleNamespace(send_window=parse_window(hours), window_days=days, timezone=zone)
    )
    assert found is not None
    return found


def at(zone: ZoneInfo, *fields: int, fold: int = 0) -> datetime:
    """A wall-clock time in `zone`, as UTC."""
    return datetime(*fields, tzinfo=zone, fold=fold).astimezone(UTC)  # type: ignore[misc]


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)  # type: ignore[misc]


# -- the rule ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "days", "moment", "opens"),
    [
        # Monday 2026-03-02: inside, before, after (the next morning).
        ("09:00-20:00", None, at(BERLIN, 2026, 3, 2, 12, 0), None),
        ("09:00-20:00", None, at(BERLIN, 2026, 3, 2, 8, 59), at(BERLIN, 2026, 3, 2, 9, 0)),
        ("09:00-20:00", None, at(BERLIN, 2026, 3, 2, 20, 0), at(BERLIN, 2026, 3, 3, 9, 0)),
        # Weekdays only: Friday evening and Saturday wait for Monday.
        ("09:00-20:00", "mon-fri", at(BERLIN, 2026, 3, 6, 21, 0), at(BERLIN, 2026, 3, 9, 9, 0)),
        ("09:00-20:00", "mon-fri", at(BERLIN, 2026, 3, 7, 12, 0), at(BERLIN, 2026, 3, 9, 9, 0)),
        ("09:00-20:00", "mon,wed,fri", at(BERLIN, 2026, 3, 3, 10, 0), at(BERLIN, 2026, 3, 4, 9)),
        # Across midnight: the night belongs to the day it opens on.
        ("22:00-06:00", None, at(BERLIN, 2026, 3, 2, 23, 30), None),
        ("22:00-06:00", None, at(BERLIN, 2026, 3, 3, 3, 0), None),
        ("22:00-06:00", None, at(BERLIN, 2026, 3, 3, 6, 0), at(BERLIN, 2026, 3, 3, 22, 0)),
        ("22:00-06:00", "fri", at(BERLIN, 2026, 3, 7, 5, 0), None),  # Saturday, Friday's night
        ("22:00-06:00", "fri", at(BERLIN, 2026, 3, 8, 5, 0), at(BERLIN, 2026, 3, 13, 22, 0)),
        # Spring forward in Berlin (2026-03-29, 02:00 -> 03:00): an opening at 02:30 is
        # the moment the clock jumps; a window wholly in the skipped hour is none that day.
        ("02:30-04:00", None, at(BERLIN, 2026, 3, 29, 0, 0), utc(2026, 3, 29, 1, 0)),
        ("02:00-02:30", None, at(BERLIN, 2026, 3, 29, 0, 0), at(BERLIN, 2026, 3, 30, 2, 0)),
        ("09:00-20:00", None, at(BERLIN, 2026, 3, 29, 1, 0), utc(2026, 3, 29, 7, 0)),
        # Fall back in Berlin (2026-10-25, 03:00 -> 02:00): 02:30 happens twice; the
        # window opens at the first, and the repeated hour is inside it.
        ("02:30-05:00", None, at(BERLIN, 2026, 10, 25, 1, 0), utc(2026, 10, 25, 0, 30)),
        ("02:30-05:00", None, utc(2026, 10, 25, 1, 40), None),  # 02:40 the second time
        # New York: spring forward 2026-03-08 (02:00 -> 03:00), fall back 2026-11-01.
        ("02:30-08:00", None, at(NEW_YORK, 2026, 3, 8, 1, 0), utc(2026, 3, 8, 7, 0)),
        ("09:00-17:00", None, at(NEW_YORK, 2026, 3, 8, 1, 0), utc(2026, 3, 8, 13, 0)),
        ("01:30-03:00", None, at(NEW_YORK, 2026, 11, 1, 0, 0), utc(2026, 11, 1, 5, 30)),
        ("09:00-17:00", None, at(NEW_YORK, 2026, 10, 31, 18, 0), utc(2026, 11, 1, 14, 0)),
    ],
)
def test_inside_or_when_it_opens(
    hours: str, days: str | None, moment: datetime, opens: datetime | None
) -> None:
    # New York's cases fall on its DST dates; the rest are Berlin's.
    local = moment.astimezone(NEW_YORK)
    ny = (local.year, local.month, local.day) in {(2026, 3, 8), (2026, 11, 1), (2026, 10, 31)}
    w = window(
        hours, "America/New_York" if ny else "Europe/Berlin", parse_days(days) if days else None
    )
    assert w.opens_at(moment) == opens
    if opens is None:
        assert w.interval(moment)[0] <= moment < w.interval(moment)[1]


def test_the_window_closes_by_the_clock_on_dst_days() -> None:
    # Fall back in New York: 01:30 (EDT, the first) to 03:00 (EST) is 2.5 hours long.
    w = window("01:30-03:00", "America/New_York")
    opens, closes = w.interval(at(NEW_YORK, 2026, 11, 1, 0, 0))
    assert (opens, closes) == (utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 8, 0))
    # Spring forward in Berlin: 01:00 to 04:00 is two hours long that day.
    w = window("01:00-04:00")
    opens, closes = w.interval(at(BERLIN, 2026, 3, 29, 0, 0))
    assert (closes - opens) == timedelta(hours=2)
    assert w.opens_at(closes - timedelta(seconds=1)) is None
    assert w.opens_at(closes) == at(BERLIN, 2026, 3, 30, 1, 0)


def test_what_the_wait_says() -> None:
    w = window("09:00-20:00")
    evening, night = at(BERLIN, 2026, 3, 2, 21, 0), at(BERLIN, 2026, 3, 3, 1, 0)
    assert w.waiting_for(at(BERLIN, 2026, 3, 3, 9, 0), night) == (
        "outside send window until 09:00 (Europe/Berlin)"
    )
    assert w.waiting_for(at(BERLIN, 2026, 3, 3, 9, 0), evening) == (
        "outside send window until Tue 09:00 (Europe/Berlin)"
    )
    assert window("09:00-20:00", days="mon,tue,wed,thu,fri").describe() == (
        "09:00-20:00 mon-fri (Europe/Berlin)"
    )


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("25:00-26:00", "'25:00' is not a time of day"),
        ("09:00-24:00", "'24:00' is not a time of day"),
        ("9-17", "'9' is not a time of day"),
        ("09:00", "is not HH:MM-HH:MM"),
        ("09:00-09:00", "has no length"),
    ],
)
def test_a_bad_window_is_refused_naming_the_flag(bad: str, says: str) -> None:
    with pytest.raises(UserError) as refused:
        parse_window(bad)
    assert str(refused.value).startswith(f"--window {bad!r}") and says in str(refused.value)


def test_days_zones_and_break_ranges_are_read_or_refused() -> None:
    assert parse_days("mon-fri") == "mon,tue,wed,thu,fri"
    assert parse_days("Fri-Mon") == "mon,fri,sat,sun"  # a range may wrap the week
    assert parse_days("sat, mon,wed") == "mon,wed,sat"
    for bad in ("funday", "mon-xyz", ""):
        with pytest.raises(UserError, match=r"^--days .* is not a day"):
            parse_days(bad)
    assert check_zone(" America/New_York ") == "America/New_York"
    for bad in ("Mars/Olympus", "../etc/passwd", ""):
        with pytest.raises(UserError, match=r"^--timezone .* is not an IANA time zone"):
            check_zone(bad)
    assert parse_break("600-1200") == (600.0, 1200.0)
    with pytest.raises(UserError, match=r"^--break '20-10': MIN is larger than MAX"):
        parse_break("20-10")


def test_the_machines_zone_comes_from_tz_or_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", ":America/New_York")
    assert local_zone() == "America/New_York"
    monkeypatch.setenv("TZ", "Europe/Berlin")
    assert local_zone() == "Europe/Berlin"
    # POSIX rules name no IANA zone: unknown, so a window asks for --timezone.
    monkeypatch.setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3")
    assert local_zone() is None


# -- long breaks -------------------------------------------------------------------------


def test_a_long_break_is_drawn_from_its_range() -> None:
    pacing = Pacing(0, 0, break_every=2, break_seconds=60, break_max=180)
    rng = random.Random(3)
    breaks = [pacing.delay_after(n, rng) for n in range(2, 4002, 2)]
    assert min(breaks) >= 60 and max(breaks) <= 180
    assert min(breaks) < 70 and max(breaks) > 170  # the whole range, not one length
    assert pacing.mean_gap() == pytest.approx(120 / 2 + SEND_SECONDS)
    # An old campaign's one length (break_max below it) is that length.
    assert Pacing(0, 0, break_every=2, break_seconds=60).break_range == (60, 60)


# -- the estimate ------------------------------------------------------------------------


def test_the_estimate_counts_the_time_the_window_is_closed() -> None:
    monday_nine = at(BERLIN, 2026, 3, 2, 9, 0)
    plain = Pacing(60, 60)
    one_hour = Pacing(60, 60, window=window("09:00-10:00"))
    # 130 messages a minute apart plus the sends: 2h10m of sending; in a daily hour, three
    # days: two closures of 23 hours each.
    sending = plain.estimate(130, now=monday_nine).seconds_left
    windowed = one_hour.estimate(130, now=monday_nine).seconds_left
    assert windowed == pytest.approx(sending + 2 * 23 * 3600)
    # Asked at night, it starts in the morning; waiting for it (next_in) counts the same.
    night = at(BERLIN, 2026, 3, 1, 22, 0)
    assert one_hour.estimate(130, now=night).seconds_left == pytest.approx(windowed + 11 * 3600)
    opens_in = 11 * 3600.0
    waiting = one_hour.estimate(130, now=night, next_in=opens_in).seconds_left
    assert waiting == pytest.approx(windowed + opens_in)


# -- the runner --------------------------------------------------------------------------


WINDOW_FIELDS: dict[str, Any] = {
    "send_window": "09:00-20:00",
    "window_days": "mon,tue,wed,thu,fri",
    "timezone": "Europe/Berlin",
}
FRIDAY_NIGHT = at(BERLIN, 2026, 3, 6, 21, 0)  # opens Monday 09:00: 60 hours later
MONDAY_NINE = at(BERLIN, 2026, 3, 9, 9, 0)


async def test_outside_its_window_the_run_waits_running_then_sends_in_order(
    store: Store, client: WahaClient, state: SimState
) -> None:
    seen: list[tuple[Any, ...]] = []

    def during(_seconds: float) -> None:
        c = store.get_campaign(cid)
        seen.append((c.status, c.waiting_for, c.next_send_at, len(state.sent()), clock.wall()))
        assert c.lease_until is not None and c.lease_until > utcnow()  # renewed meanwhile

    clock = FakeClock(during, wall=FRIDAY_NIGHT)
    cid = make_campaign(store, 3, **WINDOW_FIELDS)
    end, _ = await run_to_end(store, client, cid, fast_config(clock))
    assert isinstance(end, ev.Completed) and end.sent == 3
    says = "outside send window until Mon 09:00 (Europe/Berlin)"
    assert seen and all(s[:4] == (S.RUNNING, says, MONDAY_NINE, 0) for s in seen)
    assert all(s[4] < MONDAY_NINE for s in seen)  # nothing sent before it opened
    assert sum(clock.waits) == pytest.approx(60 * 3600)
    assert clock.wall() >= MONDAY_NINE
    assert [m.chat_id for m in state.sent()] == [f"{phone(i)}@c.us" for i in range(3)]
    history = [(e.kind, e.detail) for e in store.events(cid)]
    assert history.count(("waiting", says)) == 1
    # One wait, not one per poll_interval: the process's heartbeat (LeaseKeeper), not the
    # wait, renews the lease meanwhile and looks for a pause set elsewhere.
    assert len(seen) == 1
    done = store.get_campaign(cid)
    assert done.waiting_for is None and done.status == S.COMPLETED


async def test_inside_its_window_nothing_waits(store: Store, client: WahaClient) -> None:
    clock = FakeClock(wall=MONDAY_NINE + timedelta(hours=1))
    cid = make_campaign(store, 3, **WINDOW_FIELDS)
    end, _ = await run_to_end(store, client, cid, fast_config(clock))
    assert isinstance(end, ev.Completed) and clock.waits == []
    assert [e.kind for e in store.events(cid)].count("waiting") == 0


async def test_the_window_closing_mid_campaign_holds_the_next_recipient(
    store: Store, client: WahaClient, state: SimState
) -> None:
    """Two messages an hour apart fit before 20:00; the third waits for the morning."""
    sent_by_then: list[tuple[datetime, int]] = []
    clock = FakeClock(lambda _s: sent_by_then.append((clock.wall(), len(state.sent()))))
    clock.start = at(BERLIN, 2026, 3, 3, 18, 30)
    cid = make_campaign(store, 3, delay_min=3600.0, delay_max=3600.0, **WINDOW_FIELDS)
    end, _ = await run_to_end(store, client, cid, fast_config(clock))
    assert isinstance(end, ev.Completed) and end.sent == 3
    morning = at(BERLIN, 2026, 3, 4, 9, 0)
    assert clock.wall() == morning  # the third went at the opening, not before
    assert all(n <= 2 for when, n in sent_by_then if when < morning)


@pytest.mark.parametrize("how", ["pause here", "cancel here", "pause elsewhere"])
async def test_a_stop_while_it_waits_takes_effect_at_once(
    store: Store, client: WahaClient, state: SimState, how: str
) -> None:
    pools: list[RunnerPool] = []

    def stop(_seconds: float) -> None:
        if how == "pause elsewhere":  # the CLI or another dashboard: the store says it
            store.transition(cid, S.PAUSED, pause_reason="paused by the operator")
        else:
            status = S.CANCELLED if how.startswith("cancel") else S.PAUSED
            pools[0].request_stop(cid, status, "by the operator")

    clock = FakeClock(stop, wall=FRIDAY_NIGHT)
    cid = make_campaign(store, 3, **WINDOW_FIELDS)
    pool = RunnerPool(store, client, config=fast_config(clock))
    pools.append(pool)
    await pool.start(cid)
    end = await asyncio.wait_for(pool.wait(cid), 20)
    expected = ev.Cancelled if how.startswith("cancel") else ev.Paused
    assert isinstance(end, expected), end
    assert len(clock.waits) == 1  # the first poll of the wait, no more
    assert state.sent() == []
    camp = store.get_campaign(cid)
    assert camp.waiting_for is None and camp.next_index == 0


async def test_resumed_outside_its_window_it_waits_again(
    store: Store, client: WahaClient, state: SimState
) -> None:
    pools: list[RunnerPool] = []
    clock = FakeClock(
        lambda _s: pools[0].request_stop(cid, S.PAUSED, "paused by the operator"),
        wall=FRIDAY_NIGHT,
    )
    cid = make_campaign(store, 2, **WINDOW_FIELDS)
    pool = RunnerPool(store, client, config=fast_config(clock))
    pools.append(pool)
    await pool.start(cid)
    assert isinstance(await asyncio.wait_for(pool.wait(cid), 20), ev.Paused)
    # Resumed Saturday noon: still outside; it waits (Running) until Monday 09:00.
    clock.on_wait, clock.waits = None, []
    clock.start = at(BERLIN, 2026, 3, 7, 12, 0) - timedelta(seconds=clock.now - 1000)
    end, _ = await run_to_end(store, client, cid, fast_config(clock))
    assert isinstance(end, ev.Completed) and end.sent == 2
    assert sum(clock.waits) == pytest.approx(45 * 3600)
    waits = [e.detail for e in store.events(cid) if e.kind == "waiting"]
    assert waits == ["outside send window until Mon 09:00 (Europe/Berlin)"] * 2


async def test_the_estimate_agrees_with_the_runners_waits_across_closures(
    store: Store, client: WahaClient
) -> None:
    """91 messages 120-240 s apart in an hour a day: 4h30m of sending over five mornings.
    The estimate made before the start lands within half an hour of the real end."""
    clock = FakeClock(wall=MONDAY_NINE)
    cid = make_campaign(
        store,
        91,
        delay_min=120.0,
        delay_max=240.0,
        send_window="09:00-10:00",
        timezone="Europe/Berlin",
    )
    predicted = Pacing.of(store.get_campaign(cid)).estimate(91, now=MONDAY_NINE).seconds_left
    end, _ = await run_to_end(store, client, cid, fast_config(clock))
    assert isinstance(end, ev.Completed) and end.sent == 91
    took = (clock.wall() - MONDAY_NINE).total_seconds()
    assert took > 4 * 24 * 3600  # it did cross four closures
    assert abs(predicted - took) < 1800, (predicted, took)


async def test_send_seen_goes_before_typing_and_its_failure_costs_nothing(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = make_campaign(store, 2, typing=True, delay_min=2.0, delay_max=2.0)
    end, _ = await run_to_end(store, client, cid, fast_config(FakeClock()))
    assert isinstance(end, ev.Completed) and end.sent == 2
    chats = [f"{phone(i)}@c.us" for i in range(2)]
    assert state.seen == [("default", c) for c in chats]
    assert [t[2] for t in state.typing] == ["start", "stop", "start", "stop"]

    state.reset()
    with state.lock:
        state.faults.seen_status = 500
    again = make_campaign(store, 2, typing=True, delay_min=2.0, delay_max=2.0)
    end, _ = await run_to_end(store, client, again, fast_config(FakeClock()))
    assert isinstance(end, ev.Completed) and end.sent == 2  # not paused, not failed
    assert len(state.seen) == 2 and len(state.sent()) == 2


# -- the dashboard's cells ---------------------------------------------------------------


def test_the_next_cell_counts_down_to_the_window_and_the_line_says_why(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "c.db")
    try:
        cid = make_campaign(store, 10, delay_min=30.0, delay_max=60.0, **WINDOW_FIELDS)
        now = utcnow()
        c = store.get_campaign(cid).model_copy(
            update={
                "status": S.RUNNING,
                "waiting_for": "outside send window until 09:00 (Europe/Berlin)",
                "waiting_since": now,
                "next_send_at": now + timedelta(hours=3, minutes=4, seconds=30),
            }
        )
        assert due_cell(c, now).plain == "3h05m"
        assert reason_cell(c).plain.startswith("outside send window until 09:00 (Europe/Berlin)")
        est = estimate(c, now)
        assert est is not None and est.seconds_left > 3 * 3600  # the wait is in the ETA
        # A session wait has no end to count down to.
        session = c.model_copy(update={"waiting_for": "session 'default' is STARTING"})
        assert due_cell(session, now).plain == "wait"
    finally:
        store.close()


# -- the CLI -----------------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path, sim_server: SimulatorServer) -> Cli:
    csv = tmp_path / "people.csv"
    csv.write_text("phone,name\n+491511234567,Ana\n+491511234568,Bo\n", encoding="utf-8")
    return Cli(tmp_path / "campaigns.db", sim_server)


def test_create_show_edit_and_clone_carry_the_window_and_breaks(cli: Cli, tmp_path: Path) -> None:
    csv = str(tmp_path / "people.csv")
    cid = cli.create(
        *("--name", "Night", "--contacts", csv, "--message", "Hi {name}"),
        *("--window", "22:00-6:00", "--days", "mon-fri", "--timezone", "America/New_York"),
        *("--break-every", "50", "--break", "600-1200"),
    )
    shown = cli.json("campaign", "show", str(cid))
    assert (shown["window"], shown["days"], shown["timezone"]) == (
        "22:00-06:00",
        "mon,tue,wed,thu,fri",
        "America/New_York",
    )
    assert (shown["break_every"], shown["break"]) == (50, [600.0, 1200.0])
    text = cli.ok("campaign", "show", str(cid)).stdout
    assert "22:00-06:00 mon-fri (America/New_York)" in text and "600-1200 s" in text

    out = cli.ok("campaign", "edit", str(cid), "--window", "09:00-20:00", "--days", "any")
    assert "send window 22:00-06:00 → 09:00-20:00" in out.stdout
    assert "days mon,tue,wed,thu,fri → any" in out.stdout
    out = cli.ok("campaign", "edit", str(cid), "--timezone", "Europe/Berlin")
    assert "time zone America/New_York → Europe/Berlin" in out.stdout

    new = int(cli.ok("campaign", "clone", str(cid)).stdout.strip().splitlines()[-1])
    copy = cli.json("campaign", "show", str(new))
    for key in ("window", "days", "timezone", "break_every", "break"):
        assert copy[key] == cli.json("campaign", "show", str(cid))[key], key

    cli.ok("campaign", "edit", str(cid), "--window", "any")
    assert cli.json("campaign", "show", str(cid))["window"] is None


def test_the_default_zone_is_the_machines_or_it_is_asked_for(cli: Cli, tmp_path: Path) -> None:
    csv = str(tmp_path / "people.csv")
    base = ("--contacts", csv, "--message", "Hi", "--window", "09:00-17:00")
    made = cli.ok("campaign", "create", "--name", "A", *base, env={"TZ": "Asia/Jakarta"})
    cid = int(made.stdout.strip().splitlines()[-1])
    assert cli.json("campaign", "show", str(cid))["timezone"] == "Asia/Jakarta"
    said = cli.error("campaign", "create", "--name", "B", *base, env={"TZ": "XYZ+3"})
    assert said.startswith("error: this machine's time zone cannot be known")
    assert "give --timezone" in said


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (("--window", "25:00-26:00"), "--window '25:00-26:00': '25:00' is not a time of day"),
        (("--window", "09:00-09:00"), "--window '09:00-09:00' has no length"),
        (("--window", "9-17"), "--window '9-17': '9' is not a time of day"),
        (("--window", "09:00-17:00", "--timezone", "Mars/Base"), "--timezone 'Mars/Base'"),
        (("--window", "09:00-17:00", "--days", "funday"), "--days 'funday': 'funday' is not"),
        (("--days", "mon-fri"), "--days needs a --window"),
        (("--break-every", "50"), "--break-every needs --break MIN-MAX"),
        (("--break", "600-1200"), "--break needs --break-every N"),
        (("--break-every", "5", "--break", "9-1"), "--break '9-1': MIN is larger than MAX"),
    ],
)
def test_bad_pacing_flags_are_one_line_naming_the_flag(
    cli: Cli, tmp_path: Path, flags: tuple[str, ...], says: str
) -> None:
    csv = str(tmp_path / "people.csv")
    line = cli.error(
        "campaign", "create", "--name", "X", "--contacts", csv, "--message", "Hi", *flags
    )
    assert line.startswith(f"error: {says}"), line


# -- the dashboard, at 80x24 -------------------------------------------------------------


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    rig = make_rig(tmp_path)
    yield rig
    await rig.service.aclose()


async def test_the_dashboard_and_details_say_it_waits_for_its_window(rig: Rig) -> None:
    """A real run on the real clock, its window opening in two hours (UTC): the row stays
    Running, counts down to the opening, and says why under the table and in details."""
    now = datetime.now(UTC)
    opens = (now + timedelta(hours=2, minutes=1)).replace(second=0, microsecond=0)
    closes = opens + timedelta(hours=1)
    cid = rig.add("Night owls", 5)
    rig.force(cid, send_window=f"{opens:%H:%M}-{closes:%H:%M}", timezone="UTC")
    says = f"outside send window until {opens:%H:%M} (UTC)"
    async with rig.app().run_test(size=(80, 24)) as pilot:
        screen = pilot.app.screen
        assert isinstance(screen, MainScreen)
        await rig.service.start(cid)
        table = screen.query_one("#campaigns", KeyedTable)
        await wait_for(pilot, lambda: rig.store.get_campaign(cid).waiting_for == says)
        await wait_for(pilot, lambda: "Running" in str(table.get_cell(str(cid), "status")))
        await wait_for(pilot, lambda: str(table.get_cell(str(cid), "due")).startswith("2h0"))
        info = " ".join(str(screen.query_one("#row-info", Static).render()).split())
        assert says in info
        assert "to go" in info  # the ETA: at least the two hours until it opens
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, DetailsScreen))
        summary = pilot.app.screen.query_one("#details-summary", Static)
        await wait_for(pilot, lambda: "Waiting:" in " ".join(shown(summary).split()))
        text = " ".join(shown(summary).split())
        assert f"Waiting: {says}" in text
        assert f"Window {opens:%H:%M}-{closes:%H:%M} (UTC)" in text
        assert rig.sim.state.sent() == []
        await rig.service.pause(cid)
        end = await asyncio.wait_for(rig.service.wait(cid), 10)
        assert isinstance(end, ev.Paused)  # at once, though the window opens in hours


async def test_the_demo_has_a_campaign_waiting_for_its_window(tmp_path: Path) -> None:
    from waha_tui.demo import WINDOW_OPENS_IN, build_demo
    from waha_tui.tui.app import WahaTuiApp

    demo = await build_demo(tmp_path)
    store = demo.service.store
    try:
        [camp] = [c for c in store.list_campaigns() if c.send_window]
        w = SendWindow.of(camp)
        assert w is not None and w.zone == (local_zone() or "UTC")
        opens = w.opens_at(datetime.now(UTC))
        assert opens is not None  # closed now, opening within minutes
        assert timedelta(0) < opens - datetime.now(UTC) <= WINDOW_OPENS_IN
        # The dashboard's scheduler starts it: Running, waiting, saying until when.
        app = WahaTuiApp(demo.service, banner=demo.banner)
        async with app.run_test(size=(80, 24)) as pilot:
            cid = camp.id or 0
            await wait_for(
                pilot,
                lambda: (store.get_campaign(cid).waiting_for or "").startswith(
                    "outside send window until"
                ),
            )
            assert store.get_campaign(cid).status == S.RUNNING
            assert store.get_campaign(cid).sent == 0
    finally:
        await demo.service.stop_all("test over")
        await demo.aclose_listener()
        await demo.service.aclose()
        demo.close()
