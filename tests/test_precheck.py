"""The runner's checks before a recipient's first message, against the WAHA simulator on a
real loopback socket and a real SQLite file: the opt-out list, and WAHA's check-exists
(campaign.check_numbers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from engine_helpers import (
    FakeClock,
    Recorder,
    fast_config,
    make_campaign,
    module_simulator,
    people,
    phone,
    reset_simulator,
)

from waha_tui import events as ev
from waha_tui.models import OptOut, utcnow
from waha_tui.runner import RunnerConfig, RunnerPool
from waha_tui.simulator import SimState, SimulatorServer
from waha_tui.status import CampaignStatus, RecipientStatus
from waha_tui.store import NewRecipient, Store
from waha_tui.waha import WahaClient

S = CampaignStatus
RS = RecipientStatus
# A Brazilian mobile number with its ninth digit, whose account (area code 31) WhatsApp
# knows without it: the simulator's check-exists answers the 8-digit chat id.
BRAZIL = "5531996883193"
BRAZIL_ON_WHATSAPP = "553196883193@c.us"


@pytest.fixture(scope="module")
def module_server() -> Iterator[SimulatorServer]:
    yield from module_simulator()


@pytest.fixture
def state(module_server: SimulatorServer) -> SimState:
    return reset_simulator(module_server).state


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    st = Store(tmp_path / "campaigns.db")
    yield st
    st.close()


@pytest.fixture
async def client(module_server: SimulatorServer, state: SimState) -> AsyncIterator[WahaClient]:
    c = WahaClient(module_server.url)
    yield c
    await c.aclose()


def opt_out(store: Store, *phones: str) -> None:
    """Numbers on the do-not-contact list, written as any other process would."""
    with store.write() as conn:
        for number in phones:
            conn.execute(
                sa.insert(OptOut.__table__).values(  # type: ignore[attr-defined]
                    phone=number, added_at=utcnow(), source="hand"
                )
            )


async def run(
    store: Store, client: WahaClient, cid: int, config: RunnerConfig, recorder: Any = None
) -> ev.Ended:
    pool = RunnerPool(store, client, config=config)
    if recorder is not None:
        pool.bus.subscribe(recorder)
    await pool.start(cid)
    end = await asyncio.wait_for(pool.wait(cid), 20)
    assert end is not None
    return end


def sent_to(state: SimState) -> list[str]:
    return [m.chat_id for m in state.sent()]


# -- the opt-out list --------------------------------------------------------------------


async def test_an_opted_out_number_is_skipped_with_no_message_and_no_delay(
    store: Store, client: WahaClient, state: SimState
) -> None:
    opt_out(store, phone(1))
    sent_at_wait: list[int] = []
    clock = FakeClock(on_wait=lambda _s: sent_at_wait.append(len(state.sent())))
    cid = make_campaign(store, 4, delay_min=2.0, delay_max=5.0)
    recorder = Recorder()
    end = await run(store, client, cid, fast_config(clock), recorder)

    assert sent_to(state) == [f"{phone(i)}@c.us" for i in (0, 2, 3)]
    skipped = store.recipients(cid)[1]
    assert (skipped.status, skipped.error, skipped.message_id) == (RS.SKIPPED, "opted out", None)
    camp = store.get_campaign(cid)
    assert (camp.status, camp.sent, camp.skipped, camp.failed, camp.next_index) == (
        S.COMPLETED,
        3,
        1,
        0,
        4,
    )
    assert camp.last_error is None and camp.consecutive_failures == 0  # no failure
    assert isinstance(end, ev.Completed) and (end.sent, end.skipped) == (3, 1)
    processed = recorder.of(ev.RecipientProcessed)
    assert [(e.position, e.status, e.skipped) for e in processed] == [
        (0, RS.SENT, 0),
        (1, RS.SKIPPED, 1),
        (2, RS.SENT, 1),
        (3, RS.SENT, 1),
    ]
    assert processed[1].error == "opted out"
    # A wait after each message, none after the skipped one (nothing was sent).
    assert sent_at_wait == [1, 2]


async def test_the_opt_out_list_is_read_once_per_batch(
    store: Store, client: WahaClient, state: SimState, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[int] = []
    real = store.opted_out

    def counted(phones: Any) -> set[str]:
        phones = list(phones)
        asked.append(len(phones))
        return real(phones)

    monkeypatch.setattr(store, "opted_out", counted)
    cid = make_campaign(store, 40)
    end = await run(store, client, cid, fast_config())
    assert isinstance(end, ev.Completed) and end.sent == 40
    # The claim's first read (32), then the rest (8): two queries for 40 recipients.
    assert asked == [32, 8]


async def test_a_number_opting_out_mid_campaign_is_skipped_from_its_next_batch_on(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = make_campaign(store, 40)

    def on_event(event: ev.CampaignEvent) -> None:
        if isinstance(event, ev.RecipientProcessed) and event.position == 0:
            # Two numbers opt out after the first message: one in the batch in hand, one
            # in the next.
            opt_out(store, phone(5), phone(35))

    end = await run(store, client, cid, fast_config(), on_event)
    assert isinstance(end, ev.Completed)
    by_position = store.recipients(cid)
    assert by_position[35].status == RS.SKIPPED and by_position[35].error == "opted out"
    assert f"{phone(35)}@c.us" not in sent_to(state)
    # The batch in hand was read before; with no time passing, it is not read again.
    assert by_position[5].status == RS.SENT
    assert (end.sent, end.skipped) == (39, 1)


async def test_a_long_batch_reads_the_opt_out_list_again_after_optout_refresh(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = make_campaign(store, 6, delay_min=10.0, delay_max=10.0)
    waits: list[float] = []

    def during_the_first_wait(seconds: float) -> None:
        # The number opts out while the run waits after its first message (the run's
        # events come when their outcomes are written, which may be later).
        if not waits:
            opt_out(store, phone(3))
        waits.append(seconds)

    config = fast_config(FakeClock(on_wait=during_the_first_wait), optout_refresh=5.0)
    end = await run(store, client, cid, config, None)
    assert isinstance(end, ev.Completed) and (end.sent, end.skipped) == (5, 1)
    assert store.recipients(cid)[3].status == RS.SKIPPED
    assert f"{phone(3)}@c.us" not in sent_to(state)


# -- check-exists ------------------------------------------------------------------------


async def test_a_number_not_on_whatsapp_is_skipped_with_no_send_and_lookups_are_paced(
    store: Store, client: WahaClient, state: SimState
) -> None:
    state.not_on_whatsapp([phone(1)])
    sent_at_wait: list[int] = []
    clock = FakeClock(on_wait=lambda _s: sent_at_wait.append(len(state.sent())))
    cid = make_campaign(store, 3, delay_min=2.0, delay_max=5.0, check_numbers=True)
    recorder = Recorder()
    end = await run(store, client, cid, fast_config(clock), recorder)

    assert [p for _, p in state.lookups] == [phone(0), phone(1), phone(2)]
    assert sent_to(state) == [f"{phone(0)}@c.us", f"{phone(2)}@c.us"]
    rec = store.recipients(cid)[1]
    assert (rec.status, rec.error, rec.checked_at) == (RS.SKIPPED, "not on WhatsApp", None)
    assert isinstance(end, ev.Completed) and (end.sent, end.skipped) == (2, 1)
    assert store.get_campaign(cid).skipped == 1
    assert [e.status for e in recorder.of(ev.RecipientProcessed)] == [RS.SENT, RS.SKIPPED, RS.SENT]
    # A lookup is waited after like a message: check, wait, send, wait, check (not on
    # WhatsApp), wait, check, wait, send.
    assert sent_at_wait == [0, 1, 1, 1]
    assert all(2.0 <= w <= 5.0 for w in clock.waits)


async def test_the_chat_id_whatsapp_answers_is_used_and_stored(
    store: Store, client: WahaClient, state: SimState
) -> None:
    recipients = [NewRecipient(BRAZIL, f"{BRAZIL}@c.us", "Ana", {}), *people(1)]
    cid = make_campaign(store, text="Hi {name}", recipients=recipients, check_numbers=True)
    end = await run(store, client, cid, fast_config())
    assert isinstance(end, ev.Completed) and end.sent == 2
    assert sent_to(state) == [BRAZIL_ON_WHATSAPP, f"{phone(0)}@c.us"]
    first, second = store.recipients(cid)
    assert (first.phone, first.chat_id) == (BRAZIL, BRAZIL_ON_WHATSAPP)
    assert first.checked_at is not None and second.checked_at is not None


async def test_without_check_numbers_nothing_is_looked_up(
    store: Store, client: WahaClient, state: SimState
) -> None:
    state.not_on_whatsapp([phone(1)])
    cid = make_campaign(store, 2)
    end = await run(store, client, cid, fast_config())
    assert isinstance(end, ev.Completed) and end.sent == 2
    assert state.lookups == []


async def test_a_check_exists_error_pauses_the_campaign_as_a_send_error_does(
    store: Store, client: WahaClient, state: SimState
) -> None:
    cid = make_campaign(store, 3, check_numbers=True)
    state.fail_next_checks(1)  # NOWEB's rate-overlimit (#619)
    end = await run(store, client, cid, fast_config())
    assert isinstance(end, ev.Paused)
    assert "WhatsApp's rate limit on session 'default' (rate-overlimit)" in end.reason
    assert state.sent() == []
    camp = store.get_campaign(cid)
    assert (camp.status, camp.next_index, camp.sent, camp.failed) == (S.PAUSED, 0, 0, 0)
    first = store.recipients(cid)[0]
    assert (first.status, first.checked_at, first.message_id) == (RS.PENDING, None, None)

    # The same error on a send gets the same verdict.
    state.reset()
    sent_cid = make_campaign(store, 1)
    state.fail_next_sends(1, "rate-overlimit", data=429)
    sent_end = await run(store, client, sent_cid, fast_config())
    assert isinstance(sent_end, ev.Paused)
    assert "WhatsApp's rate limit on session 'default' (rate-overlimit)" in sent_end.reason


async def test_a_resume_does_not_check_a_checked_number_again(
    store: Store, client: WahaClient, state: SimState
) -> None:
    recipients = [NewRecipient(BRAZIL, f"{BRAZIL}@c.us", "Ana", {}), *people(2)]
    cid = make_campaign(store, text="Hi {name}", recipients=recipients, check_numbers=True)
    # Checked, then its send fails: the campaign pauses with it pending.
    state.fail_next_sends(1, "Connection Closed")
    end = await run(store, client, cid, fast_config())
    assert isinstance(end, ev.Paused) and "Connection Closed" in end.reason
    first = store.recipients(cid)[0]
    assert (first.status, first.chat_id) == (RS.PENDING, BRAZIL_ON_WHATSAPP)
    assert first.checked_at is not None
    assert [p for _, p in state.lookups] == [BRAZIL]

    end = await run(store, client, cid, fast_config())
    assert isinstance(end, ev.Completed) and end.sent == 3
    # Not asked again; sent to the chat id WhatsApp gave the first time.
    assert [p for _, p in state.lookups] == [BRAZIL, phone(0), phone(1)]
    assert sent_to(state)[0] == BRAZIL_ON_WHATSAPP
