"""The campaign store: one SQLite file (WAL), SQLAlchemy Core/SQLModel, portable SQL.

Every write runs in a transaction that takes SQLite's write lock first (BEGIN IMMEDIATE), so
check-then-update sequences (status transitions, claiming a campaign) cannot race with
another process. Reads use a second engine with ordinary deferred transactions, so the
dashboard never waits behind the runner.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError
from sqlmodel import SQLModel

from waha_tui.errors import UserError
from waha_tui.models import (
    SCHEMA_VERSION,
    Campaign,
    Contact,
    ContactList,
    Meta,
    Recipient,
    Template,
    utcnow,
)
from waha_tui.status import (
    FINISHED,
    CampaignStatus,
    RecipientStatus,
    TransitionError,
    check_transition,
)

C = Campaign.__table__  # type: ignore[attr-defined]
R = Recipient.__table__  # type: ignore[attr-defined]
S = CampaignStatus
BUSY_TIMEOUT_MS = 10_000


class StoreError(UserError):
    pass


class NotFound(UserError):
    pass


@dataclass(frozen=True)
class ListInfo:
    name: str
    contact_count: int
    created_at: datetime | None


@dataclass(frozen=True)
class NewRecipient:
    phone: str
    chat_id: str
    name: str | None
    variables: dict[str, str]


def _campaign(row: Any) -> Campaign:
    return Campaign.model_validate(dict(row._mapping))


def _recipient(row: Any) -> Recipient:
    return Recipient.model_validate(dict(row._mapping))


class Store:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._prepare_file()
        url = f"sqlite:///{self.path}"
        self.engine = self._make_engine(url, "BEGIN IMMEDIATE")
        self.read_engine = self._make_engine(url, "BEGIN")
        self._init_schema()

    # -- opening -----------------------------------------------------------------------

    def _prepare_file(self) -> None:
        p = self.path
        if p.is_dir():
            raise StoreError(f"database path {p} is a directory, not a file")
        if not p.parent.exists():
            raise StoreError(f"database path {p}: folder {p.parent} does not exist")
        if not p.exists():
            try:
                # Created 0600 before SQLite touches it: it holds phone numbers.
                fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
                os.close(fd)
            except FileExistsError:
                pass
            except OSError as exc:
                raise StoreError(f"cannot create database {p}: {exc.strerror}") from None
        elif not os.access(p, os.R_OK | os.W_OK):
            raise StoreError(f"database {p} is not readable and writable by this user")
        if not os.access(p.parent, os.W_OK):
            raise StoreError(f"database folder {p.parent} is not writable (SQLite needs it)")

    @staticmethod
    def _make_engine(url: str, begin: str) -> Engine:
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.execute("PRAGMA synchronous = NORMAL")
            # Outside any transaction: SQLite cannot change the journal inside one.
            cur.execute("PRAGMA journal_mode = WAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql(begin)

        return engine

    def _init_schema(self) -> None:
        try:
            with self.engine.connect() as conn:
                mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
                tables = set(sa.inspect(conn).get_table_names())
        except DatabaseError as exc:
            raise StoreError(f"{self.path} is not a waha-tui database ({_reason(exc)})") from None
        if mode != "wal":
            raise StoreError(f"{self.path}: could not switch the database to WAL mode")
        if tables and "meta" not in tables:
            raise StoreError(f"{self.path} is a SQLite file but not a waha-tui database")
        if "meta" in tables:
            with self.read_engine.connect() as conn:
                found = conn.execute(
                    sa.select(Meta.value).where(Meta.key == "schema_version")  # type: ignore[arg-type]
                ).scalar()
            version = int(found or 0)
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} was written by a newer waha-tui (schema {version}; this "
                    f"version knows {SCHEMA_VERSION}): upgrade waha-tui to open it"
                )
            # Future migrations from `version` up to SCHEMA_VERSION go here.
            return
        with self.engine.begin() as conn:
            # Another process may have created it since we looked: under the write lock
            # (BEGIN IMMEDIATE) this second look is final.
            if "meta" not in sa.inspect(conn).get_table_names():
                SQLModel.metadata.create_all(conn)
                conn.execute(
                    sa.insert(Meta).values(key="schema_version", value=str(SCHEMA_VERSION))
                )
        os.chmod(self.path, stat.S_IRUSR | stat.S_IWUSR)

    def close(self) -> None:
        self.engine.dispose()
        self.read_engine.dispose()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise StoreError(f"database {self.path}: {_reason(exc)}") from None

    @contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            with self.read_engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise StoreError(f"database {self.path}: {_reason(exc)}") from None

    # -- contact lists -----------------------------------------------------------------

    def create_list(self, name: str, contacts: Sequence[NewRecipient]) -> int:
        now = utcnow()
        try:
            with self.write() as conn:
                list_id = conn.execute(
                    sa.insert(ContactList)
                    .values(name=name, contact_count=len(contacts), created_at=now)
                    .returning(ContactList.id)  # type: ignore[arg-type]
                ).scalar_one()
                if contacts:
                    conn.execute(
                        sa.insert(Contact),
                        [
                            {
                                "list_id": list_id,
                                "position": i,
                                "phone": c.phone,
                                "chat_id": c.chat_id,
                                "name": c.name,
                                "variables": c.variables,
                            }
                            for i, c in enumerate(contacts)
                        ],
                    )
        except IntegrityError:
            raise StoreError(
                f"a contact list named '{name}' already exists: delete it or pick another name"
            ) from None
        return list_id

    def lists(self) -> list[ListInfo]:
        with self.read() as conn:
            rows = conn.execute(
                sa.select(
                    ContactList.name, ContactList.contact_count, ContactList.created_at
                ).order_by(ContactList.name)
            ).all()
        return [ListInfo(*row) for row in rows]

    def list_contacts(self, name: str) -> list[NewRecipient]:
        with self.read() as conn:
            list_id = self._list_id(conn, name)
            rows = conn.execute(
                sa.select(Contact.phone, Contact.chat_id, Contact.name, Contact.variables)
                .where(Contact.list_id == list_id)
                .order_by(Contact.position)  # type: ignore[arg-type]
            ).all()
        return [NewRecipient(*row) for row in rows]

    def delete_list(self, name: str) -> int:
        """Campaigns hold their own copy of the recipients, so deleting a list is safe."""
        with self.write() as conn:
            list_id = self._list_id(conn, name)
            conn.execute(sa.delete(Contact).where(Contact.list_id == list_id))  # type: ignore[arg-type]
            conn.execute(sa.delete(ContactList).where(ContactList.id == list_id))  # type: ignore[arg-type]
        return list_id

    @staticmethod
    def _list_id(conn: Connection, name: str) -> int:
        list_id = conn.execute(
            sa.select(ContactList.id).where(ContactList.name == name)  # type: ignore[arg-type]
        ).scalar()
        if list_id is None:
            raise NotFound(f"no contact list named '{name}'")
        return list_id

    # -- templates ---------------------------------------------------------------------

    def add_template(self, name: str, text: str) -> int:
        now = utcnow()
        try:
            with self.write() as conn:
                return conn.execute(
                    sa.insert(Template)
                    .values(name=name, text=text, created_at=now, updated_at=now)
                    .returning(Template.id)  # type: ignore[arg-type]
                ).scalar_one()
        except IntegrityError:
            raise StoreError(f"a template named '{name}' already exists") from None

    def templates(self) -> list[Template]:
        with self.read() as conn:
            rows = conn.execute(sa.select(Template).order_by(Template.name)).all()  # type: ignore[arg-type]
        return [Template.model_validate(dict(r._mapping)) for r in rows]

    def update_template(self, name: str, text: str) -> None:
        """A template's new text; campaigns made from it keep the text they copied."""
        with self.write() as conn:
            changed = conn.execute(
                sa.update(Template)
                .where(Template.name == name)  # type: ignore[arg-type]
                .values(text=text, updated_at=utcnow())
            ).rowcount
        if not changed:
            raise NotFound(f"no template named '{name}'")

    def delete_template(self, name: str) -> None:
        """Campaigns copied the text when they were created, so none is affected."""
        with self.write() as conn:
            gone = conn.execute(
                sa.delete(Template).where(Template.name == name)  # type: ignore[arg-type]
            ).rowcount
        if not gone:
            raise NotFound(f"no template named '{name}'")

    def get_template(self, name: str) -> Template:
        with self.read() as conn:
            row = conn.execute(
                sa.select(Template).where(Template.name == name)  # type: ignore[arg-type]
            ).first()
        if row is None:
            raise NotFound(f"no template named '{name}'")
        return Template.model_validate(dict(row._mapping))

    # -- campaigns ---------------------------------------------------------------------

    def create_campaign(self, campaign: Campaign, recipients: Iterable[NewRecipient]) -> int:
        now = utcnow()
        values = campaign.model_dump(exclude={"id"})
        values.update(created_at=now, updated_at=now, status=S.SCHEDULED, next_index=0)
        with self.write() as conn:
            cid = conn.execute(sa.insert(C).values(**values).returning(C.c.id)).scalar_one()
            batch: list[dict[str, Any]] = []
            total = 0
            for total, r in enumerate(recipients, start=1):
                batch.append(
                    {
                        "campaign_id": cid,
                        "position": total - 1,
                        "phone": r.phone,
                        "chat_id": r.chat_id,
                        "name": r.name,
                        "variables": r.variables,
                        "status": RecipientStatus.PENDING,
                        "attempts": 0,
                    }
                )
                if len(batch) >= 5000:
                    conn.execute(sa.insert(R), batch)
                    batch = []
            if batch:
                conn.execute(sa.insert(R), batch)
            conn.execute(sa.update(C).where(C.c.id == cid).values(total=total))
        return cid

    def get_campaign(self, campaign_id: int) -> Campaign:
        with self.read() as conn:
            row = conn.execute(sa.select(C).where(C.c.id == campaign_id)).first()
        if row is None:
            raise NotFound(f"no campaign with id {campaign_id}")
        return _campaign(row)

    def list_campaigns(self) -> list[Campaign]:
        with self.read() as conn:
            rows = conn.execute(sa.select(C).order_by(C.c.id)).all()
        return [_campaign(r) for r in rows]

    def campaigns_changed_since(self, since: datetime | None) -> tuple[list[Campaign], list[int]]:
        """Campaigns updated after `since` (all when None), and every id that exists."""
        with self.read() as conn:
            query = sa.select(C).order_by(C.c.id)
            if since is not None:
                query = query.where(C.c.updated_at >= since)
            rows = conn.execute(query).all()
            ids = list(conn.execute(sa.select(C.c.id)).scalars())
        return [_campaign(r) for r in rows], ids

    # The columns the dashboard shows (and reads under the cursor), nothing more.
    DASHBOARD_COLUMNS = (
        "id",
        "name",
        "session",
        "status",
        "scheduled_at",
        "total",
        "sent",
        "failed",
        "unknown",
        "next_index",
        "pause_reason",
        "last_error",
        "lease_owner",
        "updated_at",
    )

    def campaign_rows(self, since: datetime | None = None) -> tuple[list[Any], int]:
        """The dashboard's columns of the campaigns updated at or after `since` (all when
        None), by id, and how many campaigns exist, read in one transaction.

        Plain Core rows (attribute access, tuple equality), no model validation: a display
        of thousands of campaigns reads them every tick.
        """
        query = sa.select(*(C.c[name] for name in self.DASHBOARD_COLUMNS)).order_by(C.c.id)
        if since is not None:
            query = query.where(C.c.updated_at >= since)
        with self.read() as conn:
            rows = conn.execute(query).all()
            count = conn.execute(sa.select(sa.func.count()).select_from(C)).scalar_one()
        return rows, count

    def recipients(
        self,
        campaign_id: int,
        *,
        status: str | None = None,
        start: int = 0,
        limit: int | None = None,
    ) -> list[Recipient]:
        query = sa.select(R).where(R.c.campaign_id == campaign_id, R.c.position >= start)
        if status:
            query = query.where(R.c.status == status)
        query = query.order_by(R.c.position)
        if limit is not None:
            query = query.limit(limit)
        with self.read() as conn:
            return [_recipient(r) for r in conn.execute(query).all()]

    def recipient_counts(self, campaign_id: int) -> dict[str, int]:
        with self.read() as conn:
            rows = conn.execute(
                sa.select(R.c.status, sa.func.count())
                .where(R.c.campaign_id == campaign_id)
                .group_by(R.c.status)
            ).all()
        return {status: count for status, count in rows}

    # -- status changes ----------------------------------------------------------------

    def _locked_campaign(self, conn: Connection, campaign_id: int) -> Campaign:
        row = conn.execute(sa.select(C).where(C.c.id == campaign_id).with_for_update()).first()
        if row is None:
            raise NotFound(f"no campaign with id {campaign_id}")
        return _campaign(row)

    def transition(
        self,
        campaign_id: int,
        new: CampaignStatus,
        *,
        expect: Iterable[CampaignStatus] | None = None,
        **fields: Any,
    ) -> Campaign:
        """Move a campaign to `new`, refusing anything the transition table forbids."""
        with self.write() as conn:
            camp = self._locked_campaign(conn, campaign_id)
            if expect is not None and camp.status not in set(expect):
                raise TransitionError(campaign_id, camp.status, new)
            check_transition(campaign_id, camp.status, new)
            values = {"status": new, "updated_at": utcnow(), **fields}
            conn.execute(sa.update(C).where(C.c.id == campaign_id).values(**values))
            return _campaign(conn.execute(sa.select(C).where(C.c.id == campaign_id)).one())

    def claim(self, campaign_id: int, owner: str, lease_seconds: float) -> Campaign:
        """Atomically take a Scheduled or Paused campaign and make it Running for `owner`."""
        now = utcnow()
        with self.write() as conn:
            camp = self._locked_campaign(conn, campaign_id)
            if camp.status == S.RUNNING and camp.lease_until and camp.lease_until > now:
                raise StoreError(f"campaign {campaign_id} is already running in another process")
            if camp.status not in (S.SCHEDULED, S.PAUSED):
                raise StoreError(
                    f"campaign {campaign_id} is {camp.status}: only a Scheduled or Paused "
                    "campaign can be run"
                )
            busy = conn.execute(
                sa.select(C.c.id).where(
                    C.c.session == camp.session,
                    C.c.status == S.RUNNING,
                    C.c.id != campaign_id,
                    C.c.lease_until > now,
                )
            ).scalar()
            if busy is not None:
                raise StoreError(
                    f"session '{camp.session}' is busy sending campaign {busy}: one campaign "
                    "per WAHA session at a time"
                )
            if camp.status == S.PAUSED:
                check_transition(campaign_id, S.PAUSED, S.SCHEDULED)
            check_transition(campaign_id, S.SCHEDULED, S.RUNNING)
            conn.execute(
                sa.update(C)
                .where(C.c.id == campaign_id)
                .values(
                    status=S.RUNNING,
                    started_at=camp.started_at or now,
                    pause_reason=None,
                    consecutive_failures=0,
                    lease_owner=owner,
                    lease_until=now + timedelta(seconds=lease_seconds),
                    updated_at=now,
                )
            )
            return _campaign(conn.execute(sa.select(C).where(C.c.id == campaign_id)).one())

    def heartbeat(self, campaign_id: int, owner: str, lease_seconds: float) -> str:
        """Renew the lease; returns the status, so the runner sees a pause set elsewhere."""
        now = utcnow()
        with self.write() as conn:
            conn.execute(
                sa.update(C)
                .where(C.c.id == campaign_id, C.c.lease_owner == owner)
                .values(lease_until=now + timedelta(seconds=lease_seconds))
            )
            return conn.execute(sa.select(C.c.status).where(C.c.id == campaign_id)).scalar_one()

    def mark_sending(self, recipient_id: int, message_id: str | None) -> None:
        with self.write() as conn:
            conn.execute(
                sa.update(R)
                .where(R.c.id == recipient_id)
                .values(
                    status=RecipientStatus.SENDING,
                    attempts=R.c.attempts + 1,
                    message_id=message_id,
                    error=None,
                )
            )

    def set_recipient_pending(self, recipient_id: int, error: str | None = None) -> None:
        """The send surely did not go out (refused before WAHA accepted it)."""
        with self.write() as conn:
            conn.execute(
                sa.update(R)
                .where(R.c.id == recipient_id)
                .values(status=RecipientStatus.PENDING, error=error)
            )

    def record(
        self,
        campaign_id: int,
        recipient: Recipient,
        status: RecipientStatus,
        *,
        owner: str,
        lease_seconds: float,
        message_id: str | None = None,
        error: str | None = None,
    ) -> Campaign:
        """One transaction: the recipient's outcome, the counters, next_index, the lease."""
        now = utcnow()
        counter = {
            RecipientStatus.SENT: "sent",
            RecipientStatus.FAILED: "failed",
            RecipientStatus.UNKNOWN: "unknown",
        }[status]
        streak = 0 if status == RecipientStatus.SENT else C.c.consecutive_failures + 1
        with self.write() as conn:
            conn.execute(
                sa.update(R)
                .where(R.c.id == recipient.id)
                .values(
                    status=status,
                    message_id=message_id or recipient.message_id,
                    error=error,
                    sent_at=now if status == RecipientStatus.SENT else None,
                )
            )
            row = conn.execute(
                sa.update(C)
                .where(C.c.id == campaign_id)
                .values(
                    {
                        counter: getattr(C.c, counter) + 1,
                        "next_index": recipient.position + 1,
                        "consecutive_failures": streak,
                        "last_error": error if error else C.c.last_error,
                        "updated_at": now,
                        "lease_until": sa.case(
                            (C.c.lease_owner == owner, now + timedelta(seconds=lease_seconds)),
                            else_=C.c.lease_until,
                        ),
                    }
                )
                .returning(*C.c)
            ).one()
            # The row comes straight from the database: no need to validate it again.
            return Campaign.model_construct(**row._mapping)

    def start_sending(
        self,
        campaign_id: int,
        recipient_id: int,
        message_id: str | None,
        *,
        owner: str,
        lease_seconds: float,
    ) -> str:
        """Mark a recipient `sending` only while the campaign is still Running, and renew
        the lease, in one transaction. Returns the campaign's status: anything but Running
        (a pause or cancel set by another process) means nothing was marked and nothing
        may be sent."""
        now = utcnow()
        with self.write() as conn:
            status = conn.execute(
                sa.update(C)
                .where(C.c.id == campaign_id, C.c.lease_owner == owner)
                .values(lease_until=now + timedelta(seconds=lease_seconds))
                .returning(C.c.status)
            ).scalar()
            if status is None:  # our lease was taken over: read what it is now
                status = conn.execute(
                    sa.select(C.c.status).where(C.c.id == campaign_id)
                ).scalar_one()
            if status == S.RUNNING:
                conn.execute(
                    sa.update(R)
                    .where(R.c.id == recipient_id)
                    .values(
                        status=RecipientStatus.SENDING,
                        attempts=R.c.attempts + 1,
                        message_id=message_id,
                        error=None,
                    )
                )
            return status

    def finish(
        self,
        campaign_id: int,
        owner: str,
        new: CampaignStatus,
        *,
        pause_reason: str | None = None,
        last_error: str | None = None,
    ) -> Campaign:
        """End this owner's run: move Running to `new` (unless someone already moved it)."""
        now = utcnow()
        with self.write() as conn:
            camp = self._locked_campaign(conn, campaign_id)
            values: dict[str, Any] = {"lease_owner": None, "lease_until": None, "updated_at": now}
            if camp.status == S.RUNNING:
                check_transition(campaign_id, camp.status, new)
                values["status"] = new
                if new == S.PAUSED:
                    values["pause_reason"] = pause_reason
                if new in FINISHED:
                    values["completed_at"] = now
                if new == S.COMPLETED:
                    values["next_index"] = camp.total  # every recipient is settled
                if last_error:
                    values["last_error"] = last_error
            conn.execute(
                sa.update(C)
                .where(
                    C.c.id == campaign_id,
                    sa.or_(C.c.lease_owner == owner, C.c.lease_owner.is_(None)),
                )
                .values(**values)
            )
            return _campaign(conn.execute(sa.select(C).where(C.c.id == campaign_id)).one())

    def retry_recipients(self, campaign_id: int, statuses: Iterable[RecipientStatus]) -> int:
        """Queue failed or unknown recipients to be sent again; the campaign becomes Paused.

        Counters and next_index move back with them, so they still equal the per-recipient
        truth. The operator then resumes it as any paused campaign.
        """
        wanted = sorted({RecipientStatus(s) for s in statuses})
        if not wanted:
            raise StoreError("choose what to retry: failed or unknown recipients")
        with self.write() as conn:
            camp = self._locked_campaign(conn, campaign_id)
            if camp.status not in (S.PAUSED, S.COMPLETED, S.FAILED):
                raise StoreError(
                    f"campaign {campaign_id} is {camp.status}: only a Paused, Completed or "
                    "Failed campaign can retry recipients"
                )
            rows = conn.execute(
                sa.select(R.c.status, sa.func.count(), sa.func.min(R.c.position))
                .where(R.c.campaign_id == campaign_id, R.c.status.in_(wanted))
                .group_by(R.c.status)
            ).all()
            found = {status: (count, first) for status, count, first in rows}
            total = sum(count for count, _ in found.values())
            if not total:
                names = " or ".join(str(s) for s in wanted)
                raise StoreError(f"campaign {campaign_id} has no {names} recipients to retry")
            conn.execute(
                sa.update(R)
                .where(R.c.campaign_id == campaign_id, R.c.status.in_(wanted))
                .values(status=RecipientStatus.PENDING, error=None, message_id=None, sent_at=None)
            )
            if camp.status != S.PAUSED:
                check_transition(campaign_id, camp.status, S.PAUSED)
            first = min(first for _, first in found.values())
            conn.execute(
                sa.update(C)
                .where(C.c.id == campaign_id)
                .values(
                    status=S.PAUSED,
                    failed=C.c.failed - found.get(RecipientStatus.FAILED, (0, 0))[0],
                    unknown=C.c.unknown - found.get(RecipientStatus.UNKNOWN, (0, 0))[0],
                    next_index=min(camp.next_index, first),
                    consecutive_failures=0,
                    completed_at=None,
                    pause_reason=f"{total} recipient{'s' if total > 1 else ''} queued for "
                    "retry: resume to send",
                    updated_at=utcnow(),
                )
            )
        return total

    def recover_interrupted(self, now: datetime | None = None) -> list[int]:
        """Campaigns left Running by a process whose lease lapsed become Paused."""
        now = now or utcnow()
        with self.write() as conn:
            ids = list(
                conn.execute(
                    sa.select(C.c.id).where(
                        C.c.status == S.RUNNING,
                        sa.or_(C.c.lease_until.is_(None), C.c.lease_until < now),
                    )
                ).scalars()
            )
            if ids:
                conn.execute(
                    sa.update(C)
                    .where(C.c.id.in_(ids))
                    .values(
                        status=S.PAUSED,
                        pause_reason="interrupted: the process running it stopped",
                        lease_owner=None,
                        lease_until=None,
                        updated_at=now,
                    )
                )
        return ids

    def due_campaigns(self, now: datetime | None = None) -> list[Campaign]:
        now = now or utcnow()
        with self.read() as conn:
            rows = conn.execute(
                sa.select(C)
                .where(C.c.status == S.SCHEDULED, C.c.scheduled_at <= now)
                .order_by(C.c.scheduled_at, C.c.id)
            ).all()
        return [_campaign(r) for r in rows]

    def running_campaigns(self) -> list[Campaign]:
        with self.read() as conn:
            rows = conn.execute(sa.select(C).where(C.c.status == S.RUNNING)).all()
        return [_campaign(r) for r in rows]


def _reason(exc: Exception) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).split("\n")[0]
