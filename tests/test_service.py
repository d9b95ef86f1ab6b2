"""CampaignService: creating campaigns, resume (the reference app's resume tests and more),
pause and cancel, and a whole disconnect-and-resume story against the simulator."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
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
    snapshot,
)

from tests.tui_helpers import make_rig
from waha_tui import events as ev
from waha_tui.errors import InvalidInput, UserError
from waha_tui.models import utcnow
from waha_tui.runner import Clock, RunnerPool
from waha_tui.service import (
    PAUSED_BY_OPERATOR,
    PREP_FRESH,
    CampaignDraft,
    CampaignService,
    parse_when,
)
from waha_tui.simulator import SimState, SimulatorServer
from waha_tui.status import CampaignStatus, RecipientStatus, TransitionError
from waha_tui.store import Claimed, NotFound, Store
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
def db(db_target: str) -> str:
    """A SQLite file or a fresh PostgreSQL database (the `backend` parameter)."""
    return db_target


@pytest.fixture
async def service(db: str, sim_server: SimulatorServer) -> AsyncIterator[CampaignService]:
    store = Store(db)
    client = WahaClient(sim_server.url)
    svc = CampaignService(store, client, RunnerPool(store, client, config=fast_config()))
    yield svc
    await svc.pool.stop_all("test over", grace=5)
    await svc.aclose()


@pytest.fixture
def contacts_csv(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "contacts.csv"
    path.write_text(
        f"phone,name,City\n+{phone(0)},Ana,Berlin\n00{phone(1)},,Recife\n{phone(2)},Bo,Oslo\n"
    )
    yield path


async def finish(service: CampaignService, cid: int) -> ev.Ended:
    end = await asyncio.wait_for(service.pool.wait(cid), 20)
    assert end is not None
    return end


# -- creating ----------------------------------------------------------------------------


async def test_create_from_csv_copies_recipients_in_file_order(
    service: CampaignService, contacts_csv: Path
) -> None:
    cid = await service.create_campaign(
        CampaignDraft(
            name="Spring",
            message="Hi {name} from {city}",
            contacts_file=str(contacts_csv),
            delay="0-0",
            at="2030-01-02T03:04:05+02:00",
        )
    )
    camp = await service.campaign(cid)
    assert (camp.status, camp.total, camp.next_index, camp.list_name) == (
        S.SCHEDULED,
        3,
        0,
        "contacts.csv",
    )
    assert camp.scheduled_at == datetime(2030, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert (camp.delay_min, camp.delay_max, camp.default_name) == (0.0, 0.0, "there")
    recs = await service.recipients(cid)
    assert [(r.position, r.phone, r.chat_id, r.name) for r in recs] == [
        (0, phone(0), f"{phone(0)}@c.us", "Ana"),
        (1, phone(1), f"{phone(1)}@c.us", None),
        (2, phone(2), f"{phone(2)}@c.us", "Bo"),
    ]
    assert recs[1].variables == {"city": "Recife"}


async def test_create_from_a_list_then_deleting_the_list_keeps_the_campaign(
    service: CampaignService, contacts_csv: Path
) -> None:
    await service.import_contacts(str(contacts_csv), "friends")
    cid = await service.create_campaign(
        CampaignDraft(name="x", template=None, message="Hi {NAME} in {City}", list_name="friends")
    )
    before = await service.recipients(cid)
    await service.delete_list("friends")
    assert await service.recipients(cid) == before
    assert (await service.campaign(cid)).list_name == "friends"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"message": "Hi {nickname}"}, "the template uses {nickname}, which is not a column"),
        ({"delay": "60-30"}, "MIN is larger than MAX"),
        ({"delay": "soon"}, "is not MIN-MAX in seconds"),
        ({"at": "next tuesday"}, "is not an ISO-8601 date and time"),
        ({"message": None}, "give either --message or --template"),
        ({"name": "  "}, "--name is empty"),
        ({"template": "nope", "message": None}, "no template named 'nope'"),
        ({"image": "/nonexistent.png"}, "--image /nonexistent.png: no such file"),
    ],
)
async def test_create_refuses_bad_input_and_writes_nothing(
    service: CampaignService, contacts_csv: Path, db: str, changes: dict, message: str
) -> None:
    values = {"name": "x", "message": "Hi {name}", "contacts_file": str(contacts_csv)}
    values.update(changes)
    before = snapshot(db)
    with pytest.raises(UserError) as info:
        await service.create_campaign(CampaignDraft(**values))
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert snapshot(db) == before


async def test_create_from_a_list_refuses_an_unknown_placeholder(
    service: CampaignService, contacts_csv: Path, db: str
) -> None:
    await service.import_contacts(str(contacts_csv), "friends")
    before = snapshot(db)
    with pytest.raises(UserError, match=r"unknown placeholder \{town\}.*columns city"):
        await service.create_campaign(
            CampaignDraft(name="x", message="{town}", list_name="friends")
        )
    assert snapshot(db) == before


async def test_bad_input_is_every_error_at_once_each_naming_its_field(
    service: CampaignService, tmp_path: Path, db: str
) -> None:
    before = snapshot(db)
    draft = CampaignDraft(
        name=" ",
        template="nope",
        list_name="nobody",
        image=str(tmp_path / "none.png"),
        session="",
        at="next tuesday",
        delay="9-3",
    )
    with pytest.raises(InvalidInput) as info:
        await service.plan_campaign(draft)
    assert [(e.field, e.message) for e in info.value.errors] == [
        ("name", "--name is empty"),
        ("template", "no template named 'nope'"),
        ("session", "--session is empty"),
        ("at", "--at 'next tuesday' is not an ISO-8601 date and time, e.g. 2026-12-01T09:30"),
        ("delay", "--delay '9-3': MIN is larger than MAX"),
        ("image", f"--image {tmp_path / 'none.png'}: no such file"),
        ("list_name", "no contact list named 'nobody'"),
    ]
    assert "\n" not in str(info.value) and "--session is empty" in str(info.value)
    with pytest.raises(InvalidInput) as info:
        await service.create_campaign(draft)  # the same checks, and nothing written
    assert len(info.value.errors) == 7
    assert snapshot(db) == before


async def test_an_import_refuses_every_field_at_once(
    service: CampaignService, contacts_csv: Path, tmp_path: Path, db: str
) -> None:
    await service.import_contacts(str(contacts_csv), "friends")
    before = snapshot(db)
    with pytest.raises(InvalidInput) as info:
        await service.import_contacts(str(tmp_path / "none.csv"), "friends", country="XX")
    assert info.value.fields == ["list_name", "country"]  # a refused country: file unread
    with pytest.raises(InvalidInput) as info:
        await service.import_contacts(str(tmp_path / "none.csv"), "  ")
    assert [(e.field, e.message) for e in info.value.errors] == [
        ("list_name", "--list is empty"),
        ("path", f"{tmp_path / 'none.csv'}: no such file"),
    ]
    assert snapshot(db) == before


def test_parse_when_reads_local_time_and_offsets() -> None:
    assert parse_when("2030-05-06T07:08:09Z") == datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)
    local = parse_when("2030-05-06T07:08")
    assert local == datetime(2030, 5, 6, 7, 8).astimezone().astimezone(UTC)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert parse_when(None, now=now) == now


# -- the reference app's resume tests ----------------------------------------------------


async def test_resume_of_a_missing_campaign_fails_and_changes_nothing(
    service: CampaignService, db: str
) -> None:
    make_campaign(service.store, 2)
    before = snapshot(db)
    with pytest.raises(NotFound, match="no campaign with id 99"):
        await service.resume(99)
    assert snapshot(db) == before
    assert service.pool.runs == {}


@pytest.mark.parametrize("status", [S.SCHEDULED, S.RUNNING, S.COMPLETED, S.FAILED, S.CANCELLED])
async def test_resume_of_a_campaign_that_is_not_paused_names_its_status(
    service: CampaignService, db: str, state: SimState, status: CampaignStatus
) -> None:
    cid = make_campaign(service.store, 2)
    force(service.store, cid, status=status)
    if status == S.FAILED:
        force(service.store, cid, next_index=2)  # nothing left to send
    before = snapshot(db)
    with pytest.raises(UserError) as info:
        await service.resume(cid)
    if status == S.FAILED:
        assert str(info.value) == (
            f"campaign {cid} is Failed with no recipient left to send: `waha-tui campaign "
            f"retry {cid}` queues its failed or unknown ones again"
        )
    else:
        assert str(info.value) == (
            f"campaign {cid} is {status}: only a Paused campaign, or a Failed one with "
            "recipients left to send, can be resumed"
        )
    assert snapshot(db) == before
    assert state.sent() == []


async def test_resume_of_a_paused_campaign_starts_the_runner_with_that_id(
    service: CampaignService, state: SimState
) -> None:
    cid = make_campaign(service.store, 3)
    other = make_campaign(service.store, 3, session="other")
    service.store.transition(cid, S.PAUSED, pause_reason=PAUSED_BY_OPERATOR)
    rec = Recorder()
    service.bus.subscribe(rec)
    run = await service.resume(cid)
    assert run is not None and run.campaign_id == cid
    end = await finish(service, cid)
    assert isinstance(end, ev.Completed)
    assert {e.campaign_id for e in rec.events} == {cid}
    assert rec.events[0] == ev.Started(cid, 3, 0)
    camp = await service.campaign(cid)
    assert (camp.status, camp.pause_reason, camp.sent) == (S.COMPLETED, None, 3)
    assert (await service.campaign(other)).status == S.SCHEDULED


async def test_a_resume_given_the_row_as_seen_checks_and_sends_as_without_it(
    service: CampaignService, state: SimState
) -> None:
    """The dashboard hands its row over (session and image as it last read them): the
    session check starts before the campaign is read again, and nothing else changes."""
    cid = make_campaign(service.store, 3)
    service.store.transition(cid, S.PAUSED, pause_reason=PAUSED_BY_OPERATOR)
    seen = service.store.get_campaign(cid)
    assert await service.resume(cid, seen=seen) is not None
    assert isinstance(await finish(service, cid), ev.Completed)
    assert len(state.sent()) == 3


async def test_a_resume_whose_row_is_stale_checks_the_campaigns_own_session(
    service: CampaignService, state: SimState
) -> None:
    """Seen on a WORKING session, moved since to a stopped one: the early check of the old
    session is dropped, the campaign's own is asked, and it refuses; nothing is sent."""
    cid = make_campaign(service.store, 2, session="sales")
    service.store.transition(cid, S.PAUSED, pause_reason=PAUSED_BY_OPERATOR)
    seen = service.store.get_campaign(cid).model_copy(update={"session": "default"})
    state.set_status("sales", "STOPPED")
    with pytest.raises(UserError, match="session 'sales' is STOPPED"):
        await service.resume(cid, seen=seen)
    assert (await service.campaign(cid)).status == S.PAUSED
    assert state.sent() == []


def failed_with_recipients_left(store: Store, total: int, sent: int) -> int:
    """A campaign whose run ended Failed (an error of the store, not of its recipients)
    after `sent` recipients: the rest are still pending."""
    cid = make_campaign(store, total)
    for position in range(sent):
        force_recipient(store, cid, position, status=RS.SENT, message_id=f"true_x_{position}")
    force(
        store,
        cid,
        status=S.FAILED,
        sent=sent,
        next_index=sent,
        started_at=utcnow(),
        completed_at=utcnow(),
        last_error="unexpected error: database is locked",
    )
    return cid


async def test_a_failed_campaign_with_recipients_left_is_resumed_from_the_next_one(
    service: CampaignService, state: SimState
) -> None:
    cid = failed_with_recipients_left(service.store, 5, 2)
    run = await service.resume(cid)
    assert run is not None and run.campaign_id == cid
    end = await finish(service, cid)
    assert isinstance(end, ev.Completed)
    camp = await service.campaign(cid)
    assert (camp.status, camp.sent, camp.failed, camp.next_index) == (S.COMPLETED, 5, 0, 5)
    # Only the three left were sent: the two sent before were not sent again.
    assert [m.chat_id for m in state.sent()] == [f"{phone(i)}@c.us" for i in (2, 3, 4)]


async def test_a_failed_campaign_resumed_detached_is_scheduled_and_no_longer_finished(
    service: CampaignService, state: SimState
) -> None:
    cid = failed_with_recipients_left(service.store, 3, 1)
    assert await service.resume(cid, start=False) is None
    camp = await service.campaign(cid)
    assert (camp.status, camp.completed_at, camp.next_index) == (S.SCHEDULED, None, 1)
    assert service.pool.runs == {} and state.sent() == []


async def test_a_failed_campaign_whose_session_is_down_stays_failed(
    service: CampaignService, state: SimState, db: str
) -> None:
    cid = failed_with_recipients_left(service.store, 3, 1)
    state.set_status("default", "STOPPED")
    before = snapshot(db)
    with pytest.raises(UserError, match="session 'default' is STOPPED"):
        await service.resume(cid)
    assert snapshot(db) == before


async def test_resume_detached_only_marks_it_scheduled(
    service: CampaignService, state: SimState
) -> None:
    cid = make_campaign(service.store, 2)
    service.store.transition(cid, S.PAUSED, pause_reason="x")
    assert await service.resume(cid, start=False) is None
    camp = await service.campaign(cid)
    assert (camp.status, camp.pause_reason) == (S.SCHEDULED, None)
    assert service.pool.runs == {} and state.sent() == []


async def test_resume_refused_by_a_busy_session_leaves_it_paused(
    service: CampaignService, db: str, state: SimState
) -> None:
    busy = make_campaign(service.store, 1)
    cid = make_campaign(service.store, 2)
    service.store.claim(busy, "another:1:x", 60)
    service.store.transition(cid, S.PAUSED, pause_reason="paused by the operator")
    before = snapshot(db)
    with pytest.raises(UserError, match=f"busy sending campaign {busy}"):
        await service.resume(cid)
    assert snapshot(db) == before  # not left Scheduled for a scheduler to pick up later
    assert state.sent() == []


@pytest.mark.parametrize(("interval", "stale"), [(60.0, False), (0.0, True)])
async def test_resume_asks_about_the_session_again_only_when_its_check_is_stale(
    db: str, sim_server: SimulatorServer, interval: float, stale: bool
) -> None:
    """The resume's own check counts as the run's first one: the first message does not
    wait for a second round trip, unless the check is older than session_check_interval."""
    store = Store(db)
    client = WahaClient(sim_server.url)
    config = fast_config(session_check_interval=interval)
    svc = CampaignService(store, client, RunnerPool(store, client, config=config))
    requests: list[str] = []

    async def seen(request: Any) -> None:
        requests.append(f"{request.method} {request.url.path}")

    client._http.event_hooks["request"].append(seen)
    try:
        cid = make_campaign(store, 3)
        store.transition(cid, S.PAUSED, pause_reason=PAUSED_BY_OPERATOR)
        await svc.resume(cid)
        assert isinstance(await finish(svc, cid), ev.Completed)
    finally:
        await svc.pool.stop_all("test over", grace=5)
        await svc.aclose()
    first_send = requests.index("POST /api/sendText")
    checks = requests[:first_send].count("GET /api/sessions/default")
    assert checks > 1 if stale else checks == 1  # stale: the run asks again
    assert requests.count("POST /api/sendText") == 3


@pytest.mark.parametrize("ids", [True, False])
async def test_a_resumed_campaign_sends_each_recipient_once_with_or_without_message_ids(
    service: CampaignService, state: SimState, ids: bool
) -> None:
    """The first id is fetched while the campaign is claimed; a WAHA without ids answers
    that request 404, and the run sends without them."""
    state.message_ids = ids
    cid = make_campaign(service.store, 40)
    force(service.store, cid, status=S.PAUSED, next_index=5, sent=5, started_at=utcnow())
    for position in range(5):
        force_recipient(service.store, cid, position, status=RS.SENT, message_id=f"x{position}")
    await service.resume(cid)
    end = await finish(service, cid)
    assert isinstance(end, ev.Completed) and end.sent == 40
    sent = state.sent()
    recipients = service.store.recipients(cid)
    assert [m.chat_id for m in sent] == [r.chat_id for r in recipients[5:]]
    if ids:  # each went out with the id stored for it before it left
        assert [m.id for m in sent] == [r.message_id for r in recipients[5:]]


async def test_a_resume_stores_its_first_message_id_in_the_claims_transaction(
    service: CampaignService, state: SimState
) -> None:
    """The first message id is fetched while the session is checked and stored in the
    claim's own transaction, so the first message waits for no transaction of its own."""
    cid = make_campaign(service.store, 3)
    service.store.transition(cid, S.PAUSED, pause_reason=PAUSED_BY_OPERATOR)
    claims: list[Claimed] = []
    real = service.store.claim_and_read

    def claim_and_read(*args: Any, **kwargs: Any) -> Claimed:
        claims.append(real(*args, **kwargs))
        return claims[-1]

    service.store.claim_and_read = claim_and_read  # type: ignore[method-assign]
    await service.resume(cid)
    assert isinstance(await finish(service, cid), ev.Completed)
    recipients = service.store.recipients(cid)
    sent = state.sent()
    assert [m.id for m in sent] == [r.message_id for r in recipients]
    assert len(claims) == 1 and claims[0].reserved is not None
    rid, early = claims[0].reserved
    # WAHA answers with the id in full ("true_<chat>_<id>"), as it is kept once sent.
    assert rid == recipients[0].id and sent[0].id.endswith(f"_{early}")


@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's write lock
async def test_a_resume_waits_for_a_locked_database_off_the_event_loop(
    service: CampaignService, db: str, state: SimState
) -> None:
    """The claim runs in the loop only when the write lock is free at once: held by
    another process, the claim waits for it in a thread, and the loop stays live."""
    cid = make_campaign(service.store, 2)
    service.store.transition(cid, S.PAUSED, pause_reason=PAUSED_BY_OPERATOR)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    loop = asyncio.get_running_loop()
    loop.call_later(0.5, lambda: (other.execute("ROLLBACK"), other.close()))
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            gaps.append(time.monotonic() - last)
            last = time.monotonic()

    ticking = asyncio.create_task(ticker())
    started = time.monotonic()
    try:
        await service.resume(cid)
        assert time.monotonic() - started >= 0.4  # it did wait for the lock
        assert isinstance(await finish(service, cid), ev.Completed)
    finally:
        ticking.cancel()
    assert max(gaps) < 0.3  # the loop was never held for the wait
    assert len(state.sent()) == 2


async def test_a_first_recipient_caught_mid_send_keeps_its_own_id_on_resume(
    service: CampaignService, state: SimState
) -> None:
    """A recipient left `sending` with its id by a crash is re-sent with that id (WhatsApp
    dedupes it): the id fetched before the claim is not stored over it."""
    cid = make_campaign(service.store, 3)
    force(service.store, cid, status=S.PAUSED, started_at=utcnow())
    force_recipient(service.store, cid, 0, status=RS.SENDING, message_id="true_in_flight")
    await service.resume(cid)
    assert isinstance(await finish(service, cid), ev.Completed)
    sent = state.sent()
    assert sent[0].id.endswith("_true_in_flight")  # WAHA answers with the id in full
    recipients = service.store.recipients(cid)
    assert [m.id for m in sent] == [r.message_id for r in recipients]
    assert len({m.id for m in sent}) == 3


async def test_a_first_recipient_that_cannot_be_rendered_fails_without_an_id(
    service: CampaignService, state: SimState
) -> None:
    contacts = people(3, city=["Rome"] * 3)
    contacts[0] = replace(contacts[0], variables={})  # the first has no city
    cid = make_campaign(service.store, text="Hi {name} from {city}", recipients=contacts)
    force(service.store, cid, status=S.PAUSED, started_at=utcnow())
    await service.resume(cid)
    end = await finish(service, cid)
    assert isinstance(end, ev.Completed) and (end.sent, end.failed) == (2, 1)
    first, *rest = service.store.recipients(cid)
    assert (first.status, first.message_id) == (RS.FAILED, None)
    assert [m.id for m in state.sent()] == [r.message_id for r in rest]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("stopped", "session 'default' is STOPPED: start it and scan the QR code first"),
        # Once, in words: the dashboard's toast says "cannot resume campaign 3: ...".
        ("unreachable", "is unreachable (connection refused)"),
        ("401", "WAHA refused the API key (401): check --api-key or WAHA_API_KEY"),
    ],
)
async def test_resume_is_refused_while_waha_cannot_send(
    db: str, sim_server: SimulatorServer, setup: str, message: str
) -> None:
    store = Store(db)
    url = sim_server.url if setup != "unreachable" else f"http://127.0.0.1:{closed_port()}"
    client = WahaClient(url)
    service = CampaignService(store, client, RunnerPool(store, client, config=fast_config()))
    if setup == "stopped":
        sim_server.state.set_status("default", "STOPPED")
    if setup == "401":
        sim_server.state.require_api_key("k3y-value")
    cid = make_campaign(store, 2)
    store.transition(cid, S.PAUSED, pause_reason="why")
    before = snapshot(db)
    try:
        with pytest.raises(UserError) as info:
            await service.resume(cid)
        assert message in str(info.value)
        assert "cannot resume" not in str(info.value) and "Error" not in str(info.value)
        assert snapshot(db) == before
    finally:
        await service.aclose()


# -- the disconnect story ----------------------------------------------------------------


async def test_disconnect_pause_refused_resume_reconnect_complete(
    service: CampaignService, state: SimState, contacts_csv: Path
) -> None:
    csv = contacts_csv.parent / "five.csv"
    csv.write_text(
        "phone,name,city\n"
        + "".join(f"{phone(i)},{'N' + str(i) if i % 2 else ''},C{i}\n" for i in range(5))
    )
    cid = await service.create_campaign(
        CampaignDraft(
            name="story",
            message="Hello {Name} from {CITY}",
            contacts_file=str(csv),
            delay="0-0",
            default_name="friend",
        )
    )
    state.stop_after("default", 2)
    await service.start(cid)
    end = await finish(service, cid)

    assert isinstance(end, ev.Paused) and end.next_index == 2
    camp = await service.campaign(cid)
    assert (camp.status, camp.next_index, camp.sent, camp.failed) == (S.PAUSED, 2, 2, 0)
    assert camp.pause_reason == (
        "session 'default' is STOPPED: start it (and scan the QR code if it asks), then resume"
    )
    assert [r.status for r in await service.recipients(cid)] == [RS.SENT] * 2 + [RS.PENDING] * 3

    with pytest.raises(UserError, match=r"^session 'default' is STOPPED"):
        await service.resume(cid)
    assert (await service.campaign(cid)).status == S.PAUSED

    state.set_status("default", "WORKING")
    await service.resume(cid)
    end = await finish(service, cid)
    assert isinstance(end, ev.Completed) and (end.sent, end.failed, end.total) == (5, 0, 5)
    camp = await service.campaign(cid)
    assert (camp.status, camp.next_index, camp.pause_reason) == (S.COMPLETED, 5, None)
    assert [(m.chat_id, m.text) for m in state.sent()] == [
        (f"{phone(0)}@c.us", "Hello friend from C0"),
        (f"{phone(1)}@c.us", "Hello N1 from C1"),
        (f"{phone(2)}@c.us", "Hello friend from C2"),
        (f"{phone(3)}@c.us", "Hello N3 from C3"),
        (f"{phone(4)}@c.us", "Hello friend from C4"),
    ]
    ids = [r.message_id for r in await service.recipients(cid)]
    assert ids == [m.id for m in state.sent()]


# -- pause and cancel --------------------------------------------------------------------


async def test_pause_takes_effect_at_once_during_a_long_wait(
    db: str, sim_server: SimulatorServer
) -> None:
    store = Store(db)
    client = WahaClient(sim_server.url)
    pool = RunnerPool(store, client, config=fast_config(clock=Clock(), poll_interval=1.0))
    service = CampaignService(store, client, pool)
    try:
        cid = make_campaign(store, 3, delay_min=5.0, delay_max=5.0)
        await service.start(cid)
        deadline = time.monotonic() + 5
        while not sim_server.state.sent():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        began = time.monotonic()
        await service.pause(cid)
        end = await asyncio.wait_for(pool.wait(cid), 5)
        assert time.monotonic() - began < 1.0  # not the ~4.9 s left of the wait
        assert isinstance(end, ev.Paused) and end.reason == PAUSED_BY_OPERATOR
        camp = await service.campaign(cid)
        assert (camp.status, camp.pause_reason, camp.next_index) == (
            S.PAUSED,
            PAUSED_BY_OPERATOR,
            1,
        )
        assert len(sim_server.state.sent()) == 1
    finally:
        await service.aclose()


async def test_pause_of_a_scheduled_campaign(service: CampaignService, db: str) -> None:
    cid = make_campaign(service.store, 1)
    camp = await service.pause(cid)
    assert (camp.status, camp.pause_reason) == (S.PAUSED, PAUSED_BY_OPERATOR)
    before = snapshot(db)
    with pytest.raises(TransitionError, match=f"^campaign {cid} is already Paused$"):
        await service.pause(cid)
    assert snapshot(db) == before


async def test_pause_of_a_campaign_running_elsewhere_marks_it_paused(
    service: CampaignService,
) -> None:
    cid = make_campaign(service.store, 1)
    service.store.claim(cid, "another:1:x", 60)
    camp = await service.pause(cid)
    assert (camp.status, camp.pause_reason) == (S.PAUSED, PAUSED_BY_OPERATOR)


@pytest.mark.parametrize("status", [S.SCHEDULED, S.PAUSED])
async def test_cancel(service: CampaignService, status: CampaignStatus) -> None:
    cid = make_campaign(service.store, 1)
    force(service.store, cid, status=status)
    camp = await service.cancel(cid)
    assert camp.status == S.CANCELLED and camp.completed_at is not None
    with pytest.raises(TransitionError, match="is already Cancelled"):
        await service.cancel(cid)


async def test_cancel_of_a_running_campaign_in_this_process(
    service: CampaignService, state: SimState
) -> None:
    # Outcomes are written behind the sends (up to 50 ms): enough recipients that the
    # cancel, set off by the first event, lands well before the end.
    total = 400
    cid = make_campaign(service.store, total)

    def cancel_after_first(event: ev.CampaignEvent) -> None:
        if isinstance(event, ev.RecipientProcessed) and event.position == 0:
            asyncio.get_running_loop().create_task(service.cancel(cid))

    service.bus.subscribe(cancel_after_first)
    await service.start(cid)
    end = await finish(service, cid)
    assert isinstance(end, ev.Cancelled)
    camp = await service.campaign(cid)
    assert camp.status == S.CANCELLED
    assert camp.sent == len(state.sent()) < total


async def test_an_image_campaign_created_through_the_service(
    service: CampaignService, state: SimState, contacts_csv: Path, tmp_path: Path
) -> None:
    image = tmp_path / "pic.png"
    image.write_bytes(PNG)
    cid = await service.create_campaign(
        CampaignDraft(
            name="img",
            message="Hi {name}",
            contacts_file=str(contacts_csv),
            image=str(image),
            delay=(0.0, 0.0),
        )
    )
    camp = await service.campaign(cid)
    assert (camp.image_path, camp.image_mime) == (str(image.resolve()), "image/png")
    await service.start(cid)
    assert isinstance(await finish(service, cid), ev.Completed)
    assert [m.image["mimetype"] for m in state.sent() if m.image] == ["image/png"] * 3
    assert all(m.image and m.image["data"] and "base64" not in m.image for m in state.sent())


async def test_recover_interrupted_through_the_service(service: CampaignService) -> None:
    cid = make_campaign(service.store, 1)
    service.store.claim(cid, "dead:1:x", 60)
    force(service.store, cid, lease_until=datetime.now(UTC) - timedelta(seconds=1))
    assert await service.recover_interrupted() == [cid]
    assert (await service.campaign(cid)).status == S.PAUSED


async def test_resuming_a_campaign_paused_before_its_start_time_waits_for_it(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path)
    try:
        later = utcnow() + timedelta(hours=2)
        cid = rig.add("Later", 3)
        rig.force(cid, scheduled_at=later)
        await rig.service.pause(cid)
        assert rig.store.get_campaign(cid).status == CampaignStatus.PAUSED
        assert await rig.service.resume(cid) is None
        camp = rig.store.get_campaign(cid)
        assert camp.status == CampaignStatus.SCHEDULED
        assert camp.scheduled_at == later
        assert rig.sim.state.sent() == []
    finally:
        await rig.service.aclose()


async def test_the_warm_up_leaves_nothing_and_the_first_resume_is_as_the_next(
    service: CampaignService, db: str, state: SimState, caplog: pytest.LogCaptureFixture
) -> None:
    """The dashboard readies a resume's way at start-up with a claim rolled back: no row,
    no history, no log line; then the campaign resumes as ever."""
    cid = make_campaign(service.store, 3)
    service.store.transition(cid, S.PAUSED, pause_reason=PAUSED_BY_OPERATOR)
    before = snapshot(db)
    history_before = service.store.events(cid)
    caplog.clear()
    await service.warm_up()
    assert snapshot(db) == before
    assert service.store.events(cid) == history_before
    assert [r for r in caplog.records if f"campaign {cid}" in r.getMessage()] == []
    assert await service.resume(cid) is not None
    assert isinstance(await finish(service, cid), ev.Completed)
    assert len(state.sent()) == 3


def test_a_warm_up_on_a_busy_sqlite_database_waits_for_nothing(tmp_path: Path) -> None:
    """SQLite: another process holds the write lock; the warm-up leaves at once, not
    after the busy timeout, and changes nothing."""
    store = Store(tmp_path / "campaigns.db")
    cid = make_campaign(store, 1)
    store.transition(cid, S.PAUSED, pause_reason=PAUSED_BY_OPERATOR)
    other = Store(tmp_path / "campaigns.db")
    with other.write():
        started = time.monotonic()
        store.warm_up()
        assert time.monotonic() - started < 1.0  # not the busy timeout (10 s)
    assert store.get_campaign(cid).status == S.PAUSED
    other.close()
    store.close()


async def test_a_resume_prepared_while_its_row_was_highlighted_uses_what_was_asked(
    service: CampaignService, state: SimState
) -> None:
    """What `r` asks WAHA before the claim, asked while the row was highlighted: used when
    it is of that row and fresh (the session's state as it was then), asked again when it
    is older than PREP_FRESH; nothing is sent either way before the claim."""
    clock = service.pool.config.clock
    assert isinstance(clock, FakeClock)
    fresh, stale = make_campaign(service.store, 1), make_campaign(service.store, 1)
    for cid in (fresh, stale):
        service.store.transition(cid, S.PAUSED, pause_reason=PAUSED_BY_OPERATOR)
    rows = {cid: service.store.get_campaign(cid) for cid in (fresh, stale)}
    preps = {cid: service.prepare_resume(rows[cid]) for cid in (fresh, stale)}
    for prep in preps.values():
        assert prep is not None and (await prep.check).working
    state.set_status("default", "STOPPED")  # since they were asked
    clock.now += PREP_FRESH / 2
    run = await service.resume(fresh, seen=rows[fresh], prepared=preps[fresh])
    assert run is not None  # as WAHA said a moment ago: WORKING
    await finish(service, fresh)
    clock.now += PREP_FRESH
    with pytest.raises(UserError, match="session 'default' is STOPPED"):
        await service.resume(stale, seen=rows[stale], prepared=preps[stale])
    assert (await service.campaign(stale)).status == S.PAUSED
    # Not resumable (Scheduled: the scheduler starts it): nothing is asked ahead.
    assert service.prepare_resume(await service.campaign(make_campaign(service.store))) is None
