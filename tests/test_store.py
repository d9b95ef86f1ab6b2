"""The store: the SQLite file, its schema version and migrations, recipients copies, status
transitions, leases and recovery. Real SQLite files in tmp_path, and (the `backend`
parameter) real PostgreSQL databases."""

from __future__ import annotations

import itertools
import os
import pwd
import socket
import sqlite3
import stat
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from engine_helpers import PNG, closed_port, force, make_campaign, people, snapshot
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import IntegrityError

from waha_tui.config import Settings
from waha_tui.media import Media
from waha_tui.models import SCHEMA_VERSION, Campaign, utcnow
from waha_tui.secret import mask_url
from waha_tui.status import TRANSITIONS, CampaignStatus, RecipientStatus, TransitionError
from waha_tui.store import (
    Busy,
    C,
    ClaimLost,
    E,
    NewRecipient,
    NotFound,
    R,
    Store,
    StoreError,
    parse_target,
)

S = CampaignStatus


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "campaigns.db"


# -- the file ----------------------------------------------------------------------------


def test_new_file_is_private_wal_with_foreign_keys_and_a_schema_version(db: Path) -> None:
    old = os.umask(0o022)  # a umask that would make an ordinary file world-readable
    try:
        store = Store(db)
    finally:
        os.umask(old)
    make_campaign(store, 2)  # something in the WAL
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    wal = db.with_name(db.name + "-wal")
    assert wal.exists()
    assert stat.S_IMODE(wal.stat().st_mode) == 0o600  # holds phone numbers too
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    # Foreign keys are enforced, not only declared.
    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        conn.execute(
            sa.insert(R).values(
                campaign_id=999, position=0, phone="1", chat_id="1@c.us", variables={}
            )
        )
    store.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent
        version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    assert version == (str(SCHEMA_VERSION),)


def test_two_processes_creating_the_same_new_file_at_once(tmp_path: Path, db: Path) -> None:
    # This process looks, finds no tables; before it takes the write lock to create them,
    # another process creates the schema. It must then use that schema, not insert its
    # schema version a second time (UNIQUE constraint failed: meta.key).
    reference = tmp_path / "reference.db"
    Store(reference).close()
    with sqlite3.connect(reference) as ref:
        schema = [sql for (sql,) in ref.execute("SELECT sql FROM sqlite_master WHERE sql != ''")]
        meta = ref.execute("SELECT key, value FROM meta").fetchall()
    begins = 0

    def other_process_creates_it_now(conn: Any) -> None:
        nonlocal begins
        if conn.engine.url.database != str(db):
            return
        begins += 1
        if begins == 2:  # after the look, before this process's BEGIN IMMEDIATE
            other = sqlite3.connect(db, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            for sql in schema:
                other.execute(sql)
            other.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta)
            other.execute("COMMIT")
            other.close()

    # Class-level listeners run before the store's own, which emits BEGIN IMMEDIATE.
    event.listen(Engine, "begin", other_process_creates_it_now)
    try:
        store = Store(db)
    finally:
        event.remove(Engine, "begin", other_process_creates_it_now)
    assert begins >= 2
    assert store.lists() == []
    store.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT key, value FROM meta").fetchall() == meta


def test_reopening_keeps_the_data(db: Path) -> None:
    store = Store(db)
    cid = make_campaign(store, 2)
    store.close()
    again = Store(db)
    assert again.get_campaign(cid).total == 2
    again.close()


def test_a_file_from_a_newer_schema_is_refused(db: Path) -> None:
    Store(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(99),))
    before = db.read_bytes()
    with pytest.raises(StoreError) as info:
        Store(db)
    message = str(info.value)
    assert "newer waha-tui" in message and "schema 99" in message and "upgrade" in message
    assert "\n" not in message
    assert db.read_bytes() == before


def _one_line(exc: pytest.ExceptionInfo[StoreError]) -> str:
    message = str(exc.value)
    assert message and "\n" not in message and "Traceback" not in message, message
    return message


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as info:
        Store(tmp_path)
    assert "is a directory" in _one_line(info)


def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("phone,name\n" * 200)
    before = path.read_bytes()
    with pytest.raises(StoreError) as info:
        Store(path)
    assert "is not a waha-tui database" in _one_line(info)
    assert path.read_bytes() == before


def test_another_programs_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE songs (title TEXT)")
    with pytest.raises(StoreError) as info:
        Store(path)
    assert "not a waha-tui database" in _one_line(info)
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"songs"}


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("missing-folder/campaigns.db", "does not exist"),
        ("a-file/campaigns.db", "cannot create database"),  # the "folder" is a file
    ],
)
def test_unusable_paths_give_one_line(tmp_path: Path, relative: str, expected: str) -> None:
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(StoreError) as info:
        Store(tmp_path / relative)
    assert expected in _one_line(info)


def test_an_unwritable_location_gives_one_line() -> None:
    # /proc refuses new files even for root, so this works whoever runs the tests.
    with pytest.raises(StoreError) as info:
        Store("/proc/waha-tui-test.db")
    assert "/proc/waha-tui-test.db" in _one_line(info)


# -- contacts and recipients -------------------------------------------------------------


def test_recipients_are_a_copy_with_0_based_unique_positions(store: Store) -> None:
    contacts = people(4, city=["Berlin", "Jakarta", "Recife", "Oslo"])
    store.create_list("friends", contacts)
    from_list = store.list_contacts("friends")
    assert from_list == contacts  # in file order
    cid = make_campaign(
        store, recipients=from_list, text="Hi {name} in {city}", list_name="friends"
    )
    before = store.recipients(cid)
    assert [r.position for r in before] == [0, 1, 2, 3]
    assert [(r.phone, r.name, r.variables) for r in before] == [
        (c.phone, c.name, c.variables) for c in contacts
    ]
    assert all(r.status == RecipientStatus.PENDING and r.attempts == 0 for r in before)
    assert store.get_campaign(cid).total == 4

    store.delete_list("friends")
    assert store.lists() == []
    with pytest.raises(NotFound):
        store.list_contacts("friends")
    assert store.recipients(cid) == before
    assert store.get_campaign(cid).list_name == "friends"
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM contact")).scalar() == 0
    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        # positions are unique per campaign
        conn.execute(
            sa.text(
                "INSERT INTO recipient (campaign_id, position, phone, chat_id, variables, "
                "status, attempts) VALUES (:cid, 2, '1', '1@c.us', '{}', 'pending', 0)"
            ),
            {"cid": cid},
        )


def test_a_list_name_is_unique(store: Store) -> None:
    store.create_list("a", people(1))
    with pytest.raises(StoreError, match="'a' already exists"):
        store.create_list("a", people(2))
    assert store.lists()[0].contact_count == 1


# -- status transitions ------------------------------------------------------------------

ALLOWED = {
    (S.SCHEDULED, S.RUNNING),
    (S.RUNNING, S.PAUSED),
    (S.RUNNING, S.COMPLETED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLED),
    (S.PAUSED, S.SCHEDULED),
    (S.PAUSED, S.CANCELLED),
    (S.SCHEDULED, S.CANCELLED),
    (S.SCHEDULED, S.PAUSED),
    # Added by the crash-safety issue: `campaign retry` reopens a finished campaign.
    (S.COMPLETED, S.PAUSED),
    (S.FAILED, S.PAUSED),
    # Issue 12: a Failed campaign with recipients left is resumed (here, or elsewhere).
    (S.FAILED, S.SCHEDULED),
    # Issue 15: deleted, a batch of recipients at a time; never while it runs.
    (S.SCHEDULED, S.DELETING),
    (S.PAUSED, S.DELETING),
    (S.COMPLETED, S.DELETING),
    (S.FAILED, S.DELETING),
    (S.CANCELLED, S.DELETING),
}
# How a refusal says each change: as a person would write it.
SAID = {
    S.SCHEDULED: "scheduled again",
    S.RUNNING: "started",
    S.PAUSED: "paused",
    S.COMPLETED: "marked Completed",
    S.FAILED: "marked Failed",
    S.CANCELLED: "cancelled",
}


def test_the_transition_table_is_exactly_the_allowed_set() -> None:
    table = {(old, new) for old, targets in TRANSITIONS.items() for new in targets}
    assert table == ALLOWED


@pytest.mark.parametrize(("old", "new"), list(itertools.product(list(S), list(SAID))))
def test_every_transition_through_the_store(
    store: Store, old: CampaignStatus, new: CampaignStatus
) -> None:
    cid = make_campaign(store, 1)
    force(store, cid, status=old)
    if (old, new) in ALLOWED:
        camp = store.transition(cid, new, pause_reason="why")
        assert camp.status == new
        assert store.get_campaign(cid).status == new
        assert store.get_campaign(cid).pause_reason == "why"
    else:
        before = snapshot(store)
        with pytest.raises(TransitionError) as info:
            store.transition(cid, new, pause_reason="why")
        now = "being deleted" if old == S.DELETING else old
        said = f"is already {now}" if old == new else f"is {now}: it cannot be {SAID[new]}"
        assert str(info.value) == f"campaign {cid} {said}"
        assert snapshot(store) == before


def test_transition_with_expect_refuses_other_statuses(store: Store) -> None:
    cid = make_campaign(store, 1)
    before = snapshot(store)
    with pytest.raises(TransitionError, match="is Scheduled: it cannot be cancelled"):
        store.transition(cid, S.CANCELLED, expect=(S.PAUSED,))
    assert snapshot(store) == before


def test_transition_of_a_missing_campaign(store: Store) -> None:
    with pytest.raises(NotFound, match="no campaign with id 42"):
        store.transition(42, S.PAUSED)


# -- claims and leases -------------------------------------------------------------------


def test_claim_makes_it_running_with_a_lease(store: Store) -> None:
    cid = make_campaign(store, 1)
    camp = store.claim(cid, "me", 30)
    assert camp.status == S.RUNNING and camp.lease_owner == "me"
    assert camp.lease_until is not None and camp.lease_until > utcnow() + timedelta(seconds=25)
    assert camp.started_at is not None


def test_claim_refuses_a_campaign_with_a_live_lease_of_another_owner(store: Store) -> None:
    cid = make_campaign(store, 1)
    store.claim(cid, "process-a", 30)
    before = snapshot(store)
    with pytest.raises(StoreError, match=f"campaign {cid} is already running in another process"):
        store.claim(cid, "process-b", 30)
    assert snapshot(store) == before


@pytest.mark.parametrize("status", [S.COMPLETED, S.FAILED, S.CANCELLED, S.RUNNING])
def test_claim_refuses_what_cannot_run(store: Store, status: CampaignStatus) -> None:
    cid = make_campaign(store, 1)
    force(store, cid, status=status)  # Running here: no lease at all
    before = snapshot(store)
    with pytest.raises(StoreError, match=f"campaign {cid} is {status}: only a Scheduled or Paused"):
        store.claim(cid, "me", 30)
    assert snapshot(store) == before


def test_claim_takes_a_paused_campaign_and_clears_the_reason(store: Store) -> None:
    cid = make_campaign(store, 1)
    store.transition(cid, S.PAUSED, pause_reason="paused by the operator")
    camp = store.claim(cid, "me", 30)
    assert (camp.status, camp.pause_reason) == (S.RUNNING, None)


def test_rows_read_unvalidated_have_the_types_validation_would_give(store: Store) -> None:
    """Campaigns and recipients are built from their rows without validating them again
    (it cost several times the read): each field has the type validation would give."""
    cid = make_campaign(store, 2, typing=True, break_seconds=2, delay_max=3)
    store.claim(cid, "me", 30)
    camp = store.get_campaign(cid)
    rec = store.recipients(cid)[0]
    for model in (camp, rec):
        again = type(model).model_validate(model.model_dump())
        assert again == model
        for field in type(model).model_fields:
            value, expected = getattr(model, field), getattr(again, field)
            assert type(value) is type(expected), (field, value, expected)
    assert camp.typing is True and camp.lease_until is not None and camp.lease_until.tzinfo
    assert rec.variables == {"num": "0"}


def test_claim_and_read_stores_the_id_it_is_asked_to_in_the_claims_transaction(
    store: Store,
) -> None:
    cid = make_campaign(store, 6)
    force(store, cid, status=S.PAUSED, next_index=2)
    seen: list[tuple[str, list[int]]] = []

    def pick(camp: Campaign, recipients: list[Any]) -> tuple[int, str, str]:
        seen.append((camp.status, [r.position for r in recipients]))
        return recipients[1].id, "true_early", "its text"

    claimed = store.claim_and_read(cid, "me", 30, read=3, reserve=pick)
    # The pick saw the campaign as claimed, and the recipients from its next_index.
    assert seen == [(S.RUNNING, [2, 3, 4])]
    assert claimed.campaign.status == S.RUNNING and claimed.campaign.lease_owner == "me"
    assert [r.position for r in claimed.recipients] == [2, 3, 4]
    assert claimed.reserved == (claimed.recipients[1].id, "true_early")
    stored = [(r.message_id, r.text) for r in store.recipients(cid)]
    assert stored == [(None, None)] * 3 + [("true_early", "its text")] + [(None, None)] * 2
    assert [e.kind for e in store.events(cid)][-1] == "resumed"


def test_a_refused_claim_and_read_stores_no_id(store: Store) -> None:
    cid = make_campaign(store, 2)
    store.claim(cid, "process-a", 30)
    before = snapshot(store)
    picked: list[int] = []

    def pick(camp: Campaign, recipients: list[Any]) -> tuple[int, str, str]:
        picked.append(camp.id or 0)
        return recipients[0].id, "true_early", "its text"

    with pytest.raises(StoreError, match="already running in another process"):
        store.claim_and_read(cid, "process-b", 30, read=2, reserve=pick)
    assert picked == [] and snapshot(store) == before


def test_a_write_that_may_not_wait_is_busy_at_once_while_another_holds_the_lock(
    db: Path,
) -> None:
    store = Store(db)
    try:
        cid = make_campaign(store, 2)
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process's write under way
        before = snapshot(store)
        started = time.monotonic()
        with pytest.raises(Busy, match="is busy"):
            store.claim_and_read(cid, "me", 30, read=2, wait=False)
        assert time.monotonic() - started < 1.0  # not the 10 s busy timeout
        other.execute("ROLLBACK")
        other.close()
        assert snapshot(store) == before
        claimed = store.claim_and_read(cid, "me", 30, read=2, wait=False)  # the lock is free
        assert claimed.campaign.status == S.RUNNING and len(claimed.recipients) == 2
    finally:
        store.close()


def test_on_postgresql_a_write_that_may_not_wait_is_always_left_to_a_waiting_one(
    store: Store,
) -> None:
    cid = make_campaign(store, 1)
    if store.path is not None:
        assert store.claim_and_read(cid, "me", 30, read=1, wait=False).reserved is None
        return
    before = snapshot(store)
    with pytest.raises(Busy):
        store.claim_and_read(cid, "me", 30, read=1, wait=False)
    assert snapshot(store) == before


def test_one_running_campaign_per_waha_session(store: Store) -> None:
    first = make_campaign(store, 1)
    second = make_campaign(store, 1)
    elsewhere = make_campaign(store, 1, session="other")
    store.claim(first, "process-a", 30)
    before = snapshot(store)
    with pytest.raises(StoreError, match=f"session 'default' is busy sending campaign {first}"):
        store.claim(second, "process-b", 30)
    with pytest.raises(StoreError, match="busy"):
        store.claim(second, "process-a", 30)  # the same owner too
    assert snapshot(store) == before
    assert store.claim(elsewhere, "process-b", 30).status == S.RUNNING
    # Once the first run's lease lapses, the session is free again.
    force(store, first, lease_until=utcnow() - timedelta(seconds=1))
    assert store.claim(second, "process-b", 30).status == S.RUNNING


def test_recover_interrupted_pauses_only_lapsed_runs(store: Store) -> None:
    lapsed = make_campaign(store, 1)
    live = make_campaign(store, 1, session="other")
    store.claim(lapsed, "dead-process", 30)
    store.claim(live, "live-process", 30)
    force(store, lapsed, lease_until=utcnow() - timedelta(seconds=5))
    assert store.recover_interrupted() == [lapsed]
    camp = store.get_campaign(lapsed)
    assert camp.status == S.PAUSED
    assert camp.pause_reason is not None and "interrupted" in camp.pause_reason
    assert (camp.lease_owner, camp.lease_until) == (None, None)
    assert store.get_campaign(live).status == S.RUNNING
    assert store.recover_interrupted() == []


def test_heartbeat_renews_only_its_own_lease(store: Store) -> None:
    cid = make_campaign(store, 1)
    store.claim(cid, "me", 1)
    until = store.get_campaign(cid).lease_until
    # The other owner learns the status and who holds the lease, and renews nothing.
    assert store.heartbeat(cid, "someone-else", 600) == (S.RUNNING, "me")
    assert store.get_campaign(cid).lease_until == until
    store.heartbeat(cid, "me", 600)
    renewed = store.get_campaign(cid).lease_until
    assert until is not None and renewed is not None and renewed > until


def test_renew_leases_renews_only_the_owners_and_reads_every_status(store: Store) -> None:
    mine = [make_campaign(store, 1, session=f"s{i}") for i in range(3)]
    theirs = make_campaign(store, 1, session="other")
    for cid in mine:
        store.claim(cid, "me", 1)
    store.claim(theirs, "them", 1)
    store.transition(mine[2], S.PAUSED, pause_reason="paused elsewhere")
    before = {cid: store.get_campaign(cid).lease_until for cid in [*mine, theirs]}
    ids = [*mine, theirs, 10_000]  # a campaign gone from the table is left out
    # One transaction for all of them, their statuses and owners read back in it.
    assert store.renew_leases("me", ids, 600) == {
        mine[0]: (S.RUNNING, "me"),
        mine[1]: (S.RUNNING, "me"),
        mine[2]: (S.PAUSED, "me"),  # a pause elsewhere keeps the owner: the run sees it
        theirs: (S.RUNNING, "them"),
    }
    assert store.leases_of(ids) == store.renew_leases("me", ids, 600)
    after = {cid: store.get_campaign(cid).lease_until for cid in [*mine, theirs]}
    assert all(after[cid] > before[cid] for cid in mine[:2])  # type: ignore[operator]
    assert after[theirs] == before[theirs]


def test_claimable_campaigns_are_due_on_a_free_session(store: Store) -> None:
    now = utcnow()
    first = make_campaign(store, 1, scheduled_at=now - timedelta(days=2))
    same_session = make_campaign(store, 1, scheduled_at=now - timedelta(days=1))
    other = make_campaign(store, 1, session="other", scheduled_at=now - timedelta(hours=1))
    make_campaign(store, 1, scheduled_at=now + timedelta(hours=1))
    assert [c.id for c in store.claimable_campaigns(now)] == [first, same_session, other]
    store.claim(first, "a", 30)
    assert [c.id for c in store.claimable_campaigns(utcnow())] == [other]


# -- auto-resume and the schema migration ------------------------------------------------


def test_recover_interrupted_reschedules_an_auto_resume_campaign(store: Store) -> None:
    auto = make_campaign(store, 1, auto_resume=True)
    manual = make_campaign(store, 1, session="other")
    for cid in (auto, manual):
        store.claim(cid, "dead-process", 30)
        force(store, cid, lease_until=utcnow() - timedelta(seconds=5))
    assert store.recover_interrupted() == [auto, manual]
    camp = store.get_campaign(auto)
    assert (camp.status, camp.pause_reason, camp.lease_owner) == (S.SCHEDULED, None, None)
    assert [c.id for c in store.claimable_campaigns()] == [auto]  # due again at once
    assert store.get_campaign(manual).status == S.PAUSED
    assert store.claim(auto, "survivor", 30).status == S.RUNNING


def _make_version(store: Store, version: int) -> int:
    """What waha-tui with schema `version` (1, 3, 4, 5 or 8) left: no delivery columns, nor
    the opt-out table (before 9); an index on updated_at (from 2 to 7), the recipients' status
    index without their position, no next_send_at column (before 6; nor, before 5, the media
    table and image_sha256 column; nor, before 4, the campaign_event table and created_by
    column; nor, for 1, the later columns), that version, a campaign."""
    cid = make_campaign(store, 2)
    with store.write() as conn:
        conn.exec_driver_sql("ALTER TABLE campaign DROP COLUMN sessions")
        if version >= 10:
            conn.exec_driver_sql(
                f"UPDATE meta SET value = '{version}' WHERE key = 'schema_version'"
            )
            store.close()
            return cid
        conn.exec_driver_sql("DROP TABLE number_caps")
        conn.exec_driver_sql("DROP TABLE send_log")
        for name in ("break_max", "send_window", "window_days", "timezone", "variants"):
            conn.exec_driver_sql(f"ALTER TABLE campaign DROP COLUMN {name}")
        for name in ("text", "session"):
            conn.exec_driver_sql(f"ALTER TABLE recipient DROP COLUMN {name}")
        conn.exec_driver_sql("UPDATE campaign SET break_seconds = 45")
        if version >= 9:
            conn.exec_driver_sql(
                f"UPDATE meta SET value = '{version}' WHERE key = 'schema_version'"
            )
            store.close()
            return cid
        conn.exec_driver_sql("DROP TABLE optout")
        conn.exec_driver_sql("DROP INDEX ix_recipient_wa_id")
        conn.exec_driver_sql("DROP INDEX ix_recipient_chat_id")
        conn.exec_driver_sql("DROP INDEX ix_recipient_unacked")
        for name in ("skipped", "delivered", "read", "replied", "unconfirmed", "ack_errors"):
            conn.exec_driver_sql(f"ALTER TABLE campaign DROP COLUMN {name}")
        conn.exec_driver_sql("ALTER TABLE campaign DROP COLUMN check_numbers")
        for name in ("wa_id", "ack", "delivered_at", "read_at", "unconfirmed", "replied_at"):
            conn.exec_driver_sql(f"ALTER TABLE recipient DROP COLUMN {name}")
        conn.exec_driver_sql("ALTER TABLE recipient DROP COLUMN reply_text")
        conn.exec_driver_sql("ALTER TABLE recipient DROP COLUMN checked_at")
        if version >= 8:
            conn.exec_driver_sql(
                f"UPDATE meta SET value = '{version}' WHERE key = 'schema_version'"
            )
            store.close()
            return cid
        conn.exec_driver_sql("CREATE INDEX ix_campaign_updated_at ON campaign (updated_at)")
        conn.exec_driver_sql("ALTER TABLE campaign DROP COLUMN next_send_at")
        conn.exec_driver_sql("DROP INDEX ix_recipient_campaign_status")  # before 7: no position
        conn.exec_driver_sql(
            "CREATE INDEX ix_recipient_campaign_status ON recipient (campaign_id, status)"
        )
        if version >= 5:
            conn.exec_driver_sql("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
            store.close()
            return cid
        conn.exec_driver_sql("DROP TABLE media")
        conn.exec_driver_sql("ALTER TABLE campaign DROP COLUMN image_sha256")
        conn.exec_driver_sql(f"UPDATE meta SET value = '{version}' WHERE key = 'schema_version'")
        if version >= 4:
            store.close()
            return cid
        conn.exec_driver_sql("DROP TABLE campaign_event")
        conn.exec_driver_sql("ALTER TABLE campaign DROP COLUMN created_by")
        if version < 3:
            conn.exec_driver_sql("ALTER TABLE campaign DROP COLUMN waiting_for")
            conn.exec_driver_sql("ALTER TABLE campaign DROP COLUMN waiting_since")
        if version < 2:
            conn.exec_driver_sql("ALTER TABLE campaign DROP COLUMN auto_resume")
            conn.exec_driver_sql("DROP INDEX ix_campaign_updated_at")
        conn.exec_driver_sql(f"UPDATE meta SET value = '{version}' WHERE key = 'schema_version'")
    store.close()
    return cid


@pytest.mark.parametrize("old", [1, 3, 4, 5, 8, 9, 10])
# SQLAlchemy cannot reflect the dashboard's lower(name) index on SQLite, and says so.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_an_older_database_is_migrated_in_place(db_target: str, old: int) -> None:
    cid = _make_version(Store(db_target), old)
    store = Store(db_target)
    with store.read() as conn:
        inspector = sa.inspect(conn)
        columns = {c["name"] for c in inspector.get_columns("campaign")}
        recipient_columns = inspector.get_columns("recipient")
        tables = inspector.get_table_names()
        indexes = {i["name"] for i in inspector.get_indexes("campaign")}
        event_indexes = {i["name"] for i in inspector.get_indexes("campaign_event")}
        recipient_indexes = {
            i["name"]: i["column_names"] for i in inspector.get_indexes("recipient")
        }
        (fk,) = inspector.get_foreign_keys("campaign_event")
        version = conn.exec_driver_sql(
            "SELECT value FROM meta WHERE key = 'schema_version'"
        ).scalar()
    assert {
        "auto_resume",
        "waiting_for",
        "waiting_since",
        "created_by",
        "image_sha256",
        "next_send_at",
        "check_numbers",
        "delivered",
        "read",
        "replied",
        "skipped",
    } <= columns
    v9 = {"wa_id", "ack", "delivered_at", "read_at", "replied_at", "reply_text", "checked_at"}
    assert v9 <= {c["name"] for c in recipient_columns}
    assert {"ix_recipient_wa_id", "ix_recipient_chat_id", "ix_recipient_unacked"} <= set(
        recipient_indexes
    )
    assert "optout" in tables
    assert version == str(SCHEMA_VERSION) == "11"
    assert "sessions" in columns
    assert {"break_max", "send_window", "window_days", "timezone", "variants"} <= columns
    assert {"text", "session"} <= {c["name"] for c in recipient_columns}
    assert {"number_caps", "send_log"} <= set(tables)
    assert "ix_campaign_updated_at" not in indexes  # made by the step to 2, dropped by 8
    assert "ix_campaign_by_updated_at" in indexes  # the sort index that serves its reads
    assert "ix_campaign_event_campaign" in event_indexes
    # The details screen's filter reads a status's recipients in order from the index.
    assert recipient_indexes["ix_recipient_campaign_status"] == [
        "campaign_id",
        "status",
        "position",
    ]
    assert (fk["referred_table"], fk["options"].get("ondelete")) == ("campaign", "CASCADE")
    old_one = store.get_campaign(cid)
    # The data is kept, the defaults added; who created it is not known, and it has no past.
    assert (old_one.total, old_one.auto_resume, old_one.image_sha256) == (2, False, None)
    assert old_one.sessions is None  # one session, as before
    if old < 10:  # A long break of one length becomes the range from it to it.
        assert (old_one.break_seconds, old_one.break_max) == (45, 45)
    if old < 4:
        assert old_one.created_by is None and store.events(cid) == []
    # The migrated database keeps an image's bytes.
    image = Media(PNG, "image/png", "offer.png")
    with_image = store.create_campaign(
        Campaign(name="i", template_text="x"), [NewRecipient("1", "1@c.us", None, {})], image
    )
    assert store.media(store.get_campaign(with_image).image_sha256 or "") == image
    new = store.get_campaign(make_campaign(store, 1, auto_resume=True))
    me = f"{pwd.getpwuid(os.geteuid()).pw_name}@{socket.gethostname()}"
    assert new.auto_resume is True and new.created_by == me
    # The migrated table takes events, and loses them with their campaign.
    store.claim(cid, "me", 30)
    assert [e.kind for e in store.events(cid)][-1] == "claimed"
    with store.write() as conn:
        conn.execute(sa.delete(C).where(C.c.id == cid))
    with store.read() as conn:
        left = conn.execute(sa.select(sa.func.count()).select_from(E).where(E.c.campaign_id == cid))
        assert left.scalar() == 0
    store.close()
    Store(db_target).close()  # opening it again migrates nothing


def test_a_database_from_a_newer_schema_is_refused(db_target: str) -> None:
    store = Store(db_target)
    make_campaign(store, 1)
    with store.write() as conn:
        conn.exec_driver_sql("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    before = snapshot(store)
    store.close()
    with pytest.raises(StoreError) as info:
        Store(db_target)
    message = _one_line(info)
    assert "newer waha-tui" in message and "schema 99" in message and "upgrade" in message
    assert snapshot(db_target) == before


# -- several processes: the locks --------------------------------------------------------


def test_claims_on_one_session_are_serialised_across_processes(store: Store) -> None:
    """Another process is claiming campaign A of session 'default' (it holds the session);
    our claim of campaign B of the same session must wait for it and then see A Running.
    Without the session lock, both would be Running at once on PostgreSQL."""
    a = make_campaign(store, 1)
    b = make_campaign(store, 1)
    other = Store(store.target)
    result: dict[str, object] = {}
    holding = threading.Event()

    def claim_b() -> None:
        holding.wait(10)
        try:
            result["camp"] = store.claim(b, "process-b", 30)
        except StoreError as exc:
            result["error"] = exc

    thread = threading.Thread(target=claim_b)
    thread.start()
    with other.write() as conn:  # what claim(a) does, slowed down
        other._locked_campaign(conn, a)
        other._lock_session(conn, "default")
        holding.set()
        time.sleep(0.5)  # claim(b) is now waiting for us
        assert "camp" not in result and "error" not in result
        conn.execute(
            sa.update(C)
            .where(C.c.id == a)
            .values(
                status=S.RUNNING,
                lease_owner="process-a",
                lease_until=utcnow() + timedelta(seconds=30),
            )
        )
    thread.join(15)
    other.close()
    assert isinstance(result.get("error"), ClaimLost), result
    assert f"busy sending campaign {a}" in str(result["error"])
    assert store.get_campaign(b).status == S.SCHEDULED


@pytest.mark.parametrize("backend", ["postgres"])
def test_campaigns_being_claimed_elsewhere_are_skipped_not_waited_for(store: Store) -> None:
    # PostgreSQL only by nature: SQLite has no row locks (its one write lock serialises).
    a = make_campaign(store, 1)
    b = make_campaign(store, 1, session="other")
    other = Store(store.target)
    try:
        with other.write() as conn:
            other._locked_campaign(conn, a)  # another runner is claiming it now
            started = time.monotonic()
            assert [c.id for c in store.claimable_campaigns()] == [b]
            assert store.recover_interrupted() == []
            assert time.monotonic() - started < 2
    finally:
        other.close()


# -- PostgreSQL: connecting, errors and passwords ----------------------------------------


@pytest.fixture
def pg_url(db_target: str, backend: str) -> URL:
    assert backend == "postgres"
    return make_url(db_target)


PG = pytest.mark.parametrize("backend", ["postgres"])


@PG
def test_the_password_never_shows(pg_url: URL) -> None:
    password = pg_url.password
    assert password
    store = Store(pg_url.render_as_string(hide_password=False))
    assert password not in repr(store) and password not in store.location
    assert "***" in store.location
    assert store.url.database == pg_url.database
    store.close()


@PG
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"password": "wrong-secret-pw"}, "password authentication failed"),
        ({"database": "no_such_db_here"}, 'database "no_such_db_here" does not exist'),
        ({"port": "closed"}, "Connection refused"),
        ({"username": "nobody", "password": "wrong-secret-pw"}, "authentication failed"),
    ],
    ids=["bad-password", "missing-database", "refused", "unknown-user"],
)
def test_connection_problems_are_one_line_without_the_password(
    pg_url: URL, change: dict[str, str], expected: str
) -> None:
    values: dict[str, object] = dict(change)
    if values.get("port") == "closed":
        values["port"] = closed_port()
    url = pg_url.set(**values)  # type: ignore[arg-type]
    with pytest.raises(StoreError) as info:
        Store(url.render_as_string(hide_password=False))
    message = _one_line(info)
    assert expected in message, message
    assert url.render_as_string(hide_password=True) in message
    for secret in {pg_url.password, url.password} - {None}:
        assert secret not in message


def test_postgresql_urls_use_psycopg_and_other_databases_are_refused() -> None:
    assert parse_target("postgresql://u:pw@h/db").drivername == "postgresql+psycopg"
    assert parse_target("sqlite:///x/y.db").database == "x/y.db"
    assert parse_target("campaigns.db").database == "campaigns.db"
    with pytest.raises(StoreError) as info:
        parse_target("mysql://root:hunter2@db/x")
    message = _one_line(info)
    assert "not supported" in message and "hunter2" not in message
    with pytest.raises(StoreError) as info:
        parse_target("postgresql://u:hunter2@h:notaport/db")
    assert "hunter2" not in _one_line(info)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("campaigns.db", "campaigns.db"),
        ("postgresql://h/db", "postgresql://h/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql+psycopg://u:hunter2@h:5432/db", "postgresql+psycopg://u:***@h:5432/db"),
        ("postgresql://u:hunter2@h:notaport/db", "postgresql://u:***@h:notaport/db"),
        ("postgresql://u:hun@ter/2@h/db", "postgresql://u:***@h/db"),
    ],
)
def test_database_passwords_are_masked_in_settings_and_messages(text: str, shown: str) -> None:
    assert mask_url(text) == shown
    settings = Settings.resolve(db=text)
    assert settings.db == text  # the real value still opens the database
    assert "hunter2" not in repr(settings) and "hun@ter" not in repr(settings)
    assert shown in repr(settings)


def test_six_openers_of_a_new_file_at_once_all_succeed_every_time(tmp_path: Path) -> None:
    """SQLite refuses a switch to WAL with "database is locked" at once, without waiting
    for the busy timeout, while another connection switches the same new file: seen as
    1 failure in 10 of these rounds before the switch was tried again."""
    for round_ in range(25):
        path = tmp_path / f"new{round_}.db"
        barrier = threading.Barrier(6)
        errors: list[BaseException] = []

        def open_it(
            path: Path = path,
            barrier: threading.Barrier = barrier,
            errors: list[BaseException] = errors,
        ) -> None:
            barrier.wait(10)
            try:
                Store(path, busy_timeout=2).close()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == [], f"round {round_}: {errors[0]}"


@pytest.mark.parametrize("version_1", [False, True], ids=["new", "migrating"])
def test_several_processes_opening_one_database_at_once(db_target: str, version_1: bool) -> None:
    """Each Store has its own connections, as another process would: creating the schema
    (or migrating it) happens once, and every one of them opens the database."""
    if version_1:
        _make_version(Store(db_target), 1)
    barrier = threading.Barrier(6)
    opened: list[Store] = []
    errors: list[BaseException] = []

    def open_it() -> None:
        barrier.wait(10)
        try:
            opened.append(Store(db_target))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and len(opened) == 6
    with opened[0].read() as conn:
        assert conn.exec_driver_sql("SELECT key, value FROM meta").all() == [
            ("schema_version", str(SCHEMA_VERSION))
        ]
    for store in opened:
        store.close()


def test_status_and_owner_sees_another_process_at_once(db_target: str) -> None:
    """The runner's look right before a send: never a stale snapshot."""
    store, other = Store(db_target), Store(db_target)
    try:
        cid = make_campaign(store, 1)
        assert store.status_and_owner(cid) == (S.SCHEDULED, None)
        store.claim(cid, "runner-a", 30)
        assert store.status_and_owner(cid) == (S.RUNNING, "runner-a")
        other.transition(cid, S.PAUSED, pause_reason="paused by the operator")
        assert store.status_and_owner(cid)[0] == S.PAUSED
        with pytest.raises(NotFound):
            store.status_and_owner(cid + 1000)
    finally:
        store.close()
        other.close()
