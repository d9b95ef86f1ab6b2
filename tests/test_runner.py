"""The runner against the WAHA simulator on a real loopback socket, with a fake clock.

Every pause cause, pacing, durability of next_index, ambiguous sends, crash recovery,
leases. Real time only where the point is how fast a pause takes effect.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from engine_helpers import (
    PNG,
    FakeClock,
    Recorder,
    closed_port,
    fast_config,
    force,
    force_recipient,
    make_campaign,
    module_simulator,
    people,
    phone,
    reset_simulator,
    run_to_end,
    snapshot,
    texts,
)

from waha_tui import events as ev
from waha_tui.errors import UserError
from waha_tui.models import utcnow
from waha_tui.runner import Clock, RunnerPool
from waha_tui.simulator import SimState, Simulator, SimulatorServer
from waha_tui.status import CampaignStatus, RecipientStatus
from waha_tui.store import Outcome, R, Store, StoreError
from waha_tui.waha import WahaClient


@pytest.fixture(scope="module")
def module_server() -> Iterator[SimulatorServer]:
    yield from module_simulator()


@pytest.fixture
def sim_server(module_server: SimulatorServer) -> SimulatorServer:
    """Overrides conftest's per-test server: the module's one, reset."""
    return reset_simulator(module_server)


S = CampaignStatus
RS = RecipientStatus


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "campaigns.db"


def server_with(state: SimState) -> SimulatorServer:
    return SimulatorServer(Simulator(state)).start()


def statuses(store: Store, cid: int) -> list[str]:
    return [r.status for r in store.recipients(cid)]


# -- what may run ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "lease"),
    [
        (S.RUNNING, "live"),
        (S.RUNNING, "lapsed"),
        (S.COMPLETED, None),
        (S.FAILED, None),
        (S.CANCELLED, None),
    ],
)
async def test_only_scheduled_or_paused_campaigns_run(
    store: Store,
    client: WahaClient,
    state: SimState,
    status: CampaignStatus,
    lease: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cid = make_campaign(store, 2)
    if lease:
        offset = timedelta(seconds=60 if lease == "live" else -60)
        force(store, cid, lease_owner="another:1:abc", lease_until=utcnow() + offset)
    force(store, cid, status=status)
    before = snapshot(store)
    pool = RunnerPool(store, client, config=fast_config())
    with pytest.raises(StoreError) as info:
        await pool.start(cid)
    assert f"campaign {cid}" in str(info.value)
    assert (status in str(info.value)) or "already running" in str(info.value)
    assert snapshot(store) == before
    assert state.sent() == []
    assert pool.runs == {} and pool.tasks == {}
    await asyncio.sleep(0.01)
    gc.collect()  # a refused start must not also be logged as "Task exception never retrieved"
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


@pytest.mark.parametrize("status", [S.SCHEDULED, S.PAUSED])
async def test_scheduled_and_paused_campaigns_run(
    store: Store, client: WahaClient, state: SimState, status: CampaignStatus
) -> None:
    cid = make_campaign(store, 2)
    force(store, cid, status=status)
    end, _ = await run_to_end(store, client, cid)
    assert isinstance(end, ev.Completed) and (end.sent, end.total) == (2, 2)
    assert len(state.sent()) == 2


async def test_the_same_campaign_never_runs_twice_in_one_process(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = make_campaign(store, 2, delay_min=5.0, delay_max=5.0)
    pool = RunnerPool(store, client, config=fast_config(clock=Clock(), poll_interval=0.05))
    await pool.start(cid)
    with pytest.raises(UserError, match=f"campaign {cid} is already running in this process"):
        await pool.start(cid)
    await first_message(state)
    with pytest.raises(UserError, match=f"campaign {cid} is already running in this process"):
        await pool.start(cid)
    pool.request_stop(cid, S.PAUSED, "test over")
    end = await asyncio.wait_for(pool.wait(cid), 5)
    assert isinstance(end, ev.Paused)
    assert len(state.sent()) == 1


# -- order, next_index, rendering --------------------------------------------------------


async def test_recipients_go_in_position_order_from_next_index(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = make_campaign(store, 6)
    # Reverse the positions, so row order and position order disagree.
    with store.write() as conn:
        conn.execute(sa.update(R).where(R.c.campaign_id == cid).values(position=R.c.position + 100))
        conn.execute(sa.update(R).where(R.c.campaign_id == cid).values(position=105 - R.c.position))
    force(store, cid, next_index=2)
    by_position = {r.position: r for r in store.recipients(cid)}
    rec = Recorder()
    pool = RunnerPool(store, client, config=fast_config())
    pool.bus.subscribe(rec)
    await pool.start(cid)
    end = await pool.wait(cid)

    assert isinstance(end, ev.Completed)
    assert [m.chat_id for m in state.sent()] == [by_position[p].chat_id for p in range(2, 6)]
    processed = rec.of(ev.RecipientProcessed)
    assert [(e.position, e.next_index) for e in processed] == [(p, p + 1) for p in range(2, 6)]
    assert rec.of(ev.Started) == [ev.Started(cid, 6, 2)]
    camp = store.get_campaign(cid)
    assert (camp.next_index, camp.sent, camp.status) == (6, 4, S.COMPLETED)
    assert camp.completed_at is not None and camp.lease_owner is None
    # The two before next_index were never touched.
    assert [by.status for by in store.recipients(cid)][:2] == [RS.PENDING, RS.PENDING]


async def test_settled_recipients_across_the_first_reads_are_skipped_and_the_rest_sent_once(
    store: Store, client: WahaClient, state: SimState
) -> None:
    """The run reads a short first batch (the first message waits for it), then longer
    ones: recipients settled before a retry moved next_index back are skipped across those
    reads, and every other one is sent once, in order."""
    n, settled = 600, 40  # beyond the first read, and beyond a second one of 500
    cid = make_campaign(store, n)
    with store.write() as conn:
        conn.execute(
            sa.update(R)
            .where(R.c.campaign_id == cid, R.c.position < settled)
            .values(status=RS.SENT, message_id="true_earlier")
        )
    force(store, cid, sent=settled)
    pool = RunnerPool(store, client, config=fast_config())
    await pool.start(cid)
    end = await pool.wait(cid)

    assert isinstance(end, ev.Completed) and end.sent == n
    recipients = store.recipients(cid)
    assert [m.chat_id for m in state.sent()] == [r.chat_id for r in recipients[settled:]]
    assert all(r.message_id == "true_earlier" for r in recipients[:settled])


async def test_next_index_is_durable_after_every_message(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = make_campaign(store, 4)
    seen: list[tuple[int, int, list[str]]] = []

    def check(event: ev.CampaignEvent) -> None:
        if isinstance(event, ev.RecipientProcessed):
            camp = store.get_campaign(cid)  # what a crash right now would leave
            seen.append((event.position, camp.next_index, statuses(store, cid)))

    pool = RunnerPool(store, client, config=fast_config())
    pool.bus.subscribe(check)
    await pool.start(cid)
    await pool.wait(cid)
    # Each event comes once its outcome is durable; outcomes written together (when the
    # sends outpace the database) make next_index run ahead of the event being handled.
    assert [p for p, _, _ in seen] == [0, 1, 2, 3]
    assert all(p + 1 <= n <= 4 for p, n, _ in seen) and seen[-1][1] == 4
    for position, next_index, st in seen:
        assert st[:next_index] == [RS.SENT] * next_index
        assert st[next_index:] == [RS.PENDING] * (4 - next_index), position


async def test_placeholders_render_case_insensitively_with_the_default_name(
    store: Store, client: WahaClient, state: SimState
) -> None:
    recipients = people(3, names=["Ana", None, "  "], City=["Berlin", "Recife", "Oslo"])
    cid = make_campaign(
        store,
        recipients=recipients,
        text="Hi {name}/{Name}/{ NAME }, greetings to {city} and {CITY}! {}",
        default_name="friend",
    )
    end, _ = await run_to_end(store, client, cid)
    assert isinstance(end, ev.Completed)
    assert texts(state.sent()) == [
        (f"{phone(0)}@c.us", "Hi Ana/Ana/Ana, greetings to Berlin and Berlin! {}"),
        (f"{phone(1)}@c.us", "Hi friend/friend/friend, greetings to Recife and Recife! {}"),
        (f"{phone(2)}@c.us", "Hi friend/friend/friend, greetings to Oslo and Oslo! {}"),
    ]


# -- pacing ------------------------------------------------------------------------------


async def test_pacing_bounds_and_breaks_with_no_wait_before_the_first_message(
    store: Store, client: WahaClient, state: SimState
) -> None:
    sent_at_wait: list[int] = []
    clock = FakeClock(on_wait=lambda _s: sent_at_wait.append(len(state.sent())))
    cid = make_campaign(store, 7, delay_min=2.0, delay_max=5.0, break_every=3, break_seconds=100.0)
    end, _ = await run_to_end(store, client, cid, fast_config(clock))
    assert isinstance(end, ev.Completed) and end.sent == 7
    assert sent_at_wait == [1, 2, 3, 4, 5, 6]  # one wait between messages, none before the 1st
    assert len(clock.waits) == 6
    for i, wait in enumerate(clock.waits, start=1):
        if i % 3 == 0:  # after the 3rd and 6th message
            assert 102.0 <= wait <= 105.0
        else:
            assert 2.0 <= wait <= 5.0
    assert len({round(w, 6) for w in clock.waits}) > 2  # random, not fixed


async def test_resume_does_not_wait_before_its_first_message(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = make_campaign(store, 3, delay_min=30.0, delay_max=60.0)
    force(store, cid, status=S.PAUSED, next_index=1)
    sent_at_wait: list[int] = []
    clock = FakeClock(on_wait=lambda _s: sent_at_wait.append(len(state.sent())))
    end, _ = await run_to_end(store, client, cid, fast_config(clock))
    assert isinstance(end, ev.Completed)
    assert sent_at_wait == [1]
    assert 30.0 <= clock.waits[0] <= 60.0


# -- recipient-level failures ------------------------------------------------------------


async def test_a_recipient_level_400_fails_only_that_recipient(
    store: Store, client: WahaClient, state: SimState
) -> None:
    state.fail_chat(phone(1))  # WAHA refuses this one chat id (HTTP 400)
    cid = make_campaign(store, 4)
    end, _ = await run_to_end(store, client, cid)
    assert isinstance(end, ev.Completed)
    assert (end.sent, end.failed, end.unknown, end.total) == (3, 1, 0, 4)
    assert [m.chat_id for m in state.sent()] == [f"{phone(i)}@c.us" for i in (0, 2, 3)]
    recs = store.recipients(cid)
    assert [r.status for r in recs] == [RS.SENT, RS.FAILED, RS.SENT, RS.SENT]
    assert recs[1].error is not None and "HTTP 400" in recs[1].error
    assert f"Invalid chatId '{phone(1)}@c.us'" in recs[1].error  # WAHA's words, kept
    camp = store.get_campaign(cid)
    assert (camp.sent, camp.failed, camp.next_index, camp.consecutive_failures) == (3, 1, 4, 0)
    assert camp.last_error == recs[1].error
    assert all(r.message_id for r in recs if r.status == RS.SENT)


async def test_too_many_consecutive_failures_pause_at_the_default_ten(
    store: Store, client: WahaClient, state: SimState
) -> None:
    for i in range(14):
        state.fail_chat(phone(i))  # a list of numbers none of which is on WhatsApp
    cid = make_campaign(store, 14)
    end, _ = await run_to_end(store, client, cid)
    assert isinstance(end, ev.Paused)
    assert "10 messages in a row failed" in end.reason and "HTTP 400" in end.reason
    camp = store.get_campaign(cid)
    assert (camp.status, camp.failed, camp.sent, camp.next_index) == (S.PAUSED, 10, 0, 10)
    assert camp.pause_reason == end.reason


async def test_the_failure_limit_is_configurable_and_a_success_resets_the_streak(
    store: Store, client: WahaClient, state: SimState
) -> None:
    for i in (0, 1, 3, 4, 5):
        state.fail_chat(phone(i))
    cid = make_campaign(store, 8, max_consecutive_failures=3)
    end, _ = await run_to_end(store, client, cid)
    assert isinstance(end, ev.Paused) and "3 messages in a row failed" in end.reason
    camp = store.get_campaign(cid)
    assert (camp.failed, camp.sent, camp.next_index) == (5, 1, 6)
    assert statuses(store, cid)[6:] == [RS.PENDING, RS.PENDING]


# -- pauses: the session, WAHA, the API key ----------------------------------------------


def flip_after(state: SimState, position: int, status: str) -> None:
    """The simulator's session turns `status` right after it accepts that recipient's
    message (server-side: the runner writes outcomes behind its sends)."""
    state.stop_after("default", position + 1, status=status)


async def test_a_422_on_send_waits_out_the_grace_then_pauses_with_the_recipient_pending(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = make_campaign(store, 4)
    clock = FakeClock()
    config = fast_config(clock, session_check_interval=1e9, session_grace=10, session_poll=2)
    pool = RunnerPool(store, client, config=config)
    flip_after(state, 1, "STARTING")
    await pool.start(cid)
    end = await pool.wait(cid)
    assert isinstance(end, ev.Paused)
    assert end.reason == (
        "session 'default' stayed STARTING for 10 s, not WORKING: check it, then resume"
    )
    assert clock.waits.count(2) == 5  # polled every 2 s for the 10 s grace
    assert end.next_index == 2
    recs = store.recipients(cid)
    assert [r.status for r in recs] == [RS.SENT, RS.SENT, RS.PENDING, RS.PENDING]
    assert recs[2].attempts == 1  # the send was tried and refused with 422
    camp = store.get_campaign(cid)
    assert (camp.status, camp.next_index, camp.pause_reason) == (S.PAUSED, 2, end.reason)
    assert len(state.sent()) == 2


async def test_the_status_check_between_messages_pauses_before_sending(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = make_campaign(store, 4)
    pool = RunnerPool(store, client, config=fast_config(session_check_interval=0.0))
    flip_after(state, 1, "SCAN_QR_CODE")
    await pool.start(cid)
    end = await pool.wait(cid)
    assert isinstance(end, ev.Paused)
    assert "session 'default' is SCAN_QR_CODE" in end.reason and "scan the QR code" in end.reason
    recs = store.recipients(cid)
    assert [r.status for r in recs] == [RS.SENT, RS.SENT, RS.PENDING, RS.PENDING]
    assert recs[2].attempts == 0  # stopped by the check, not by a refused send
    assert store.get_campaign(cid).next_index == 2


async def test_a_missing_session_pauses(store: Store, client: WahaClient, state: SimState) -> None:
    cid = make_campaign(store, 2, session="nope")
    end, _ = await run_to_end(store, client, cid)
    assert isinstance(end, ev.Paused)
    assert "no session named 'nope'" in end.reason
    assert state.sent() == []


async def test_unreachable_waha_pauses_after_retrying_with_backoff(store: Store) -> None:
    clock = FakeClock()
    cid = make_campaign(store, 3)
    async with WahaClient(f"http://127.0.0.1:{closed_port()}") as client:
        end, _ = await run_to_end(store, client, cid, fast_config(clock))
    assert isinstance(end, ev.Paused)
    assert "is unreachable" in end.reason and "127.0.0.1" in end.reason
    assert clock.waits == [0.25, 0.5]  # the backoff, then it gives up
    camp = store.get_campaign(cid)
    assert (camp.status, camp.next_index, camp.sent) == (S.PAUSED, 0, 0)
    assert statuses(store, cid) == [RS.PENDING] * 3


async def test_waha_going_away_mid_campaign_pauses_at_the_next_recipient(store: Store) -> None:
    server = server_with(SimState())
    stopped = False

    def stop_server(_seconds: float) -> None:
        nonlocal stopped
        if len(clock.waits) == 2:  # the wait after the second message
            server.stop()  # blocks the loop a moment: nothing else may be sent meanwhile
            stopped = True

    clock = FakeClock(on_wait=stop_server)
    cid = make_campaign(store, 4, delay_min=1.0, delay_max=1.0)
    async with WahaClient(server.url) as client:
        pool = RunnerPool(store, client, config=fast_config(clock))
        await pool.start(cid)
        end = await pool.wait(cid)
    assert stopped
    assert isinstance(end, ev.Paused) and "unreachable" in end.reason
    assert clock.waits == [1.0, 1.0, 0.25, 0.5]  # the pacing, then the backoff
    assert len(server.state.sent()) == 2
    camp = store.get_campaign(cid)
    assert (camp.next_index, camp.sent) == (2, 2)
    assert statuses(store, cid) == [RS.SENT, RS.SENT, RS.PENDING, RS.PENDING]


async def test_a_pause_during_the_unreachable_backoff_leaves_the_recipient_pending(
    store: Store,
) -> None:
    # Connection refused: the request never left. Without message ids a recipient wrongly
    # left `sending` would become `unknown` on resume, and never be sent.
    server = server_with(SimState(message_ids=False))
    pools: list[RunnerPool] = []

    def stop_server(event: ev.CampaignEvent) -> None:
        if isinstance(event, ev.RecipientProcessed) and event.position == 0:
            server.stop()

    clock = FakeClock(on_wait=lambda _s: pools[0].request_stop(cid, S.PAUSED, "by hand"))
    cid = make_campaign(store, 2)
    async with WahaClient(server.url) as client:
        pool = RunnerPool(store, client, config=fast_config(clock, session_check_interval=1e9))
        pools.append(pool)
        pool.bus.subscribe(stop_server)
        await pool.start(cid)
        end = await pool.wait(cid)
    assert isinstance(end, ev.Paused) and end.reason == "by hand"
    assert clock.waits == [0.25]  # paused in the first backoff wait
    assert statuses(store, cid) == [RS.SENT, RS.PENDING]
    assert store.get_campaign(cid).next_index == 1


async def test_a_401_pauses_and_points_at_the_api_key(
    store: Store, client: WahaClient, state: SimState
) -> None:
    state.require_api_key("right-key-123")
    cid = make_campaign(store, 2)
    end, _ = await run_to_end(store, client, cid)
    assert isinstance(end, ev.Paused)
    assert "401" in end.reason and "WAHA_API_KEY" in end.reason
    assert "right-key-123" not in end.reason
    assert store.get_campaign(cid).next_index == 0
    assert state.sent() == []


async def test_a_401_after_some_messages_pauses_with_the_right_next_index(
    store: Store, client: WahaClient, state: SimState
) -> None:
    # Paced on the fake clock: the key changes during the wait after the first message.
    cid = make_campaign(store, 4, delay_min=1.0, delay_max=1.0)
    clock = FakeClock(on_wait=lambda _s: state.require_api_key("rotated"))
    pool = RunnerPool(store, client, config=fast_config(clock, session_check_interval=1e9))
    await pool.start(cid)
    end = await pool.wait(cid)
    assert isinstance(end, ev.Paused) and "WAHA_API_KEY" in end.reason
    assert store.get_campaign(cid).next_index == 1
    assert statuses(store, cid) == [RS.SENT, RS.PENDING, RS.PENDING, RS.PENDING]


# -- pause and cancel requests -----------------------------------------------------------


async def first_message(state: SimState, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not state.sent():
        assert time.monotonic() < deadline, "the first message never went out"
        await asyncio.sleep(0.01)


async def test_a_pause_request_ends_a_long_wait_at_once(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = make_campaign(store, 3, delay_min=5.0, delay_max=5.0)
    pool = RunnerPool(store, client, config=fast_config(clock=Clock(), poll_interval=1.0))
    await pool.start(cid)
    await first_message(state)
    await asyncio.sleep(0.1)  # well inside the 5 s wait
    began = time.monotonic()
    assert pool.request_stop(cid, S.PAUSED, "paused by the operator")
    end = await asyncio.wait_for(pool.wait(cid), 5)
    assert time.monotonic() - began < 1.0  # not the ~4.9 s left of the wait
    assert isinstance(end, ev.Paused) and end.reason == "paused by the operator"
    camp = store.get_campaign(cid)
    assert (camp.status, camp.next_index, camp.lease_owner) == (S.PAUSED, 1, None)
    assert len(state.sent()) == 1


async def test_a_pause_from_another_process_is_noticed_during_a_wait(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = make_campaign(store, 3, delay_min=5.0, delay_max=5.0)
    pool = RunnerPool(store, client, config=fast_config(clock=Clock(), poll_interval=0.05))
    await pool.start(cid)
    await first_message(state)
    began = time.monotonic()
    other = Store(store.target)  # another process: its own connections, no runner
    other.transition(cid, S.PAUSED, pause_reason="paused from the command line")
    other.close()
    end = await asyncio.wait_for(pool.wait(cid), 5)
    assert time.monotonic() - began < 1.5  # polled every 0.05 s, not after the 5 s wait
    assert isinstance(end, ev.Paused)
    camp = store.get_campaign(cid)
    assert (camp.status, camp.pause_reason) == (S.PAUSED, "paused from the command line")
    assert (camp.next_index, camp.lease_owner, camp.lease_until) == (1, None, None)
    assert len(state.sent()) == 1


async def test_a_pause_from_another_process_is_noticed_between_messages(
    store: Store, client: WahaClient, state: SimState
) -> None:
    # Paced (1 s between messages, on the fake clock): a pause set elsewhere during the
    # wait is seen before the next send, even though that message's id was stored ahead
    # and it has no transaction of its own before it goes out.
    cid = make_campaign(store, 4, delay_min=1.0, delay_max=1.0)
    waits = 0

    def pause_elsewhere(_seconds: float) -> None:
        nonlocal waits
        waits += 1
        if waits == 2:  # the wait after the second message
            other = Store(store.target)
            other.transition(cid, S.PAUSED, pause_reason="elsewhere")
            other.close()

    pool = RunnerPool(store, client, config=fast_config(FakeClock(on_wait=pause_elsewhere)))
    await pool.start(cid)
    end = await pool.wait(cid)
    assert isinstance(end, ev.Paused)
    camp = store.get_campaign(cid)
    assert (camp.status, camp.pause_reason, camp.next_index) == (S.PAUSED, "elsewhere", 2)
    assert len(state.sent()) == 2


async def test_at_full_speed_a_pause_from_elsewhere_stops_within_the_messages_in_flight(
    store: Store, client: WahaClient, state: SimState
) -> None:
    # Zero delay: outcomes are written behind the sends (up to WRITE_BEHIND), so the pause
    # is seen a few messages later, and the counts, next_index and every recipient still
    # agree with what WAHA received.
    total = 400
    cid = make_campaign(store, total)

    def pause_elsewhere(event: ev.CampaignEvent) -> None:
        if isinstance(event, ev.RecipientProcessed) and event.position == 1:
            store.transition(cid, S.PAUSED, pause_reason="elsewhere")

    pool = RunnerPool(store, client, config=fast_config())
    pool.bus.subscribe(pause_elsewhere)
    await pool.start(cid)
    end = await pool.wait(cid)
    assert isinstance(end, ev.Paused)
    camp = store.get_campaign(cid)
    sent = len(state.sent())
    assert 2 <= sent < total
    assert (camp.status, camp.pause_reason, camp.sent, camp.next_index) == (
        S.PAUSED,
        "elsewhere",
        sent,
        sent,
    )
    recs = store.recipients(cid)
    assert [r.status for r in recs] == [RS.SENT] * sent + [RS.PENDING] * (total - sent)
    # Ids stored ahead for messages never sent are dropped: a stored id on a pending
    # recipient means "may have gone out".
    assert all(r.message_id is None for r in recs[sent:])


async def test_a_cancel_from_another_process_stops_the_run(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = make_campaign(store, 3, delay_min=5.0, delay_max=5.0)
    pool = RunnerPool(store, client, config=fast_config(clock=Clock(), poll_interval=0.05))
    await pool.start(cid)
    await first_message(state)
    store.transition(cid, S.CANCELLED, completed_at=utcnow())
    end = await asyncio.wait_for(pool.wait(cid), 5)
    assert isinstance(end, ev.Cancelled)
    assert store.get_campaign(cid).status == S.CANCELLED
    assert len(state.sent()) == 1


async def test_cancel_request_in_this_process(
    store: Store, client: WahaClient, state: SimState
) -> None:
    # Paced on the fake clock: the operator cancels during the wait after the first message.
    cid = make_campaign(store, 3, delay_min=1.0, delay_max=1.0)

    def cancel(_seconds: float) -> None:
        pool.request_stop(cid, S.CANCELLED, "cancelled by the operator")

    pool = RunnerPool(store, client, config=fast_config(FakeClock(on_wait=cancel)))
    await pool.start(cid)
    end = await pool.wait(cid)
    assert isinstance(end, ev.Cancelled) and end.next_index == 1
    camp = store.get_campaign(cid)
    assert camp.status == S.CANCELLED and camp.completed_at is not None
    assert len(state.sent()) == 1


async def test_a_pause_during_typing_leaves_the_recipient_pending(store: Store) -> None:
    # No message ids: a recipient wrongly left `sending` would become `unknown` on resume.
    server = server_with(SimState(message_ids=False))
    cid = make_campaign(store, 2, typing=True, delay_min=3.0, delay_max=3.0)
    run_holder: list[RunnerPool] = []
    clock = FakeClock(
        on_wait=lambda _s: run_holder[0].request_stop(cid, S.PAUSED, "paused by the operator")
    )
    try:
        async with WahaClient(server.url) as client:
            pool = RunnerPool(store, client, config=fast_config(clock))
            run_holder.append(pool)
            await pool.start(cid)
            end = await pool.wait(cid)
            assert isinstance(end, ev.Paused)
            assert server.state.typing == [("default", f"{phone(0)}@c.us", "start")]
            assert server.state.sent() == []
            assert statuses(store, cid) == [RS.PENDING, RS.PENDING]

            clock.on_wait = None
            end, _ = await run_to_end(store, client, cid, fast_config(clock))
        assert isinstance(end, ev.Completed) and (end.sent, end.unknown) == (2, 0)
        assert len(server.state.sent()) == 2
    finally:
        server.stop()


# -- images ------------------------------------------------------------------------------


async def test_image_campaigns_send_base64_under_data_with_the_mime_type(
    store: Store, client: WahaClient, state: SimState, tmp_path: Path
) -> None:
    image = tmp_path / "offer.png"
    image.write_bytes(PNG)
    cid = make_campaign(store, 2, text="Hi {name}", image_path=str(image), image_mime="image/png")
    end, _ = await run_to_end(store, client, cid)
    assert isinstance(end, ev.Completed) and end.sent == 2
    sent = state.sent()
    assert [(m.kind, m.text) for m in sent] == [("image", "Hi P0"), ("image", "Hi P1")]
    for msg in sent:
        assert msg.image == {
            "mimetype": "image/png",
            "filename": "offer.png",
            "data": base64.b64encode(PNG).decode(),
            "url": None,
        }


async def test_an_unreadable_image_pauses(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = make_campaign(store, 2, image_path="/nonexistent/offer.png", image_mime="image/png")
    end, _ = await run_to_end(store, client, cid)
    assert isinstance(end, ev.Paused) and "/nonexistent/offer.png" in end.reason
    assert state.sent() == []


async def test_wait_reports_a_run_that_already_ended(
    store: Store, client: WahaClient, state: SimState
) -> None:
    # A missing image ends the run almost at once: a caller that waits after `start`
    # returned (the CLI's resume) must still learn it paused, not get None (exit 0).
    cid = make_campaign(store, 2, image_path="/nonexistent/offer.png", image_mime="image/png")
    pool = RunnerPool(store, client, config=fast_config())
    await pool.start(cid)
    while pool.is_running(cid):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.01)
    end = await pool.wait(cid)
    assert isinstance(end, ev.Paused) and "/nonexistent/offer.png" in end.reason


async def test_an_ambiguous_image_send_is_never_repeated(
    store: Store, client: WahaClient, state: SimState, tmp_path: Path
) -> None:
    # sendImage takes no pre-generated id (WAHA's OpenAPI), so a retry could not be deduped.
    image = tmp_path / "offer.png"
    image.write_bytes(PNG)
    state.drop_after_record(1)
    cid = make_campaign(store, 2, image_path=str(image), image_mime="image/png")
    end, _ = await run_to_end(store, client, cid)
    assert isinstance(end, ev.Completed) and (end.sent, end.unknown) == (1, 1)
    assert [m.chat_id for m in state.sent()] == [f"{phone(0)}@c.us", f"{phone(1)}@c.us"]
    assert statuses(store, cid) == [RS.UNKNOWN, RS.SENT]


# -- ambiguous sends ---------------------------------------------------------------------


async def test_a_dropped_answer_is_retried_with_the_same_id_and_delivered_once(
    store: Store, client: WahaClient, state: SimState
) -> None:
    state.drop_after_record(1)
    clock = FakeClock()
    cid = make_campaign(store, 3)
    end, _ = await run_to_end(store, client, cid, fast_config(clock))
    assert isinstance(end, ev.Completed) and (end.sent, end.unknown) == (3, 0)
    assert clock.waits == [0.125]  # one ambiguous retry
    sent = state.sent()
    assert [m.chat_id for m in sent] == [f"{phone(i)}@c.us" for i in range(3)]
    first = store.recipients(cid)[0]
    assert first.status == RS.SENT and first.attempts == 1
    assert first.message_id == sent[0].id


async def test_without_message_ids_a_dropped_answer_becomes_unknown(store: Store) -> None:
    server = server_with(SimState(message_ids=False))
    server.state.drop_after_record(1)
    cid = make_campaign(store, 3)
    try:
        async with WahaClient(server.url) as client:
            end, _ = await run_to_end(store, client, cid)
        assert isinstance(end, ev.Completed)
        assert (end.sent, end.failed, end.unknown) == (2, 0, 1)
        assert [m.chat_id for m in server.state.sent()] == [f"{phone(i)}@c.us" for i in range(3)]
        recs = store.recipients(cid)
        assert [r.status for r in recs] == [RS.UNKNOWN, RS.SENT, RS.SENT]
        assert recs[0].error is not None and "not re-sent" in recs[0].error
        assert store.get_campaign(cid).unknown == 1
    finally:
        server.stop()


async def test_a_failure_after_an_unconfirmed_attempt_is_unknown_not_failed(
    store: Store, client: WahaClient, state: SimState
) -> None:
    # The first attempt went out but its answer was lost; the retry is refused. The
    # recipient may well have the message: it must not be reported as failed.
    state.drop_after_record(1)
    clock = FakeClock(on_wait=lambda _s: state.fail_chat(phone(0)))
    cid = make_campaign(store, 2)
    end, _ = await run_to_end(store, client, cid, fast_config(clock))
    assert isinstance(end, ev.Completed)
    assert (end.sent, end.failed, end.unknown) == (1, 0, 1)
    assert statuses(store, cid) == [RS.UNKNOWN, RS.SENT]
    assert len(state.sent()) == 2


async def test_a_send_that_stays_ambiguous_pauses_and_resume_delivers_it_once(
    store: Store, client: WahaClient, state: SimState
) -> None:
    state.drop_after_record(2)  # the first try and its one retry both lose the answer
    cid = make_campaign(store, 2)
    end, _ = await run_to_end(store, client, cid)
    assert isinstance(end, ev.Paused) and "same id" in end.reason
    rec = store.recipients(cid)[0]
    assert rec.status == RS.SENDING and rec.message_id
    assert len(state.sent()) == 1

    end, _ = await run_to_end(store, client, cid)
    assert isinstance(end, ev.Completed) and (end.sent, end.unknown) == (2, 0)
    assert [m.chat_id for m in state.sent()] == [f"{phone(0)}@c.us", f"{phone(1)}@c.us"]


# -- crashes and leases ------------------------------------------------------------------


async def test_a_crash_mid_send_with_an_id_is_resent_with_that_id(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = make_campaign(store, 3)
    # The dead process sent recipient 1 (WAHA took it) but crashed before recording it.
    claimed = store.claim(cid, "dead:1:aaaa", 30)
    rec0 = store.recipients(cid)[0]
    assert rec0.id is not None
    store.commit_progress(
        cid,
        [Outcome(rec0.id, rec0.position, RS.SENT, message_id="x")],
        owner="dead:1:aaaa",
        lease_seconds=30,
    )
    await client.send_text("default", rec0.chat_id, "earlier")
    pre_id = await client.new_message_id("default")
    rec1 = store.recipients(cid)[1]
    store.mark_sending(rec1.id, pre_id)
    await client.send_text("default", rec1.chat_id, "Hi P1 #1", message_id=pre_id)
    assert claimed.status == S.RUNNING
    force(store, cid, lease_until=utcnow() - timedelta(seconds=1))
    assert store.recover_interrupted() == [cid]
    assert "interrupted" in (store.get_campaign(cid).pause_reason or "")

    end, _ = await run_to_end(store, client, cid)
    assert isinstance(end, ev.Completed) and (end.sent, end.unknown) == (3, 0)
    to_rec1 = [m for m in state.sent() if m.chat_id == rec1.chat_id]
    assert len(to_rec1) == 1  # WAHA deduped the re-send by its id
    after = store.recipients(cid)[1]
    assert after.status == RS.SENT and pre_id in (after.message_id or "")
    assert after.attempts == 2


async def test_a_crash_before_the_written_behind_outcomes_resends_them_with_their_ids(
    store: Store, client: WahaClient, state: SimState
) -> None:
    # At full speed outcomes are written behind the sends: a crash can leave recipients
    # still `pending` whose ids were stored (and which WAHA may already have taken), and
    # others whose ids were stored ahead but never sent.
    cid = make_campaign(store, 4)
    store.claim(cid, "dead:1:bbbb", 30)
    recs = store.recipients(cid)
    ids = [await client.new_message_id("default") for _ in recs[:3]]
    assert all(ids)
    store.commit_progress(
        cid,
        [],
        owner="dead:1:bbbb",
        lease_seconds=30,
        reserve=[(r.id, i) for r, i in zip(recs[:3], ids, strict=True) if r.id is not None],
    )
    # WAHA took the first two; the crash came before their outcomes were written.
    for r, i in zip(recs[:2], ids, strict=False):
        await client.send_text("default", r.chat_id, f"Hi {r.name} #{r.position}", message_id=i)
    force(store, cid, lease_until=utcnow() - timedelta(seconds=1))
    assert store.recover_interrupted() == [cid]

    end, _ = await run_to_end(store, client, cid)
    assert isinstance(end, ev.Completed) and (end.sent, end.unknown, end.failed) == (4, 0, 0)
    chats = [m.chat_id for m in state.sent()]
    assert sorted(chats) == sorted(r.chat_id for r in recs)  # each exactly once
    after = store.recipients(cid)
    for r, i in zip(after[:3], ids, strict=True):
        assert i in (r.message_id or ""), "re-sent with the id stored before the crash"


async def test_a_crash_mid_send_without_an_id_becomes_unknown(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = make_campaign(store, 3)
    force(store, cid, status=S.PAUSED, pause_reason="interrupted", next_index=1)
    force_recipient(store, cid, 0, status=RS.SENT)
    force_recipient(store, cid, 1, status=RS.SENDING, attempts=1)
    end, _ = await run_to_end(store, client, cid)
    assert isinstance(end, ev.Completed)
    assert (end.sent, end.unknown) == (1, 1)  # counters of this campaign only
    assert [m.chat_id for m in state.sent()] == [f"{phone(2)}@c.us"]
    rec = store.recipients(cid)[1]
    assert rec.status == RS.UNKNOWN and "may have been delivered" in (rec.error or "")


async def test_a_running_campaign_holds_its_lease_and_releases_it(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = make_campaign(store, 3, delay_min=5.0, delay_max=5.0)
    pool = RunnerPool(
        store, client, owner="me:1:x", config=fast_config(clock=Clock(), poll_interval=0.05)
    )
    await pool.start(cid)
    camp = store.get_campaign(cid)
    assert camp.status == S.RUNNING and camp.lease_owner == "me:1:x"
    assert camp.lease_until is not None and camp.lease_until > utcnow()
    with pytest.raises(StoreError, match="already running in another process"):
        store.claim(cid, "other:2:y", 30)
    assert store.recover_interrupted() == []  # a live lease is not "interrupted"
    pool.request_stop(cid, S.PAUSED, "done")
    await pool.wait(cid)
    camp = store.get_campaign(cid)
    assert (camp.lease_owner, camp.lease_until) == (None, None)


async def test_two_campaigns_on_one_session_never_run_at_once(
    store: Store, client: WahaClient, state: SimState
) -> None:
    first = make_campaign(store, 2, delay_min=5.0, delay_max=5.0)
    second = make_campaign(store, 2)
    pool = RunnerPool(store, client, config=fast_config(clock=Clock(), poll_interval=0.05))
    other_pool = RunnerPool(store, client, config=fast_config())
    await pool.start(first)
    for p in (pool, other_pool):
        with pytest.raises(StoreError, match=f"session 'default' is busy sending campaign {first}"):
            await p.start(second)
    assert store.get_campaign(second).status == S.SCHEDULED
    assert not other_pool.runs
    pool.request_stop(first, S.PAUSED, "make room")
    await pool.wait(first)
    end, _ = await run_to_end(store, client, second)
    assert isinstance(end, ev.Completed)
