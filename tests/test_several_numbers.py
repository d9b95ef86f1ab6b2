"""Several numbers per campaign (issue 17): its recipients dealt among its sessions by
weight, one run per session under the campaign's one claim, each with its own pacing; a
session that stops holds back its own share only; every recipient sent exactly once, through
the session fixed at its first attempt. The simulator over a real socket, the real store.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from engine_helpers import (
    FakeClock,
    fast_config,
    force_recipient,
    make_campaign,
    module_simulator,
    reset_simulator,
)

from waha_tui import events as ev
from waha_tui.errors import UserError
from waha_tui.runner import RunnerPool
from waha_tui.simulator import SimState, SimulatorServer
from waha_tui.spread import Spread, parse
from waha_tui.status import CampaignStatus, RecipientStatus
from waha_tui.store import ClaimLost, Store
from waha_tui.waha import WahaClient

S = CampaignStatus
RS = RecipientStatus


@pytest.fixture(scope="module")
def module_server() -> Iterator[SimulatorServer]:
    yield from module_simulator()


@pytest.fixture
def state(module_server: SimulatorServer) -> SimState:
    reset_simulator(module_server)
    module_server.state.add_session("second", "WORKING")
    return module_server.state


@pytest.fixture
async def client(module_server: SimulatorServer, state: SimState) -> AsyncIterator[WahaClient]:
    c = WahaClient(module_server.url)
    yield c
    await c.aclose()


def spread_campaign(store: Store, n: int, sessions: str, **fields: object) -> int:
    spread = parse(sessions)
    return make_campaign(store, n, session=spread.names[0], sessions=spread.stored(), **fields)


def sent_by_session(state: SimState) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m in state.sent():
        out.setdefault(m.session, []).append(m.chat_id)
    return out


async def run(store: Store, client: WahaClient, cid: int, **config: object) -> ev.Ended:
    pool = RunnerPool(store, client, config=fast_config(**config))
    await pool.start(cid)
    end = await asyncio.wait_for(pool.wait(cid), 30)
    assert end is not None
    return end


# -- the rule ----------------------------------------------------------------------------


def test_positions_are_dealt_by_weight_in_a_fixed_pattern() -> None:
    assert parse("a,b").pattern == ("a", "b")
    assert parse("a:3,b").pattern == ("a", "a", "b", "a")  # spread evenly, not a,a,a,b
    spread = parse("a:2,b:1,c:1")
    assert [spread.session_of(p) for p in range(8)] == list(spread.pattern * 2)
    assert spread.shares(10) == {"a": 5, "b": 3, "c": 2}
    assert sum(parse("x:7,y:5,z").shares(1001).values()) == 1001
    assert (spread.text(), parse("one").stored(), parse("one").multi) == ("a:2,b,c", None, False)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "session is empty"),
        ("a,,b", "an empty name between commas"),
        ("a:0", "the weight in 'a:0' must be a whole number from 1 to 100"),
        ("a:many", "the weight in 'a:many'"),
        ("a,b,a", "session 'a' is named twice"),
        ("a b", "'a b' is not a session name"),
    ],
)
def test_a_bad_session_list_is_refused_naming_the_part(text: str, says: str) -> None:
    with pytest.raises(UserError) as info:
        parse(text)
    assert says in str(info.value)


# -- a run -------------------------------------------------------------------------------


async def test_each_recipient_goes_once_through_its_share(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = spread_campaign(store, 9, "default:2,second")
    end = await run(store, client, cid)
    assert isinstance(end, ev.Completed) and (end.sent, end.total) == (9, 9)
    by = sent_by_session(state)
    recipients = store.recipients(cid)
    spread = Spread.of(store.get_campaign(cid))
    for rec in recipients:
        assert rec.status == RS.SENT
        assert rec.session == spread.session_of(rec.position)  # fixed at its attempt
        assert rec.chat_id in by[rec.session]
    assert (len(by["default"]), len(by["second"])) == (6, 3)
    assert Counter(m.chat_id for m in state.sent()).most_common(1)[0][1] == 1
    camp = store.get_campaign(cid)
    assert (camp.status, camp.next_index, camp.sent) == (S.COMPLETED, 9, 9)
    from waha_tui.tui.format import recipient_line

    # The details screen's line under the table says which number each went from.
    assert "via second" in recipient_line(recipients[1]).plain


async def test_each_session_keeps_its_own_pacing(
    store: Store, client: WahaClient, state: SimState
) -> None:
    # Two numbers at 10 s each: the campaign's waits are each lane's, 10 s apart on each.
    clock = FakeClock()
    cid = spread_campaign(store, 6, "default,second", delay_min=10.0, delay_max=10.0)
    end = await run(store, client, cid, clock=clock)
    assert isinstance(end, ev.Completed)
    # Three messages a lane: two gaps each, four in all (not five: the lanes do not queue).
    assert clock.waits.count(10.0) == 4


async def test_a_stopped_session_holds_back_its_share_only(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = spread_campaign(store, 10, "default,second", delay_min=1.0, delay_max=1.0)

    def on_wait(_: float) -> None:
        if len(state.sent("second")) == 2 and state.get("second").status == "WORKING":
            state.set_status("second", "STOPPED")

    end = await run(store, client, cid, clock=FakeClock(on_wait))
    assert isinstance(end, ev.Paused)
    assert "session 'second' is STOPPED" in end.reason
    assert "the other sessions' recipients are done" in end.reason
    # While the others went on, the campaign's row said which session waits, and why (its
    # history keeps every wait the row showed).
    waits = [e.detail or "" for e in store.events(cid) if e.kind == "waiting"]
    assert any("'second' is STOPPED" in w and "the other sessions go on" in w for w in waits)
    camp = store.get_campaign(cid)
    assert camp.status == S.PAUSED and camp.sent == 5 + 2
    pending = [r.position for r in store.recipients(cid) if r.status == RS.PENDING]
    assert pending == [5, 7, 9]  # second's share after its two
    # Never past a recipient left to send (a resume starts there); just after second's last
    # written one: whose the positions between are, the stored sessions say, not a guess.
    assert camp.next_index in (4, 5)
    # Back, and resumed: the rest of its share, each once.
    state.set_status("second", "WORKING")
    store.transition(cid, S.SCHEDULED, expect=(S.PAUSED,))
    end = await run(store, client, cid)
    assert isinstance(end, ev.Completed) and end.sent == 10
    sent = Counter(m.chat_id for m in state.sent())
    assert len(sent) == 10 and set(sent.values()) == {1}
    assert {r.session for r in store.recipients(cid)} == {"default", "second"}


async def test_a_recipients_session_is_the_one_of_its_first_attempt(
    store: Store, client: WahaClient, state: SimState
) -> None:
    # Position 0 is default's share; its first attempt went through second (an old
    # crash left it `sending` with an id): it is settled through second, never default.
    cid = spread_campaign(store, 4, "default,second")
    force_recipient(store, cid, 0, session="second", status=RS.SENDING, message_id="true_x_1")
    end = await run(store, client, cid)
    assert isinstance(end, ev.Completed)
    first = store.recipients(cid)[0]
    assert first.session == "second"
    assert first.chat_id in sent_by_session(state)["second"]
    assert first.chat_id not in sent_by_session(state).get("default", [])


async def test_one_campaign_per_session_holds_across_lists(
    store: Store, client: WahaClient, state: SimState
) -> None:
    multi = spread_campaign(store, 2, "default,second")
    single = make_campaign(store, 2, session="second")
    store.claim(multi, "one:1", 30)
    with pytest.raises(ClaimLost) as info:
        store.claim(single, "two:2", 30)
    assert f"session 'second' is busy sending campaign {multi}" in str(info.value)
    assert [c.id for c in store.claimable_campaigns()] == []
    other = make_campaign(store, 2, session="third")
    assert [c.id for c in store.claimable_campaigns()] == [other]


# -- where it shows ----------------------------------------------------------------------


def test_the_estimate_counts_each_session_sending_its_share_at_once() -> None:
    from waha_tui.pacing import Pacing

    pacing = Pacing(min_delay=30.0, max_delay=30.0)
    alone = pacing.estimate(6)
    both = pacing.estimate(9, lanes=(2, 1))  # the bigger share: 6 of the 9
    assert both.seconds_left == pytest.approx(alone.seconds_left)
    assert both.per_minute == pytest.approx(2 * alone.per_minute)


def test_the_estimate_holds_each_share_to_its_own_numbers_caps(store: Store) -> None:
    from waha_tui.pacing import Caps, CapUse
    from waha_tui.tui.format import estimate

    cid = spread_campaign(store, 40, "default,second", delay_min=30.0, delay_max=30.0)
    camp = store.get_campaign(cid)
    assert camp.created_at is not None
    now = camp.created_at
    full = CapUse("4915550001", Caps(per_hour=5, zone="UTC"), 5, 5, now)  # reached: wait
    free = estimate(camp, now)
    assert free is not None and free.seconds_left < 3600  # 20 each, 30 s apart
    for capped in ("default", "second"):  # whichever number it is, its share waits
        held = estimate(camp, now, {capped: full})
        assert held is not None and held.seconds_left > 3 * 3600  # 20 at 5 an hour
        assert held.per_minute < free.per_minute
    # A campaign of one session is held back by its own number's caps, not another's.
    one = store.get_campaign(make_campaign(store, 20, delay_min=30.0, delay_max=30.0))
    alone = estimate(one, now, {"second": full})
    assert alone is not None and alone.seconds_left < 3600


def test_the_table_names_the_first_session_and_how_many_more(store: Store) -> None:
    from waha_tui.tui.format import campaign_cells, estimate

    cid = spread_campaign(store, 4, "default,second,third", delay_min=30.0, delay_max=30.0)
    camp = store.get_campaign(cid)
    assert campaign_cells(camp)["session"].plain == "default +2"
    one = store.get_campaign(make_campaign(store, 4, delay_min=30.0, delay_max=30.0))
    assert campaign_cells(one)["session"].plain == "default"
    now = camp.created_at
    assert now is not None
    three, alone = estimate(camp, now), estimate(one, now)
    assert three is not None and alone is not None
    assert three.seconds_left < alone.seconds_left  # 2 of 4 for the busiest, not 4


async def test_the_demo_sends_one_campaign_through_two_numbers(tmp_path: Path) -> None:
    from tests.tui_helpers import wait_for
    from waha_tui.demo import build_demo
    from waha_tui.tui.app import WahaTuiApp

    demo = await build_demo(tmp_path)
    store = demo.service.store
    try:
        [camp] = [c for c in store.list_campaigns() if c.sessions]
        assert Spread.of(camp).names == ["north", "south"]
        app = WahaTuiApp(demo.service, banner=demo.banner)
        async with app.run_test(size=(80, 24)) as pilot:
            cid = camp.id or 0

            def both_sent() -> bool:
                return {r.session for r in store.recipients(cid) if r.status == RS.SENT} == {
                    "north",
                    "south",
                }

            await wait_for(pilot, both_sent, timeout=30)
            assert store.get_campaign(cid).status == S.RUNNING
    finally:
        await demo.service.stop_all("test over")
        await demo.aclose_listener()
        await demo.service.aclose()
        demo.close()


# -- resume ------------------------------------------------------------------------------


async def test_a_resume_needs_one_working_session_of_several(
    store: Store, client: WahaClient, state: SimState
) -> None:
    from waha_tui.service import CampaignService

    service = CampaignService(store, client, RunnerPool(store, client, config=fast_config()))
    cid = spread_campaign(store, 4, "default,second")
    store.transition(cid, S.PAUSED, pause_reason="paused by the operator")
    state.set_status("default", "STOPPED")
    state.set_status("second", "SCAN_QR_CODE")
    with pytest.raises(UserError) as info:
        await service.resume(cid, seen=store.get_campaign(cid))
    assert str(info.value) == (
        "none of the campaign's sessions is WORKING ('default' STOPPED, 'second' "
        "SCAN_QR_CODE): start one and scan its QR code first"
    )
    assert store.get_campaign(cid).status == S.PAUSED
    # One of them back: the campaign runs; the other's share waits, and says why.
    state.set_status("second", "WORKING")
    run = await service.resume(cid, seen=store.get_campaign(cid))
    assert run is not None
    end = await asyncio.wait_for(service.pool.wait(cid), 30)
    assert isinstance(end, ev.Paused) and "session 'default' is STOPPED" in end.reason
    assert [m.session for m in state.sent()] == ["second", "second"]
    await service.pool.stop_all("test over", grace=5)


async def test_a_stopped_session_with_nothing_left_to_send_holds_nothing_back(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = spread_campaign(store, 3, "default,second")
    force_recipient(store, cid, 1, status=RS.SENT, session="second")  # second's only one
    state.set_status("second", "STOPPED")
    end = await run(store, client, cid)
    assert isinstance(end, ev.Completed)  # not paused for a session it did not need
    assert [m.session for m in state.sent()] == ["default", "default"]
