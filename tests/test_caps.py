"""Per-number caps and warm-up (issue 17): the rules (pacing.Caps), the count and the check
in the transaction that reserves a send, several stores and processes sharing one cap, a
campaign waiting at its cap and going on, and the estimate that knows them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from engine_helpers import (
    FakeClock,
    fast_config,
    make_campaign,
    module_simulator,
    raw_rows,
    reset_simulator,
    run_to_end,
)

from waha_tui import events as ev
from waha_tui.errors import UserError, said
from waha_tui.history import Kind
from waha_tui.pacing import Caps, CapUse, Pacing, check_zone, parse_warmup
from waha_tui.simulator import SimulatorServer
from waha_tui.status import CampaignStatus, RecipientStatus
from waha_tui.store import CapReached, Outcome, SendCount, Store
from waha_tui.waha import WahaClient

S = CampaignStatus
RS = RecipientStatus
NUMBER = "15550000000"  # the simulator's sessions' me.id
BERLIN = "Europe/Berlin"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# -- the rules ---------------------------------------------------------------------------


def test_the_day_ends_at_midnight_in_the_caps_zone_whatever_the_clock_change() -> None:
    caps = Caps(per_day=10, zone=BERLIN)
    # 23:30 UTC on 1 June is 01:30 in Berlin (summer time): the Berlin day began at 22:00 UTC.
    at = utc(2026, 6, 1, 23, 30)
    assert caps.day_start(at) == utc(2026, 6, 1, 22)
    assert caps.day_end(at) == utc(2026, 6, 2, 22)
    # The spring change: that day has 23 hours, the autumn one 25.
    spring = utc(2026, 3, 29, 12)
    assert caps.day_end(spring) - caps.day_start(spring) == timedelta(hours=23)
    autumn = utc(2026, 10, 25, 12)
    assert caps.day_end(autumn) - caps.day_start(autumn) == timedelta(hours=25)
    tokyo = Caps(per_day=10, zone="Asia/Tokyo")
    assert tokyo.day_end(utc(2026, 6, 1, 14, 59)) == utc(2026, 6, 1, 15)  # 00:00 JST


def test_hours_are_clock_hours_of_the_zone_even_on_the_half_hour() -> None:
    kolkata = Caps(per_hour=5, zone="Asia/Kolkata")  # UTC+05:30
    at = utc(2026, 6, 1, 10, 10)  # 15:40 there
    assert kolkata.hour_start(at) == utc(2026, 6, 1, 9, 30)
    assert kolkata.hour_end(at) == utc(2026, 6, 1, 10, 30)
    # The hour of the spring change in Berlin: 01:00-02:00 CET, then 03:00 CEST.
    berlin = Caps(per_hour=5, zone=BERLIN)
    assert berlin.hour_end(utc(2026, 3, 29, 0, 30)) == utc(2026, 3, 29, 1)


def test_the_warm_up_schedule_day_by_day() -> None:
    start = Caps(zone=BERLIN).day_of(date(2026, 5, 4))
    caps = Caps(per_day=100, zone=BERLIN, warmup=(20, 40, 80, 160), warmup_start=start)
    noon = [utc(2026, 5, 3 + d, 10) for d in range(7)]  # the day before, then days 1-6
    assert [caps.warmup_day(t) for t in noon] == [1, 1, 2, 3, 4, None, None]
    # The plan's entries, never above per_day; after the plan, per_day.
    assert [caps.day_cap(t) for t in noon] == [20, 20, 40, 80, 100, 100, 100]
    # Day 2 begins at midnight in Berlin (22:00 UTC the evening before), not at 00:00 UTC.
    assert caps.day_cap(utc(2026, 5, 4, 21, 59)) == 20
    assert caps.day_cap(utc(2026, 5, 4, 22, 0)) == 40
    no_day_cap = Caps(zone="UTC", warmup=(5, 10), warmup_start=utc(2026, 5, 4))
    assert [no_day_cap.day_cap(utc(2026, 5, 4 + d, 1)) for d in range(3)] == [5, 10, None]


def test_a_cap_reached_says_which_when_it_lifts_and_masks_the_number() -> None:
    caps = Caps(per_hour=30, per_day=200, zone=BERLIN)
    at = utc(2026, 6, 1, 12, 20)  # 14:20 in Berlin
    assert caps.blocked(at, 29, 199) is None
    hour = caps.blocked(at, 30, 50, "4915112345678")
    assert hour is not None and hour.until == utc(2026, 6, 1, 13)
    assert hour.reason() == (
        "cap of 30/hour reached on +49…5678: next message at 15:00 (Europe/Berlin)"
    )
    day = caps.blocked(at, 30, 200, "4915112345678")  # both: the day's, the longer wait
    assert day is not None and day.until == utc(2026, 6, 1, 22)
    assert day.reason() == (
        "cap of 200/day reached on +49…5678: next message at 00:00 (Europe/Berlin)"
    )
    plan = Caps(zone=BERLIN, warmup=(20, 40), warmup_start=utc(2026, 5, 30, 22))
    hit = plan.blocked(at, 0, 40, "4915112345678")
    assert hit is not None and "cap of 40/day (warm-up day 2 of 2)" in hit.reason()


def test_bad_zones_and_warm_up_plans_are_one_clear_line() -> None:
    assert check_zone("Asia/Tokyo") == "Asia/Tokyo"
    for bad in ("Mars/Olympus", "", "../etc/passwd"):
        with pytest.raises(UserError) as zone:
            check_zone(bad)
        assert said(str(zone.value)).startswith("--timezone ")
    assert parse_warmup("20, 40,80") == (20, 40, 80)
    with pytest.raises(UserError) as plan:
        parse_warmup("20,x,80")
    assert "day 2 ('x')" in said(str(plan.value))
    with pytest.raises(UserError):
        parse_warmup("20,0")


def test_the_estimate_follows_the_caps() -> None:
    pacing = Pacing(30, 60)
    at = utc(2026, 6, 1, 8)  # 10:00 in Berlin
    free = pacing.estimate(1000)
    assert free.seconds_left < 86400  # ~12.6 h at 45.5 s a message
    day = CapUse(NUMBER, Caps(per_day=200, zone=BERLIN), 0, 0, at)
    # 200 today, then 200 a day: the 1000th goes on the fourth day after today, ~2.5 h
    # after midnight (200 take 2.5 h at 45.5 s each); today began at 10:00.
    capped = pacing.estimate(1000, caps=day)
    assert capped.seconds_left == pytest.approx((3 * 24 + 14 + 2.53) * 3600, rel=0.01)
    # What was sent today counts: 200 already sent today is a day more.
    spent = pacing.estimate(1000, caps=CapUse(NUMBER, day.caps, 0, 200, at))
    assert spent.seconds_left - capped.seconds_left > 0.5 * 86400
    # An hourly cap well under the pace: ~10 an hour.
    hourly = pacing.estimate(100, caps=CapUse(NUMBER, Caps(per_hour=10, zone=BERLIN), 0, 0, at))
    assert 9 * 3600 < hourly.seconds_left < 10 * 3600
    # The warm-up holds a new number back more than its normal cap.
    plan = Caps(per_day=200, zone=BERLIN, warmup=(20, 40, 80), warmup_start=at)
    warm = pacing.estimate(1000, caps=CapUse(NUMBER, plan, 0, 0, at))
    assert warm.seconds_left > capped.seconds_left + 2 * 86400
    # A cap reached now: the one message left waits for the next hour.
    blocked = pacing.estimate(1, caps=CapUse(NUMBER, Caps(per_hour=10, zone="UTC"), 10, 10, at))
    assert blocked.seconds_left == pytest.approx(3600 + 0.5)


# -- the store: the count and the check in one transaction --------------------------------


def claimed(store: Store, owner: str, n: int = 5, session: str = "default") -> tuple[int, list]:
    cid = make_campaign(store, n, session=session)
    store.claim(cid, owner, 60)
    return cid, store.recipients(cid)


def test_the_count_and_the_check_are_the_mark_s_transaction(store: Store, db_target: str) -> None:
    at = utc(2026, 6, 1, 12)
    store.set_caps(NUMBER, per_hour=2, per_day=None, zone="UTC", warmup=None, warmup_start=None)
    cid, recs = claimed(store, "me:1:a")
    count = SendCount(NUMBER, at)
    for r in recs[:2]:
        store.commit_progress(
            cid, [], owner="me:1:a", lease_seconds=60, sending=(r.id, None), count=count
        )
    # The third: refused, but the outcome riding in the same transaction is written.
    with pytest.raises(CapReached) as capped:
        store.commit_progress(
            cid,
            [Outcome(recs[0].id, 0, RS.SENT, message_id="m0")],
            owner="me:1:a",
            lease_seconds=60,
            sending=(recs[2].id, None),
            count=count,
        )
    assert capped.value.hit.until == utc(2026, 6, 1, 13)
    assert capped.value.campaign.sent == 1
    rows = raw_rows(
        db_target,
        "SELECT position, status FROM recipient WHERE campaign_id = :c ORDER BY position",
        c=cid,
    )
    assert [s for _, s in rows] == ["sent", "sending", "pending", "pending", "pending"]
    assert raw_rows(db_target, "SELECT count(*) FROM send_log WHERE number = :n", n=NUMBER) == [
        (2,)
    ]
    # The next hour it goes, counted in the same commit that marks it.
    store.commit_progress(
        cid,
        [],
        owner="me:1:a",
        lease_seconds=60,
        sending=(recs[2].id, None),
        count=SendCount(NUMBER, at + timedelta(hours=1)),
    )
    assert raw_rows(db_target, "SELECT count(*) FROM send_log") == [(3,)]
    assert store.recipients(cid)[2].status == RS.SENDING
    # A number without caps is counted, never refused.
    other = SendCount("4915112345678", at)
    store.commit_progress(
        cid, [], owner="me:1:a", lease_seconds=60, sending=(recs[3].id, None), count=other
    )
    uses = store.cap_uses(at=at + timedelta(hours=1, minutes=5))
    assert list(uses) == [NUMBER] and (uses[NUMBER].in_hour, uses[NUMBER].in_day) == (1, 3)


def test_pipelined_sends_are_counted_as_written_and_old_rows_pruned(
    store: Store, db_target: str
) -> None:
    at = utc(2026, 6, 1, 12)
    cid, recs = claimed(store, "me:1:a")
    with store.write() as conn:
        conn.exec_driver_sql(
            "INSERT INTO send_log (number, at, campaign_id) VALUES ('1', '2026-05-01 00:00:00', 1)"
        )
    store.commit_progress(
        cid,
        [
            Outcome(recs[0].id, 0, RS.SENT, "m0", attempted=True),
            Outcome(recs[1].id, 1, RS.FAILED, attempted=True),
        ],
        owner="me:1:a",
        lease_seconds=60,
        count=SendCount(NUMBER, at),
    )
    assert raw_rows(db_target, "SELECT number, campaign_id FROM send_log") == [(NUMBER, cid)]


def test_two_stores_sharing_the_database_never_exceed_a_cap(db_target: str) -> None:
    """Two Store objects (two processes' worth of connections) reserve sends from one number
    at once, each for its own campaign: exactly the cap goes through."""
    stores = [Store(db_target) for _ in range(2)]
    try:
        stores[0].set_caps(
            NUMBER, per_hour=None, per_day=15, zone="UTC", warmup=None, warmup_start=None
        )
        runs = [claimed(st, f"host{i}:1:a", 20, session=f"s{i}") for i, st in enumerate(stores)]
        at = utc(2026, 6, 1, 12)
        marked = [0, 0]
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def reserve(i: int) -> None:
            st, (cid, recs) = stores[i], runs[i]
            try:
                for r in recs:
                    barrier.wait()  # both at once, each round
                    try:
                        st.commit_progress(
                            cid,
                            [],
                            owner=f"host{i}:1:a",
                            lease_seconds=60,
                            sending=(r.id, None),
                            count=SendCount(NUMBER, at),
                        )
                        marked[i] += 1
                    except CapReached:
                        pass
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=reserve, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert sum(marked) == 15 and min(marked) > 0, marked
        assert raw_rows(db_target, "SELECT count(*) FROM recipient WHERE status = 'sending'") == [
            (15,)
        ]
        assert raw_rows(db_target, "SELECT count(*) FROM send_log") == [(15,)]
    finally:
        for st in stores:
            st.close()


# -- the runner: waiting at the cap --------------------------------------------------------


@pytest.fixture(scope="module")
def module_server() -> Iterator[SimulatorServer]:
    yield from module_simulator()


@pytest.fixture
def sim_server(module_server: SimulatorServer) -> SimulatorServer:
    return reset_simulator(module_server)


def sends_at(db: str) -> list[datetime]:
    found = raw_rows(db, "SELECT at FROM send_log ORDER BY at, id")
    return [v if isinstance(v, datetime) else datetime.fromisoformat(v) for (v,) in found]


async def test_a_campaign_waits_at_its_cap_running_and_goes_on_after_the_hour(
    store: Store, client: WahaClient, sim_server: SimulatorServer, db_target: str
) -> None:
    store.set_caps(NUMBER, per_hour=2, per_day=None, zone=BERLIN, warmup=None, warmup_start=None)
    cid = make_campaign(store, 5)
    seen: list[tuple[str, str | None, int]] = []

    def during(seconds: float) -> None:
        if seconds > 60:  # a cap's wait, not a pacing one
            c = store.get_campaign(cid)
            seen.append((c.status, c.waiting_for, len(sim_server.state.sent())))

    clock = FakeClock(during, wall=utc(2026, 6, 1, 12, 40))  # 14:40 in Berlin
    end, _ = await run_to_end(store, client, cid, fast_config(clock, cap_recheck=10_000.0))
    assert isinstance(end, ev.Completed) and end.sent == 5
    # 2 in the 14:00 hour, 2 in the 15:00 one, the last at 16:00, each wait to the hour.
    reason = "cap of 2/hour reached on +1…0000: next message at {} (Europe/Berlin)"
    assert seen == [
        (S.RUNNING, reason.format("15:00"), 2),
        (S.RUNNING, reason.format("16:00"), 4),
    ]
    hours = [t.replace(tzinfo=None) - datetime(2026, 6, 1, 12, 40) for t in sends_at(db_target)]
    assert [round(h.total_seconds() / 60) for h in hours] == [0, 0, 20, 20, 80]
    # Recorded once per cap reached; cleared once it lifted.
    waits = [e.detail for e in store.events(cid) if e.kind == Kind.WAITING]
    assert waits == [reason.format("15:00"), reason.format("16:00")]
    assert store.get_campaign(cid).waiting_for is None


async def test_the_day_ends_at_midnight_in_the_caps_zone_for_the_runner(
    store: Store, client: WahaClient, db_target: str
) -> None:
    store.set_caps(
        NUMBER, per_hour=None, per_day=2, zone="Asia/Tokyo", warmup=None, warmup_start=None
    )
    cid = make_campaign(store, 3)
    clock = FakeClock(wall=utc(2026, 6, 1, 14, 30))  # 23:30 in Tokyo
    end, _ = await run_to_end(store, client, cid, fast_config(clock, cap_recheck=10_000.0))
    assert isinstance(end, ev.Completed) and end.sent == 3
    assert [t.replace(tzinfo=UTC) for t in sends_at(db_target)][-1] == utc(2026, 6, 1, 15)
    assert 1800.0 in clock.waits
    waits = [e.detail for e in store.events(cid) if e.kind == Kind.WAITING]
    assert waits == ["cap of 2/day reached on +1…0000: next message at 00:00 (Asia/Tokyo)"]


async def test_the_warm_up_lets_more_through_day_by_day(
    store: Store, client: WahaClient, db_target: str
) -> None:
    wall = utc(2026, 6, 1, 6)
    store.set_caps(
        NUMBER, per_hour=None, per_day=3, zone="UTC", warmup=(1, 2), warmup_start=utc(2026, 6, 1)
    )
    cid = make_campaign(store, 8)
    clock = FakeClock(wall=wall)
    end, _ = await run_to_end(store, client, cid, fast_config(clock, cap_recheck=100_000.0))
    assert isinstance(end, ev.Completed) and end.sent == 8
    days = [t.date().day for t in sends_at(db_target)]
    assert days == [1, 2, 2, 3, 3, 3, 4, 4]


async def test_a_cap_raised_during_the_wait_lets_the_campaign_go_on_at_once(
    store: Store, client: WahaClient, db_target: str
) -> None:
    store.set_caps(NUMBER, per_hour=None, per_day=1, zone="UTC", warmup=None, warmup_start=None)
    cid = make_campaign(store, 3)

    def during(seconds: float) -> None:
        if seconds == 30.0:
            store.set_caps(
                NUMBER, per_hour=None, per_day=5, zone="UTC", warmup=None, warmup_start=None
            )

    clock = FakeClock(during, wall=utc(2026, 6, 1, 6))
    end, _ = await run_to_end(store, client, cid, fast_config(clock, cap_recheck=30.0))
    assert isinstance(end, ev.Completed) and end.sent == 3
    assert max(sends_at(db_target)).replace(tzinfo=UTC) < utc(2026, 6, 1, 7)


async def test_the_runner_keeps_to_the_estimate(store: Store, client: WahaClient) -> None:
    """The estimate and the runner's waits follow the one rule: 10 messages 100 s apart
    at 3 an hour end when the estimate said."""
    caps = Caps(per_hour=3, zone="UTC")
    store.set_caps(NUMBER, per_hour=3, per_day=None, zone="UTC", warmup=None, warmup_start=None)
    cid = make_campaign(store, 10, delay_min=100.0, delay_max=100.0)
    wall = utc(2026, 6, 1, 6, 10)
    clock = FakeClock(wall=wall)
    end, _ = await run_to_end(store, client, cid, fast_config(clock, cap_recheck=100_000.0))
    assert isinstance(end, ev.Completed)
    took = (clock.wall() - wall).total_seconds()
    said_before = caps.span(10, wall, 100.0)
    assert took == pytest.approx(said_before, abs=1.0)
    assert took == 2 * 3600 + 50 * 60  # 3 by 06:13:20, 3 from 07:00, 3 from 08:00, 09:00
