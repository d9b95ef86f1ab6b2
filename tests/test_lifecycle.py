"""A campaign's life beyond sending, through the service on SQLite and PostgreSQL: delete
(never while it runs; in short write transactions; nothing runnable if it is cut short;
its history and an image no other campaign sends go with it), clone (fresh recipients, its
text, image and settings, whether or not its list still exists) and edit (name, start,
delay of a Scheduled or Paused campaign, with the checks of create)."""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import (
    PNG,
    fast_config,
    force,
    force_recipient,
    make_campaign,
    module_simulator,
    phone,
    raw_rows,
    reset_simulator,
    snapshot,
)

from waha_tui import events as ev
from waha_tui.errors import InvalidInput, UserError
from waha_tui.models import utcnow
from waha_tui.runner import RunnerPool
from waha_tui.service import SESSION_FIXED, CampaignDraft, CampaignService
from waha_tui.simulator import SimState, SimulatorServer
from waha_tui.status import CampaignStatus, StatusRefused, TransitionError
from waha_tui.store import ClaimLost, NewRecipient, NotFound, Store, StoreError

S = CampaignStatus
ME = f"{pwd.getpwuid(os.geteuid()).pw_name}@{socket.gethostname()}"


@pytest.fixture(scope="module")
def module_server() -> Iterator[SimulatorServer]:
    yield from module_simulator()


@pytest.fixture
def sim_server(module_server: SimulatorServer) -> SimulatorServer:
    return reset_simulator(module_server)


@pytest.fixture
def db(db_target: str) -> str:
    return db_target


@pytest.fixture
async def service(db: str, sim_server: SimulatorServer) -> AsyncIterator[CampaignService]:
    from waha_tui.waha import WahaClient

    store = Store(db)
    client = WahaClient(sim_server.url)
    svc = CampaignService(store, client, RunnerPool(store, client, config=fast_config()))
    yield svc
    await svc.pool.stop_all("test over", grace=5)
    await svc.aclose()


def counted(db: str, table: str, campaign_id: int) -> int:
    """Rows of `table` for a campaign, straight from the database."""
    column = "id" if table == "campaign" else "campaign_id"
    [(count,)] = raw_rows(db, f"SELECT count(*) FROM {table} WHERE {column} = :c", c=campaign_id)
    return int(count)


def status_of(db: str, campaign_id: int) -> str | None:
    found = raw_rows(db, "SELECT status FROM campaign WHERE id = :c", c=campaign_id)
    return found[0][0] if found else None


def media(db: str) -> set[str]:
    return {sha for (sha,) in raw_rows(db, "SELECT sha256 FROM media")}


def events(db: str, campaign_id: int) -> list[tuple[str, str | None]]:
    return [
        (kind, detail)
        for kind, detail in raw_rows(
            db,
            "SELECT kind, detail FROM campaign_event WHERE campaign_id = :c ORDER BY id",
            c=campaign_id,
        )
    ]


def recipients(store: Store, campaign_id: int) -> list[tuple[Any, ...]]:
    return [
        (
            *(r.position, r.phone, r.chat_id, r.name, r.variables, r.status),
            *(r.message_id, r.error, r.attempts, r.sent_at),
        )
        for r in store.recipients(campaign_id)
    ]


async def with_image(
    service: CampaignService, tmp_path: Path, name: str, image: bytes, count: int = 3
) -> int:
    csv = tmp_path / f"{name}.csv"
    csv.write_text("phone,name\n" + "".join(f"+{phone(i)},P{i}\n" for i in range(count)))
    path = tmp_path / f"{name}.png"
    path.write_bytes(image)
    return await service.create_campaign(
        CampaignDraft(name=name, message="Hi {name}", contacts_file=str(csv), image=str(path))
    )


# -- delete ------------------------------------------------------------------------------


async def test_delete_takes_its_recipients_history_and_an_image_nobody_else_sends(
    service: CampaignService, db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shared = PNG
    own = PNG + b"another image: other bytes"
    first = await with_image(service, tmp_path, "first", shared)
    second = await with_image(service, tmp_path, "second", shared)
    alone = await with_image(service, tmp_path, "alone", own)
    plain = make_campaign(service.store, 2)
    force(service.store, alone, status=S.PAUSED, next_index=1, sent=1)
    force_recipient(service.store, alone, 0, status="sent", message_id="true_x_1")
    await service.pause(first)  # history to go with it
    shas = media(db)
    assert len(shas) == 2
    kept = (recipients(service.store, plain), events(db, plain))

    caplog.set_level(logging.INFO, logger="waha_tui.history")
    deleted = await service.delete_campaign(alone)
    assert (deleted.campaign.id, deleted.campaign.status) == (alone, S.PAUSED)
    assert deleted.image_removed
    assert [counted(db, t, alone) for t in ("campaign", "recipient", "campaign_event")] == [0] * 3
    assert len(media(db)) == 1  # its own image went; the shared one stays
    # The log keeps what the history cannot any more.
    assert (
        f"campaign {alone}: deleted: 'alone' with 3 recipients, its history, and its image, by {ME}"
    ) in caplog.messages

    left = media(db)
    assert not (await service.delete_campaign(first)).image_removed  # `second` sends it
    assert media(db) == left
    assert (await service.delete_campaign(second)).image_removed
    assert media(db) == set()
    assert (recipients(service.store, plain), events(db, plain)) == kept
    with pytest.raises(NotFound, match=f"no campaign with id {alone}"):
        await service.delete_campaign(alone)


@pytest.mark.parametrize("status", [S.SCHEDULED, S.PAUSED, S.COMPLETED, S.FAILED, S.CANCELLED])
async def test_every_status_but_running_can_be_deleted(
    service: CampaignService, db: str, status: CampaignStatus
) -> None:
    cid = make_campaign(service.store, 2)
    force(service.store, cid, status=status)
    await service.delete_campaign(cid)
    assert status_of(db, cid) is None


async def test_a_running_campaign_is_never_deleted(service: CampaignService, db: str) -> None:
    cid = make_campaign(service.store, 3)
    service.store.claim(cid, "another-host:1:x", 60)
    before = snapshot(db)
    with pytest.raises(TransitionError) as refused:
        await service.delete_campaign(cid)
    assert str(refused.value) == (
        f"campaign {cid} is Running: it cannot be deleted; pause or cancel it first"
    )
    assert snapshot(db) == before


async def test_a_big_delete_is_many_short_transactions_that_let_other_writers_in(
    service: CampaignService, db: str
) -> None:
    cid = make_campaign(service.store, 25)
    other = make_campaign(service.store, 1, name="other")
    service.delete_batch = 10
    # Another process, which waits 0.2 s at most for the write lock.
    elsewhere = Store(db, busy_timeout=0.2)
    seen: list[tuple[int, int, str | None]] = []

    def between(gone: int) -> None:
        # Each batch is committed: others see it, and can write before the next one.
        seen.append((gone, counted(db, "recipient", cid), status_of(db, cid)))
        elsewhere.edit_campaign(other, name=f"written after {gone}")

    try:
        await service.delete_campaign(cid, on_batch=between)
        assert elsewhere.get_campaign(other).name == "written after 25"
    finally:
        elsewhere.close()
    assert seen == [(10, 15, S.DELETING), (20, 5, S.DELETING), (25, 0, S.DELETING)]
    assert status_of(db, cid) is None


async def test_a_delete_cut_short_leaves_nothing_runnable_and_deleting_again_finishes(
    service: CampaignService, db: str, state: SimState
) -> None:
    cid = make_campaign(service.store, 7)  # due now
    force(service.store, cid, next_index=2, sent=1, failed=1)
    force_recipient(service.store, cid, 0, status="sent", message_id="true_x_0")
    force_recipient(service.store, cid, 1, status="failed", error="bad number")
    # A process that died after the first batch of its delete.
    service.store.mark_deleting(cid)
    assert service.store.delete_recipients(cid, 3) == 3
    assert (status_of(db, cid), counted(db, "recipient", cid)) == (S.DELETING, 4)
    assert events(db, cid)[-1] == ("deleting", "was Scheduled, with 7 recipients")
    before = snapshot(db)

    # Nothing runs, resumes, retries, edits, clones, pauses or cancels it meanwhile.
    being = f"campaign {cid} is being deleted"
    assert service.store.claimable_campaigns() == []
    with pytest.raises(ClaimLost, match=being):
        service.store.claim(cid, "runner:1:x", 30)
    with pytest.raises(UserError, match=being):
        await service.resume(cid)
    with pytest.raises(StoreError, match=being):
        await service.retry(cid, unknown=True, failed=True)
    with pytest.raises(StatusRefused, match=f"{being}: only a Scheduled or Paused"):
        await service.edit_campaign(cid, name="back")
    with pytest.raises(StatusRefused, match=f"{being}: it cannot be cloned"):
        await service.clone_campaign(cid)
    with pytest.raises(TransitionError, match=f"{being}: it cannot be paused"):
        await service.pause(cid)
    with pytest.raises(TransitionError, match=f"{being}: it cannot be cancelled"):
        await service.cancel(cid)
    assert await service.recover_interrupted() == []
    assert snapshot(db) == before
    assert state.sent() == []

    deleted = await service.delete_campaign(cid)  # again: finishes the job
    assert deleted.campaign.status == S.DELETING
    assert [counted(db, t, cid) for t in ("campaign", "recipient", "campaign_event")] == [0] * 3


async def test_a_delete_interrupted_between_batches_is_left_deleting(
    service: CampaignService, db: str
) -> None:
    cid = make_campaign(service.store, 30)
    service.delete_batch, service.delete_rest = 10, 5.0

    task = asyncio.ensure_future(service.delete_campaign(cid))
    while counted(db, "recipient", cid) != 20:
        await asyncio.sleep(0.01)
    task.cancel()  # the dashboard quits during a rest
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (status_of(db, cid), counted(db, "recipient", cid)) == (S.DELETING, 20)
    service.delete_rest = 0.0
    await service.delete_campaign(cid)
    assert status_of(db, cid) is None


# -- clone -------------------------------------------------------------------------------


async def test_a_clone_has_every_recipient_fresh_its_text_image_and_settings(
    service: CampaignService, db: str, state: SimState, tmp_path: Path
) -> None:
    people = [
        NewRecipient(phone(i), f"{phone(i)}@c.us", name, {"city": city})
        for i, (name, city) in enumerate([("Ana", "Lisbon"), (None, "Porto"), ("Bo", "Oslo")])
    ]
    service.store.create_list("friends", people)
    image = tmp_path / "offer.png"
    image.write_bytes(PNG)
    cid = await service.create_campaign(
        CampaignDraft(
            name="Spring",
            message="Hi {name} from {city}",
            list_name="friends",
            image=str(image),
            session="default",
            delay=(0.0, 0.0),
            default_name="pal",
            auto_resume=True,
        )
    )
    # It ran: one sent, one failed, one unknown; and its list is gone since.
    await service.start(cid)
    assert isinstance(await asyncio.wait_for(service.pool.wait(cid), 20), ev.Completed)
    force_recipient(service.store, cid, 1, status="failed", error="bad", message_id=None)
    force_recipient(service.store, cid, 2, status="unknown", error="no answer")
    await service.delete_list("friends")
    source_recipients = recipients(service.store, cid)
    state.reset()

    started = utcnow()
    new = await service.clone_campaign(cid)
    src, camp = service.store.get_campaign(cid), service.store.get_campaign(new)
    assert camp.name == "Spring (copy)"
    assert (camp.status, camp.total, camp.sent, camp.failed, camp.unknown, camp.next_index) == (
        S.SCHEDULED,
        3,
        0,
        0,
        0,
        0,
    )
    assert (camp.started_at, camp.completed_at, camp.pause_reason, camp.last_error) == (None,) * 4
    assert camp.scheduled_at is not None and started <= camp.scheduled_at <= utcnow()
    assert camp.created_by == ME
    settings = (
        "session",
        "template_text",
        "default_name",
        "image_path",
        "image_mime",
        "image_sha256",
        "list_name",
        "delay_min",
        "delay_max",
        "typing",
        "break_every",
        "break_seconds",
        "break_max",
        "send_window",
        "window_days",
        "timezone",
        "max_consecutive_failures",
        "auto_resume",
    )
    assert {k: getattr(camp, k) for k in settings} == {k: getattr(src, k) for k in settings}
    assert camp.image_sha256 and camp.auto_resume and camp.list_name == "friends"
    assert recipients(service.store, new) == [
        (
            *(i, phone(i), f"{phone(i)}@c.us", person.name, person.variables, "pending"),
            *(None, None, 0, None),
        )
        for i, person in enumerate(people)
    ]
    assert recipients(service.store, cid) == source_recipients  # the source keeps its own
    assert events(db, new) == [
        ("created", f"3 recipients cloned from campaign {cid}, on session 'default'")
    ]
    assert events(db, cid)[-1] == ("cloned", f"into campaign {new} 'Spring (copy)'")

    # And it sends, to every recipient, the same text and image.
    await service.start(new)
    assert isinstance(await asyncio.wait_for(service.pool.wait(new), 20), ev.Completed)
    assert [(m.chat_id, m.text) for m in state.sent()] == [
        (f"{phone(0)}@c.us", "Hi Ana from Lisbon"),
        (f"{phone(1)}@c.us", "Hi pal from Porto"),
        (f"{phone(2)}@c.us", "Hi Bo from Oslo"),
    ]
    assert all(m.image and m.image["mimetype"] == "image/png" for m in state.sent())


async def test_a_clone_takes_a_name_a_start_and_a_session_and_refuses_bad_ones(
    service: CampaignService, db: str
) -> None:
    cid = make_campaign(service.store, 2, name="Base")
    new = await service.clone_campaign(
        cid, name="Second go", at="2031-05-06T07:08:00+00:00", session="sales"
    )
    camp = service.store.get_campaign(new)
    assert (camp.name, camp.scheduled_at, camp.session) == (
        "Second go",
        datetime(2031, 5, 6, 7, 8, tzinfo=UTC),
        "sales",
    )
    before = snapshot(db)
    with pytest.raises(InvalidInput) as refused:
        await service.clone_campaign(cid, name=" ", at="soon", session=" ")
    assert [(e.field, e.message) for e in refused.value.errors] == [
        ("name", "--name is empty"),
        ("at", "--at 'soon' is not an ISO-8601 date and time, e.g. 2026-12-01T09:30"),
        ("session", "--session is empty"),
    ]
    assert [e.label_message for e in refused.value.errors][:2] == [
        "Name is empty",
        "Start 'soon' is not an ISO-8601 date and time, e.g. 2026-12-01T09:30",
    ]
    with pytest.raises(NotFound, match="no campaign with id 999"):
        await service.clone_campaign(999)
    assert snapshot(db) == before

    long = make_campaign(service.store, 1, name="x" * 200)
    named = service.store.get_campaign(await service.clone_campaign(long)).name
    assert named == "x" * 192 + "… (copy)" and len(named) == 200


# -- edit --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [S.SCHEDULED, S.PAUSED])
async def test_edit_changes_name_start_and_delay_and_says_so_in_the_history(
    service: CampaignService, db: str, status: CampaignStatus
) -> None:
    cid = make_campaign(
        service.store,
        2,
        name="Old",
        scheduled_at=datetime(2030, 1, 2, 3, 4, tzinfo=UTC),
        delay_min=30.0,
        delay_max=60.0,
    )
    force(service.store, cid, status=status)
    edited = await service.edit_campaign(
        cid, name="New", at="2030-02-03T04:05:00+00:00", delay="10-20.5"
    )
    camp = service.store.get_campaign(cid)
    assert (camp.name, camp.scheduled_at, camp.delay_min, camp.delay_max, camp.status) == (
        "New",
        datetime(2030, 2, 3, 4, 5, tzinfo=UTC),
        10.0,
        20.5,
        status,
    )
    assert edited.campaign == camp
    assert edited.changes == [
        "name 'Old' → 'New'",
        "start 2030-01-02 03:04 UTC → 2030-02-03 04:05 UTC",
        "delay 30-60 s → 10-20.5 s",
    ]
    assert events(db, cid)[-1] == ("edited", "; ".join(edited.changes))
    written = len(events(db, cid))
    # The same values again: nothing to record.
    again = await service.edit_campaign(cid, name="New", delay="10-20.5", session="default")
    assert again.changes == [] and len(events(db, cid)) == written


@pytest.mark.parametrize(
    ("status", "why"),
    [
        (S.RUNNING, "pause it first"),
        (S.COMPLETED, "clone it into a new one"),
        (S.CANCELLED, "clone it into a new one"),
    ],
)
async def test_edit_refuses_a_campaign_that_is_not_scheduled_or_paused(
    service: CampaignService, db: str, status: CampaignStatus, why: str
) -> None:
    cid = make_campaign(service.store, 2)
    force(service.store, cid, status=status)
    before = snapshot(db)
    with pytest.raises(StatusRefused) as refused:
        await service.edit_campaign(cid, name="x")
    assert str(refused.value) == (
        f"campaign {cid} is {status}: only a Scheduled or Paused campaign can be edited; {why}"
    )
    assert snapshot(db) == before


async def test_edit_checks_as_create_does_and_never_moves_the_session(
    service: CampaignService, db: str
) -> None:
    cid = make_campaign(service.store, 2)
    before = snapshot(db)
    with pytest.raises(InvalidInput) as refused:
        await service.edit_campaign(cid, name="", at="tomorrow", delay="9-3", session="sales")
    assert [(e.field, e.message) for e in refused.value.errors] == [
        ("name", "--name is empty"),
        ("at", "--at 'tomorrow' is not an ISO-8601 date and time, e.g. 2026-12-01T09:30"),
        ("delay", "--delay '9-3': MIN is larger than MAX"),
        ("session", SESSION_FIXED),
    ]
    with pytest.raises(UserError) as nothing:
        await service.edit_campaign(cid)
    assert str(nothing.value) == (
        "say what to change: --name, --at, --delay, --check-numbers, --window, --days,"
        " --timezone, --break-every or --break"
    )
    assert nothing.value.said("label") == (
        "say what to change: Name, Start, Delay, Check numbers on WhatsApp first, Send window, "
        "Days, Time zone, Break every or Break (s)"
    )
    with pytest.raises(NotFound):
        await service.edit_campaign(999, name="x")
    assert snapshot(db) == before
