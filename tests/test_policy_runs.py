"""Issue 12's numbered cases, end to end: the runner against the simulator on a real
socket and a real database, each case as the real world showed it (see
../shared/waha/real-2024.10.8.json and NOTES.md section 9)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from engine_helpers import (
    FakeClock,
    Recorder,
    fast_config,
    force,
    make_campaign,
    module_simulator,
    phone,
    reset_simulator,
)

from waha_tui import events as ev
from waha_tui.models import utcnow
from waha_tui.runner import Clock, RunnerPool
from waha_tui.simulator import SimState, SimulatorServer
from waha_tui.simulator.state import CONNECTION_CLOSED, ERROR_463, RATE_OVERLIMIT
from waha_tui.status import CampaignStatus, RecipientStatus
from waha_tui.store import Store, StoreError
from waha_tui.waha import WahaClient

S = CampaignStatus
RS = RecipientStatus


@pytest.fixture(scope="module")
def module_server() -> Iterator[SimulatorServer]:
    yield from module_simulator()


@pytest.fixture
def sim_server(module_server: SimulatorServer) -> SimulatorServer:
    return reset_simulator(module_server)


async def run(
    store: Store, client: WahaClient, cid: int, recorder: Recorder | None = None, **config: Any
) -> ev.Ended:
    pool = RunnerPool(store, client, config=fast_config(**config))
    if recorder:
        pool.bus.subscribe(recorder)
    await pool.start(cid)
    end = await asyncio.wait_for(pool.wait(cid), 30)
    assert end is not None
    return end


def statuses(store: Store, cid: int) -> list[str]:
    return [r.status for r in store.recipients(cid)]


# -- 1. a session that does not exist ------------------------------------------------------


async def test_1_a_campaign_on_a_missing_session_pauses_before_any_recipient(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = make_campaign(store, 4, session="sales")
    end = await run(store, client, cid)
    assert isinstance(end, ev.Paused) and end.next_index == 0
    assert end.reason.startswith("WAHA has no session named 'sales': create it")
    camp = store.get_campaign(cid)
    assert (camp.status, camp.sent, camp.failed) == (S.PAUSED, 0, 0)
    assert [r.attempts for r in store.recipients(cid)] == [0] * 4  # none touched
    assert statuses(store, cid) == [RS.PENDING] * 4
    assert state.sent() == []


# -- 4. session flaps ----------------------------------------------------------------------


async def test_4_a_session_that_restarts_is_waited_for_visibly_and_the_run_goes_on(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = make_campaign(store, 4)
    seen: list[str | None] = []

    def during_wait(_seconds: float) -> None:
        # What every other reader (another host's dashboard, `campaign show`) sees now.
        camp = store.get_campaign(cid)
        seen.append(camp.waiting_for)
        if len(seen) == 3:
            state.set_status("default", "WORKING")  # the WEBJS auto-restart is over

    state.stop_after("default", 2, status="STARTING")
    recorder = Recorder()
    end = await run(
        store,
        client,
        cid,
        recorder,
        clock=FakeClock(on_wait=during_wait),
        session_check_interval=1e9,
        session_grace=30,
    )
    assert isinstance(end, ev.Completed) and (end.sent, end.failed) == (4, 0)
    assert seen[0] == "waiting for session 'default' (STARTING)"
    assert [w.reason for w in recorder.of(ev.Waiting)] == [seen[0]]
    camp = store.get_campaign(cid)
    assert (camp.waiting_for, camp.waiting_since) == (None, None)  # cleared once back
    assert len(state.sent()) == 4


async def test_4_while_waiting_the_waiting_state_carries_its_start_time(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = make_campaign(store, 2)
    since: list[object] = []

    def during_wait(_seconds: float) -> None:
        since.append(store.get_campaign(cid).waiting_since)
        state.set_status("default", "WORKING")

    state.set_status("default", "FAILED")  # NOWEB lost its connection before the start
    end = await run(store, client, cid, clock=FakeClock(on_wait=during_wait))
    assert isinstance(end, ev.Completed)
    assert since and since[0] is not None


async def test_4_a_stopped_session_pauses_at_once_without_waiting(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = make_campaign(store, 4)
    clock = FakeClock()
    state.stop_after("default", 2, status="STOPPED")
    end = await run(store, client, cid, clock=clock, session_check_interval=0.0)
    assert isinstance(end, ev.Paused) and end.next_index == 2
    assert end.reason.startswith("session 'default' is STOPPED: start it")
    assert clock.waits == []  # no grace for a stopped session
    assert statuses(store, cid) == [RS.SENT, RS.SENT, RS.PENDING, RS.PENDING]


async def test_4_a_session_that_never_comes_back_pauses_after_the_grace(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = make_campaign(store, 3)
    clock = FakeClock()
    state.stop_after("default", 1, status="STARTING")
    end = await run(store, client, cid, clock=clock, session_check_interval=0.0, session_grace=12)
    assert isinstance(end, ev.Paused) and end.next_index == 1
    assert "stayed STARTING for 12 s" in end.reason
    assert 12 <= sum(clock.waits) <= 16
    camp = store.get_campaign(cid)
    assert (camp.status, camp.waiting_for) == (S.PAUSED, None)


# -- 5. a busy database --------------------------------------------------------------------


def hold_write_lock(target: str, seconds: float, started: threading.Event) -> None:
    """Another process holding the database's write lock (SQLite) or the campaign table
    (PostgreSQL) for `seconds`."""
    other = Store(target)
    try:
        with other.write() as conn:
            if other.is_postgres:
                conn.exec_driver_sql("LOCK TABLE campaign IN EXCLUSIVE MODE")
                conn.exec_driver_sql("LOCK TABLE recipient IN EXCLUSIVE MODE")
            started.set()
            time.sleep(seconds)
    finally:
        other.close()


@pytest.mark.parametrize("ids", [True, False], ids=["with-ids", "without-ids"])
async def test_5_a_write_lock_held_past_the_timeout_pauses_resumably_and_nothing_is_lost(
    db_target: str, client: WahaClient, state: SimState, ids: bool
) -> None:
    """Seen: a lock held 13 s ended the campaign Failed with recipients pending (33 of them
    sent at WAHA and still `pending` in the store). Here the store gives up after 0.2 s
    and the lock is held 1.5 s (the same thing, faster)."""
    if not ids:
        client.no_message_ids("default")
    store = Store(db_target, busy_timeout=0.2)
    try:
        cid = make_campaign(store, 30, delay_min=0.02, delay_max=0.02)
        started = threading.Event()

        def lock_during_run(event: ev.CampaignEvent) -> None:
            if isinstance(event, ev.RecipientProcessed) and event.position == 5:
                threading.Thread(
                    target=hold_write_lock, args=(db_target, 1.5, started), daemon=True
                ).start()

        recorder = Recorder()
        pool = RunnerPool(store, client, config=fast_config(clock=Clock(), poll_interval=0.05))
        pool.bus.subscribe(lock_during_run)
        pool.bus.subscribe(recorder)
        await pool.start(cid)
        end = await asyncio.wait_for(pool.wait(cid), 30)
        assert started.is_set()
        assert isinstance(end, ev.Paused), end
        assert end.reason.startswith("database unavailable:")
        camp = store.get_campaign(cid)
        # Written once the lock was gone: Paused, resumable, not Failed nor left Running.
        assert (camp.status, camp.lease_owner) == (S.PAUSED, None)
        assert camp.pause_reason == end.reason
        sent_before = {m.chat_id for m in state.sent()}
        recs = store.recipients(cid)
        recorded = {r.chat_id for r in recs if r.status == RS.SENT}
        in_doubt = {r.chat_id for r in recs if r.status in (RS.SENDING, RS.UNKNOWN)}
        # Everything WAHA accepted is known as sent, or kept for a deduped re-send.
        assert sent_before <= recorded | in_doubt | {r.chat_id for r in recs if r.message_id}

        end = await run(store, client, cid)
        assert isinstance(end, ev.Completed), end
        chats = [m.chat_id for m in state.sent()]
        assert len(chats) == len(set(chats))  # never twice
        unknown = [r for r in store.recipients(cid) if r.status == RS.UNKNOWN]
        assert set(chats) | {r.chat_id for r in unknown} == {r.chat_id for r in recs}
        assert end.failed == 0
        if ids:
            assert unknown == []  # with ids nothing is left in doubt
    finally:
        store.close()


# -- 1. a 404 on a message route is followed by a look at the session ----------------------


async def test_1_a_404_on_a_send_asks_for_the_session_and_words_the_pause_from_it(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = make_campaign(store, 4)
    state.stop_after("default", 2, status="STOPPED")  # stopped between two sends
    end = await run(store, client, cid, session_check_interval=1e9)
    assert isinstance(end, ev.Paused) and end.next_index == 2
    assert end.reason.startswith("session 'default' is STOPPED: start it")
    assert statuses(store, cid) == [RS.SENT, RS.SENT, RS.PENDING, RS.PENDING]
    assert store.get_campaign(cid).failed == 0


async def test_1_on_core_a_campaign_on_another_session_pauses_untouched(
    store: Store, client: WahaClient, state: SimState
) -> None:
    state.tier = "CORE"
    cid = make_campaign(store, 3, session="sales")
    end = await run(store, client, cid)
    assert isinstance(end, ev.Paused)
    assert end.reason.startswith("WAHA has no session named 'sales'")
    assert [r.attempts for r in store.recipients(cid)] == [0, 0, 0]
    assert state.sent() == []


# -- 2. errors of the account pause, and no recipient is failed for them -------------------

ACCOUNT_ERRORS = {
    "463": (lambda s: s.fail_next_sends(1, ERROR_463), "reach-out timelock"),
    "connection-closed": (lambda s: s.fail_next_sends(1, CONNECTION_CLOSED), "Connection Closed"),
    "rate-overlimit": (
        lambda s: s.fail_next_sends(1, RATE_OVERLIMIT, data=429),
        "rate limit",
    ),
    "401": (lambda s: s.require_api_key("rotated"), "refused the API key"),
    "proxy-413": (lambda s: s.proxy_error(413, after_record=False), "too large"),
    "429": (lambda s: s.fail_chat(phone(2), "Too Many Requests", status=429), "HTTP 429"),
}


@pytest.mark.parametrize("fault", sorted(ACCOUNT_ERRORS))
async def test_2_an_account_or_network_error_pauses_with_none_failed_and_resume_completes(
    store: Store, client: WahaClient, state: SimState, fault: str
) -> None:
    inject, words = ACCOUNT_ERRORS[fault]
    cid = make_campaign(store, 5, delay_min=1.0, delay_max=1.0)

    def after_two(_seconds: float) -> None:
        if len(state.sent()) == 2 and not getattr(after_two, "done", False):
            after_two.done = True  # type: ignore[attr-defined]
            inject(state)

    end = await run(store, client, cid, clock=FakeClock(on_wait=after_two))
    assert isinstance(end, ev.Paused), end
    assert words in end.reason and end.next_index == 2
    camp = store.get_campaign(cid)
    assert (camp.status, camp.sent, camp.failed, camp.unknown) == (S.PAUSED, 2, 0, 0)
    assert statuses(store, cid) == [RS.SENT] * 2 + [RS.PENDING] * 3

    state.clear_faults()
    state.require_api_key(None)
    end = await run(store, client, cid)
    assert isinstance(end, ev.Completed) and (end.sent, end.failed) == (5, 0)
    chats = [m.chat_id for m in state.sent()]
    assert sorted(chats) == sorted({r.chat_id for r in store.recipients(cid)})  # each once


async def test_2_a_463_pause_says_when_the_timelock_ends(
    store: Store, client: WahaClient, state: SimState
) -> None:
    ends = int(time.time()) + 3 * 3600
    cid = make_campaign(store, 3)
    state.timelock("default", ends)
    end = await run(store, client, cid)
    assert isinstance(end, ev.Paused) and end.next_index == 0
    when = datetime.fromtimestamp(ends, UTC).strftime("%Y-%m-%d %H:%M")
    assert "reach-out timelock" in end.reason and f"ends {when} UTC" in end.reason
    assert store.get_campaign(cid).failed == 0 and state.sent() == []


# -- 3. a gateway error after WAHA accepted the message --------------------------------------


@pytest.mark.parametrize("status", [502, 504])
@pytest.mark.parametrize("ids", [True, False], ids=["with-ids", "without-ids"])
async def test_3_a_gateway_error_after_the_send_is_ambiguous_never_failed_never_twice(
    store: Store, client: WahaClient, state: SimState, status: int, ids: bool
) -> None:
    state.message_ids = ids
    cid = make_campaign(store, 4)
    state.proxy_error(status, after_record=True)  # the first message did go out
    end = await run(store, client, cid)
    assert isinstance(end, ev.Completed), end
    recs = store.recipients(cid)
    assert all(r.status != RS.FAILED for r in recs)
    if ids:
        # Re-sent with the same id: WhatsApp (the simulator) keeps one.
        assert (end.sent, end.unknown) == (4, 0)
    else:
        assert (end.sent, end.unknown) == (3, 1) and recs[0].status == RS.UNKNOWN
    chats = [m.chat_id for m in state.sent()]
    assert len(chats) == len(set(chats)) == 4

    # The operator's `retry --failed` has nothing to re-send: nobody was counted failed.
    with pytest.raises(StoreError, match="has no failed recipients to retry"):
        store.retry_recipients(cid, [RS.FAILED])


async def test_3_a_retried_unknown_recipient_keeps_its_id_and_is_delivered_once(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = make_campaign(store, 2)
    state.proxy_error(504, after_record=True)
    # The retry of the ambiguous send is refused: in doubt, it becomes `unknown`.
    clock = FakeClock(on_wait=lambda _s: state.fail_chat(phone(0)))
    end = await run(store, client, cid, clock=clock)
    assert isinstance(end, ev.Completed) and end.unknown == 1
    first = store.recipients(cid)[0]
    assert first.status == RS.UNKNOWN and first.message_id

    state.clear_faults()
    assert store.retry_recipients(cid, [RS.UNKNOWN]) == 1
    again = store.recipients(cid)[0]
    assert (again.status, again.message_id) == (RS.PENDING, first.message_id)  # id kept
    end = await run(store, client, cid)
    assert isinstance(end, ev.Completed) and (end.sent, end.unknown) == (2, 0)
    assert [m.chat_id for m in state.sent()].count(f"{phone(0)}@c.us") == 1


# -- 7. an engine without pre-generated ids is asked once ----------------------------------


class CountingTransport(httpx.AsyncBaseTransport):
    """The real socket transport, counting requests by path."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_7_webjs_answers_new_message_id_with_422_once_and_is_remembered(
    store: Store, sim_server: SimulatorServer, state: SimState
) -> None:
    state.engine = "WEBJS"
    transport = CountingTransport()
    async with WahaClient(sim_server.url, transport=transport) as client:
        cid = make_campaign(store, 5)
        end = await run(store, client, cid)
        assert isinstance(end, ev.Completed) and (end.sent, end.failed) == (5, 0)
        assert transport.paths.count("/api/default/new-message-id") == 1
        assert client.message_ids("default") is False
        second = make_campaign(store, 3)
        assert isinstance(await run(store, client, second), ev.Completed)
    assert transport.paths.count("/api/default/new-message-id") == 1  # still once
    assert transport.paths.count("/api/sendText") == 8


# -- the runner as a package: a lease taken over stops the run before its next send --------


async def test_a_heartbeat_that_finds_the_lease_taken_stops_the_run_before_its_next_send(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = make_campaign(store, 10)
    state.set_latency(0.4)  # each send takes a while: the heartbeat beats during it
    pool = RunnerPool(
        store, client, config=fast_config(clock=Clock(), lease_seconds=0.3, poll_interval=0.05)
    )
    await pool.start(cid)
    while not state.sent():
        await asyncio.sleep(0.01)
    # Another host decides this run is dead and takes the campaign (as after a lapse).
    force(store, cid, lease_owner="other-host:1:x", lease_until=utcnow() + timedelta(minutes=5))
    taken_at = len(state.sent())
    end = await asyncio.wait_for(pool.wait(cid), 10)
    assert isinstance(end, ev.Paused) and end.reason == "taken over by another runner"
    assert len(state.sent()) <= taken_at + 1  # at most the send already on the wire
    camp = store.get_campaign(cid)
    assert (camp.status, camp.lease_owner) == (S.RUNNING, "other-host:1:x")  # untouched
