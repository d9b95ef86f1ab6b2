"""What WhatsApp's events do to the database (delivery.apply, flag_unconfirmed), on the real
store: SQLite and PostgreSQL. Events are built as WAHA sends them (envelopes) and read by
envelope.parse, so every id shape goes through the real rules."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from engine_helpers import (
    FakeClock,
    fast_config,
    force,
    force_recipient,
    make_campaign,
    module_simulator,
    phone,
    recipient_counts,
    reset_simulator,
)

from waha_tui import delivery
from waha_tui.models import OptOut, utcnow
from waha_tui.optout import DEFAULT_KEYWORDS, fold, is_optout, matcher
from waha_tui.runner import RunnerPool
from waha_tui.simulator import SimulatorServer
from waha_tui.status import CampaignStatus, RecipientStatus
from waha_tui.store import C, E, R, Store
from waha_tui.waha import WahaClient
from waha_tui.waha.envelope import AckEvent, MessageEvent, WahaEvent, parse
from waha_tui.waha.message_ids import bare

S = CampaignStatus
RS = RecipientStatus
OPT = OptOut.__table__  # type: ignore[attr-defined]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=utcnow().tzinfo)


# -- building what WAHA sends ------------------------------------------------------------


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def ack(message_id: str, level: int, *, at: datetime = T0, session: str = "default") -> WahaEvent:
    event = parse(
        {
            "id": "evt_1",
            "timestamp": ms(at),
            "event": "message.ack",
            "session": session,
            "payload": {"id": message_id, "fromMe": True, "ack": level, "to": "x@c.us"},
        }
    )
    assert isinstance(event, AckEvent)
    return event


def message(
    sender: str, body: str, *, at: datetime = T0, session: str = "default", ident: str = "IN1"
) -> WahaEvent:
    event = parse(
        {
            "event": "message",
            "session": session,
            "timestamp": ms(at),
            "payload": {
                "id": f"false_{sender}_{ident}",
                "from": sender,
                "fromMe": False,
                "body": body,
            },
        }
    )
    assert isinstance(event, MessageEvent)
    return event


def chat(i: int) -> str:
    return f"{phone(i)}@c.us"


def sent_campaign(
    store: Store,
    ids: list[str],
    *,
    status: CampaignStatus = S.COMPLETED,
    sent_at: datetime = T0 - timedelta(minutes=5),
    **fields: Any,
) -> int:
    """A campaign whose recipients were sent, each with the message id WAHA answered
    (in whatever shape), its wa_id written as the store writes it."""
    cid = make_campaign(store, len(ids), **fields)
    for i, mid in enumerate(ids):
        force_recipient(
            store, cid, i, status=RS.SENT, message_id=mid, wa_id=bare(mid), sent_at=sent_at
        )
    force(store, cid, status=status, sent=len(ids), next_index=len(ids))
    return cid


def rows(store: Store, cid: int) -> list[Any]:
    return store.recipients(cid)


def everything(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row that apply may touch, to prove a replay changes nothing."""
    with store.read() as conn:
        return {
            "campaign": [tuple(r) for r in conn.execute(sa.select(C).order_by(C.c.id))],
            "recipient": [tuple(r) for r in conn.execute(sa.select(R).order_by(R.c.id))],
            "optout": [tuple(r) for r in conn.execute(sa.select(OPT).order_by(OPT.c.phone))],
            "history": [tuple(r) for r in conn.execute(sa.select(E).order_by(E.c.id))],
        }


def counters_true(store: Store, cid: int) -> None:
    """The campaign's counters equal what its recipients say."""
    camp = store.get_campaign(cid)
    recs = rows(store, cid)
    counts = recipient_counts(store, cid)
    assert (camp.sent, camp.failed, camp.unknown) == (
        counts.get(RS.SENT, 0),
        counts.get(RS.FAILED, 0),
        counts.get(RS.UNKNOWN, 0),
    )
    assert camp.delivered == sum(r.delivered_at is not None for r in recs)
    assert camp.read == sum(r.read_at is not None for r in recs)
    assert camp.unconfirmed == sum(bool(r.unconfirmed) for r in recs)
    assert camp.replied == sum(r.replied_at is not None for r in recs)


# -- acks ----------------------------------------------------------------------------------

# What a send answer carries, by engine: NOWEB's bare key.id, WEBJS's serialized id.
NOWEB_ID = "3EB0AAAA00000000000001"
WEBJS_ID = f"true_{chat(1)}_3EB0BBBB00000000000002"
PLAIN_ID = "3EB0CCCC00000000000003"


def test_acks_move_forward_only_and_count_each_recipient_once(store: Store) -> None:
    cid = sent_campaign(store, [NOWEB_ID, WEBJS_ID, PLAIN_ID])
    t = [T0 + timedelta(seconds=s) for s in range(10)]
    batch = [
        # r0: acked in the serialized shape; a duplicate and a late SERVER change nothing
        ack(f"true_{chat(0)}_{NOWEB_ID}", 1, at=t[0]),
        ack(f"true_{chat(0)}_{NOWEB_ID}", 2, at=t[1]),
        ack(f"true_{chat(0)}_{NOWEB_ID}", 2, at=t[2]),
        ack(f"true_{chat(0)}_{NOWEB_ID}", 1, at=t[3]),
        # r1 (stored serialized): READ before any DEVICE counts for both; DEVICE after it
        # is a step back, ignored
        ack(WEBJS_ID, 3, at=t[4]),
        ack(f"true_{chat(1)}_3EB0BBBB00000000000002", 2, at=t[5]),
        # r2: a group's ack shape (with its participant), PLAYED
        ack(f"false_120363@g.us_{PLAIN_ID}_{chat(2)}", 4, at=t[6]),
    ]
    applied = delivery.apply(store, batch)
    r0, r1, r2 = rows(store, cid)
    assert (r0.ack, r0.delivered_at, r0.read_at) == (2, t[1], None)
    assert (r1.ack, r1.delivered_at, r1.read_at) == (3, t[4], t[4])
    assert (r2.ack, r2.delivered_at, r2.read_at) == (4, t[6], t[6])
    camp = store.get_campaign(cid)
    assert (camp.delivered, camp.read, camp.sent, camp.failed) == (3, 2, 3, 0)
    assert (applied.delivered, applied.read, applied.campaigns) == (3, 2, frozenset({cid}))
    counters_true(store, cid)

    before = everything(store)
    again = delivery.apply(store, batch)
    assert everything(store) == before
    assert (again.acks, again.delivered, again.campaigns) == (0, 0, frozenset())


def test_a_background_batch_waits_for_an_operators_action_on_its_way_to_its_write(
    store: Store,
) -> None:
    """The listener's batches (hold_off) do not take the write lock while a resume is on
    its way to its claim (`Store.urgent`): they are written the moment it is done, or
    after the hold-off at worst; a plain apply never waits."""
    cid = sent_campaign(store, [NOWEB_ID, WEBJS_ID])
    done: list[float] = []

    def background(event: WahaEvent, hold_off: float) -> None:
        delivery.apply(store, [event], hold_off=hold_off)
        done.append(time.monotonic())

    with store.urgent():
        writer = threading.Thread(target=background, args=(ack(NOWEB_ID, 2), 5.0))
        writer.start()
        time.sleep(0.2)
        assert not done and store.get_campaign(cid).delivered == 0  # held off
        delivery.apply(store, [ack(WEBJS_ID, 2)])  # not a background write: at once
        assert store.get_campaign(cid).delivered == 1
        left = time.monotonic()
    writer.join(5.0)
    assert done and done[0] - left < 1.0  # written when the action was done, not at 5 s
    assert store.get_campaign(cid).delivered == 2

    started = time.monotonic()
    with store.urgent():  # an action that never ends: the batch waits its hold-off only
        background(ack(NOWEB_ID, 3), 0.1)
    assert 0.1 <= done[1] - started < 2.0
    assert store.get_campaign(cid).read == 1


def test_a_write_waiting_for_a_background_batch_is_told_when_it_ends(store: Store) -> None:
    cid = sent_campaign(store, [NOWEB_ID])
    assert store.background_done(0.0)  # none under way
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.background_write(0.0):
            inside.set()
            release.wait(5.0)

    writer = threading.Thread(target=hold)
    writer.start()
    assert inside.wait(5.0)
    assert not store.background_done(0.05)
    threading.Timer(0.1, release.set).start()
    assert store.background_done(5.0)
    writer.join(5.0)
    assert store.get_campaign(cid).status == S.COMPLETED


def test_an_ack_matching_no_recipient_is_ignored(store: Store) -> None:
    cid = sent_campaign(store, [NOWEB_ID])
    before = everything(store)
    applied = delivery.apply(store, [ack("true_1@c.us_SOMEONE-ELSES", 3), ack("3EB0FFFF", 2)])
    assert everything(store) == before
    assert applied.ignored == 2 and not applied.changed
    assert store.get_campaign(cid).delivered == 0


@pytest.mark.parametrize("status", [S.COMPLETED, S.CANCELLED, S.PAUSED, S.FAILED])
def test_acks_of_a_campaign_that_ended_still_count(store: Store, status: CampaignStatus) -> None:
    cid = sent_campaign(store, [NOWEB_ID], status=status)
    delivery.apply(store, [ack(NOWEB_ID, 3)])
    camp = store.get_campaign(cid)
    assert (camp.status, camp.delivered, camp.read) == (status, 1, 1)


def test_an_error_ack_fails_only_a_sent_or_unknown_recipient_whatsapp_never_acknowledged(
    store: Store,
) -> None:
    ids = ["E0", "E1", "E2", "E3"]
    cid = sent_campaign(store, ids)
    force_recipient(store, cid, 1, ack=1)  # SERVER seen: the ERROR comes too late
    # Its send's answer was lost: the ERROR says how it ended.
    force_recipient(store, cid, 2, status=RS.UNKNOWN, sent_at=None)
    force_recipient(store, cid, 3, ack=0)  # PENDING is no acknowledgement
    force(store, cid, sent=3, unknown=1)
    applied = delivery.apply(store, [ack(f"true_{chat(i)}_E{i}", -1) for i in range(4)])
    r0, r1, r2, r3 = rows(store, cid)
    assert (r0.status, r0.error, r0.ack) == (RS.FAILED, delivery.FAILED_BY_WHATSAPP, -1)
    assert (r1.status, r1.ack) == (RS.SENT, 1)
    assert (r2.status, r2.error, r2.ack) == (RS.FAILED, delivery.FAILED_BY_WHATSAPP, -1)
    assert (r3.status, r3.error) == (RS.FAILED, delivery.FAILED_BY_WHATSAPP)
    camp = store.get_campaign(cid)
    assert (camp.sent, camp.failed, camp.unknown, camp.ack_errors) == (1, 3, 0, 3)
    assert applied.failed == 3
    counters_true(store, cid)
    before = everything(store)
    delivery.apply(store, [ack(f"true_{chat(i)}_E{i}", -1) for i in range(4)])
    assert everything(store) == before  # the same ERRORs again: not counted twice


def test_an_ack_settles_a_recipient_whose_send_was_ambiguous(store: Store) -> None:
    """`unknown`: WAHA's answer was lost, so nobody knew whether it went. A SERVER ack says
    it did: sent, and never to be offered for a retry as unknown."""
    cid = sent_campaign(store, ["U0", "U1"])
    force_recipient(store, cid, 0, status=RS.UNKNOWN, error="no answer from WAHA", sent_at=None)
    force(store, cid, sent=1, unknown=1)
    delivery.apply(store, [ack("U0", 1), ack("U0", 1)])
    r0, _ = rows(store, cid)
    assert (r0.status, r0.error, r0.ack) == (RS.SENT, None, 1)
    camp = store.get_campaign(cid)
    assert (camp.sent, camp.unknown) == (2, 0)
    counters_true(store, cid)


def test_a_server_ack_after_its_error_makes_the_recipient_sent_again(store: Store) -> None:
    cid = sent_campaign(store, ["X0"])
    delivery.apply(store, [ack("X0", -1), ack("X0", 2)])  # the ERROR came first
    (r0,) = rows(store, cid)
    assert (r0.status, r0.error, r0.ack) == (RS.SENT, None, 2)
    camp = store.get_campaign(cid)
    assert (camp.sent, camp.failed, camp.delivered, camp.ack_errors) == (1, 0, 1, 0)
    counters_true(store, cid)


def test_error_acks_in_a_row_pause_a_running_campaign(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    ids = [f"M{i}" for i in range(6)]
    cid = sent_campaign(
        store, ids, status=S.RUNNING, max_consecutive_failures=3, lease_owner="elsewhere"
    )
    delivery.apply(store, [ack("M0", -1), ack("M1", -1)])
    assert store.get_campaign(cid).ack_errors == 2
    delivery.apply(store, [ack("M2", 1)])  # WhatsApp accepted one: the run is over
    assert store.get_campaign(cid).ack_errors == 0
    delivery.apply(store, [ack("M3", -1), ack("M4", -1)])
    assert store.get_campaign(cid).status == S.RUNNING
    with caplog.at_level(logging.WARNING):
        applied = delivery.apply(store, [ack("M5", -1)])
    camp = store.get_campaign(cid)
    assert (camp.status, camp.ack_errors, applied.paused) == (S.PAUSED, 3, (cid,))
    assert camp.pause_reason == delivery.paused_reason(3)
    assert "WhatsApp refused 3 messages in a row" in (camp.pause_reason or "")
    assert [(e.kind, e.detail) for e in store.events(cid)][-1] == ("paused", camp.pause_reason)
    assert any(
        f"campaign {cid}" in r.getMessage() and "reach-out timelock" in r.getMessage()
        for r in caplog.records
    )
    counters_true(store, cid)


def test_error_acks_never_pause_a_campaign_that_is_not_running(store: Store) -> None:
    cid = sent_campaign(store, ["A", "B"], status=S.COMPLETED, max_consecutive_failures=1)
    applied = delivery.apply(store, [ack("A", -1), ack("B", -1)])
    camp = store.get_campaign(cid)
    assert (camp.status, camp.failed, camp.ack_errors, applied.paused) == (S.COMPLETED, 2, 2, ())
    assert [e.kind for e in store.events(cid)] == ["created"]


def test_a_limit_of_zero_never_pauses(store: Store) -> None:
    cid = sent_campaign(store, ["A", "B"], status=S.RUNNING, max_consecutive_failures=0)
    delivery.apply(store, [ack("A", -1), ack("B", -1)])
    assert store.get_campaign(cid).status == S.RUNNING


def test_one_batch_writes_every_campaign_it_touches_and_pauses_only_the_one_due(
    store: Store,
) -> None:
    """A batch of many campaigns' acks (the feed's batches at thousands a second): each
    campaign's counters and its run of ERROR acks move by its own events alone."""
    on_top = sent_campaign(store, ["A0", "A1"], status=S.RUNNING, max_consecutive_failures=2)
    reset = sent_campaign(store, ["B0", "B1"], status=S.RUNNING, max_consecutive_failures=2)
    ended = sent_campaign(store, ["C0", "C1"], status=S.COMPLETED, max_consecutive_failures=1)
    acked = sent_campaign(store, ["D0", "D1"], status=S.RUNNING, max_consecutive_failures=1)
    force(store, on_top, ack_errors=1)
    force(store, reset, ack_errors=1)
    applied = delivery.apply(
        store,
        [
            ack("D0", 3),
            ack("A0", -1),  # one more in a row: 2, its limit
            ack("B0", -1),
            ack("C0", -1),
            ack("B1", 1),  # WhatsApp took one of B's: its run is over
            ack("D1", 2),
            ack("D0", 1),  # overtaken
        ],
    )
    got = {cid: store.get_campaign(cid) for cid in (on_top, reset, ended, acked)}
    assert applied.paused == (on_top,)
    assert {cid: (c.status, c.ack_errors) for cid, c in got.items()} == {
        on_top: (S.PAUSED, 2),
        reset: (S.RUNNING, 0),
        ended: (S.COMPLETED, 1),
        acked: (S.RUNNING, 0),
    }
    assert (got[acked].delivered, got[acked].read, got[acked].failed) == (2, 1, 0)
    assert [(c.sent, c.failed) for c in got.values()] == [(1, 1), (1, 1), (1, 1), (2, 0)]
    assert applied.campaigns == frozenset(got)
    for cid in got:
        counters_true(store, cid)


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[SimulatorServer]:
    yield from module_simulator()


@pytest.fixture
def sim_server(shared_sim: SimulatorServer) -> SimulatorServer:
    return reset_simulator(shared_sim)


async def test_the_runner_stops_when_error_acks_pause_its_campaign(
    store: Store, sim_server: SimulatorServer
) -> None:
    """The real runner on the simulator: ERROR acks applied "during" its waits pause the
    campaign through the store, and the run stops at its next commit. WAHA without
    pre-generated ids: each outcome is then committed before the next send (with ids they
    are written behind in real time, which the fake clock's instant waits may outrun)."""
    sim_server.state.message_ids = False
    cid = make_campaign(store, 12, delay_min=5.0, delay_max=5.0, max_consecutive_failures=2)

    def refuse(_seconds: float) -> None:
        # WhatsApp refuses every message the store has recorded sent so far.
        refused = [ack(r.message_id or "", -1) for r in store.recipients(cid, status=RS.SENT)]
        if refused:
            delivery.apply(store, refused)

    client = WahaClient(sim_server.url)
    try:
        pool = RunnerPool(store, client, config=fast_config(FakeClock(on_wait=refuse)))
        await pool.start(cid)
        end = await asyncio.wait_for(pool.wait(cid), 20)
    finally:
        await client.aclose()
    camp = store.get_campaign(cid)
    assert camp.status == S.PAUSED
    assert camp.pause_reason is not None and "WhatsApp refused" in camp.pause_reason
    assert end is not None and type(end).__name__ == "Paused"
    assert len(sim_server.state.sent()) < 12  # it stopped sending
    assert camp.lease_owner is None
    counters_true(store, cid)


async def test_acks_find_what_the_runner_sent_in_every_engine_shape(
    store: Store, sim_server: SimulatorServer
) -> None:
    """Sent for real (NOWEB with pre-generated ids, then WEBJS answering serialized ids),
    acked in the shape WAHA sends acks: every recipient is found."""
    for engine in ("NOWEB", "WEBJS"):
        sim_server.state.engine = engine
        before = len(sim_server.state.sent())
        cid = make_campaign(store, 3)
        client = WahaClient(sim_server.url)
        try:
            pool = RunnerPool(store, client, config=fast_config())
            await pool.start(cid)
            await asyncio.wait_for(pool.wait(cid), 20)
        finally:
            await client.aclose()
        assert store.get_campaign(cid).sent == 3
        acks = [ack(f"true_{m.chat_id}_{bare(m.id)}", 2) for m in sim_server.state.sent()[before:]]
        delivery.apply(store, acks)
        assert store.get_campaign(cid).delivered == 3, engine
        assert all(r.ack == 2 for r in rows(store, cid)), engine


# -- unconfirmed ---------------------------------------------------------------------------


def test_unconfirmed_is_flagged_only_while_the_feed_was_live_and_acks_come(
    store: Store,
) -> None:
    sent = T0
    a = sent_campaign(store, ["U0", "U1", "U2"], sent_at=sent)
    force_recipient(store, a, 1, ack=1)  # confirmed
    force_recipient(store, a, 2, ack=0)  # PENDING only: not confirmed
    b = sent_campaign(store, ["V0"], sent_at=sent, session="no-acks")
    flag = delivery.flag_unconfirmed
    # Not yet 60 s
    assert (
        flag(
            store,
            live_since=sent - timedelta(minutes=1),
            sessions_with_acks={"default"},
            older_than=timedelta(seconds=60),
            now=sent + timedelta(seconds=59),
        )
        == 0
    )
    # The feed came up after the send: it may have missed the ack
    assert (
        flag(
            store,
            live_since=sent + timedelta(seconds=1),
            sessions_with_acks={"default"},
            older_than=timedelta(seconds=60),
            now=sent + timedelta(seconds=120),
        )
        == 0
    )
    # No session known to send acks
    assert (
        flag(
            store,
            live_since=sent - timedelta(minutes=1),
            sessions_with_acks=set(),
            now=sent + timedelta(seconds=120),
        )
        == 0
    )
    assert (
        flag(
            store,
            live_since=sent - timedelta(minutes=1),
            sessions_with_acks={"default"},
            now=sent + timedelta(seconds=61),
        )
        == 2
    )
    assert [bool(r.unconfirmed) for r in rows(store, a)] == [True, False, True]
    assert [bool(r.unconfirmed) for r in rows(store, b)] == [False]  # its session: no acks
    assert store.get_campaign(a).unconfirmed == 2
    # Flagged once
    assert (
        flag(
            store,
            live_since=sent - timedelta(minutes=1),
            sessions_with_acks={"default"},
            now=sent + timedelta(seconds=300),
        )
        == 0
    )
    counters_true(store, a)

    applied = delivery.apply(store, [ack("U0", 1), ack("U2", 0)])  # late SERVER clears
    assert applied.confirmed == 1
    assert [bool(r.unconfirmed) for r in rows(store, a)] == [False, False, True]
    assert store.get_campaign(a).unconfirmed == 1
    delivery.apply(store, [ack("U2", -1)])  # failed, no longer unconfirmed
    assert store.get_campaign(a).unconfirmed == 0
    counters_true(store, a)


# -- replies and opt-outs --------------------------------------------------------------------


def test_a_reply_marks_the_most_recent_campaign_that_messaged_the_number(store: Store) -> None:
    old = sent_campaign(store, ["O0", "O1"], sent_at=T0 - timedelta(days=3))
    new = sent_campaign(store, ["N0"], sent_at=T0 - timedelta(hours=1))
    ancient = sent_campaign(store, ["Z0", "Z1", "Z2"], sent_at=T0 - timedelta(days=31))
    batch = [
        message(f"{phone(0)}@s.whatsapp.net", "Who is this?", at=T0),  # NOWEB's shape
        message(chat(0), "second answer", at=T0 + timedelta(minutes=1), ident="IN2"),
        message(chat(1), "thanks", at=T0),
        message(chat(2), "hello?", at=T0),  # only the 31-day-old campaign messaged it
    ]
    applied = delivery.apply(store, batch)
    (n0,) = rows(store, new)
    assert (n0.replied_at, n0.reply_text) == (T0, "Who is this?")  # the first reply kept
    o0, o1 = rows(store, old)
    assert o0.replied_at is None  # an older campaign: the newer one got the answer
    assert (o1.replied_at, o1.reply_text) == (T0, "thanks")
    assert all(r.replied_at is None for r in rows(store, ancient))
    assert [store.get_campaign(c).replied for c in (old, new, ancient)] == [1, 1, 0]
    assert applied.replies == 2 and applied.ignored == 1
    before = everything(store)
    delivery.apply(store, batch)
    assert everything(store) == before


def test_a_reply_is_matched_by_the_stored_chat_id_not_the_csv_phone(store: Store) -> None:
    """check-exists corrected a Brazilian number: the chat differs from the phone."""
    cid = sent_campaign(store, ["B0"])
    force_recipient(store, cid, 0, phone="5511987654321", chat_id="551187654321@c.us")
    delivery.apply(store, [message("551187654321@s.whatsapp.net", "STOP")])
    (r0,) = rows(store, cid)
    assert r0.reply_text == "STOP"
    # Both shapes of the number are kept off every later campaign.
    assert store.opted_out(["5511987654321", "551187654321"]) == {
        "5511987654321",
        "551187654321",
    }


def test_a_reply_on_another_session_does_not_answer_the_campaign(store: Store) -> None:
    cid = sent_campaign(store, ["S0"])
    delivery.apply(store, [message(chat(0), "hi", session="other-number")])
    assert rows(store, cid)[0].replied_at is None


def test_groups_broadcasts_and_linked_ids_are_not_replies(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    cid = sent_campaign(store, ["G0"])
    lid = "123456789012345@lid"
    with caplog.at_level(logging.INFO, logger="waha_tui.delivery"):
        applied = delivery.apply(
            store,
            [
                message("120363000000000001@g.us", "STOP"),
                message("status@broadcast", "STOP"),
                message(lid, "STOP"),
            ],
        )
    assert applied.ignored == 3 and not applied.changed
    assert rows(store, cid)[0].replied_at is None
    assert store.count_optouts() == 0
    lines = [r.getMessage() for r in caplog.records]
    assert any("linked id" in line and "opt-out could not be recorded" in line for line in lines)
    assert not any(lid in line or "123456789012" in line for line in lines)  # masked


def test_an_opt_out_reply_puts_the_number_on_the_list_once(store: Store) -> None:
    cid = sent_campaign(store, ["P0", "P1", "P2", "P3"])
    batch = [
        message(chat(0), "  Stop! "),
        message(chat(1), "don't stop"),
        message(chat(2), "ARRET"),  # ARRÊT without its accent
        message(chat(3), "Dar de  baja."),
        message("4915999999999@c.us", "unsubscribe"),  # a stranger: no campaign
    ]
    applied = delivery.apply(store, batch, now=T0)
    assert {(o.phone, o.campaign_id) for o in applied.opted_out} == {
        (phone(0), cid),
        (phone(2), cid),
        (phone(3), cid),
        ("4915999999999", None),
    }
    listed = {o.phone: o for o in store.optouts()}
    assert set(listed) == {phone(0), phone(2), phone(3), "4915999999999"}
    assert (listed[phone(0)].source, listed[phone(0)].reason) == ("reply", "Stop!")
    assert listed[phone(0)].campaign_id == cid
    assert store.get_campaign(cid).replied == 4  # an opt-out is a reply too
    before = everything(store)
    again = delivery.apply(store, batch, now=T0 + timedelta(hours=1))
    assert everything(store) == before  # added_at kept: idempotent
    assert again.opted_out == ()


def test_stored_keywords_are_the_ones_every_host_uses(store: Store) -> None:
    cid = sent_campaign(store, ["K0", "K1"])
    store.set_optout_keywords(["Fertig"])
    delivery.apply(store, [message(chat(0), "STOP"), message(chat(1), "fertig")])
    assert store.opted_out([phone(0), phone(1)]) == {phone(1)}
    assert store.get_campaign(cid).replied == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("STOP", True),
        ("stop", True),
        (" Stop!!", True),
        ("ARRÊT", True),
        ("arret", True),
        ("Arrête", False),
        ("désinscrire", True),
        ("DESINSCRIRE", True),
        ("¡Baja!", True),
        ("don't stop", False),
        ("stop it", False),
        ("STOPP", True),
        ("", False),
        ("...", False),
    ],
)
def test_opt_out_keywords_by_default(text: str, expected: bool) -> None:
    assert is_optout(text, matcher(DEFAULT_KEYWORDS)) is expected


def test_folding_ignores_case_accents_and_unicode_forms() -> None:
    composed, decomposed = "ARR\u00caT", "ARRE\u0302T"
    assert fold(composed) == fold(decomposed) == fold("arret") == "arret"
