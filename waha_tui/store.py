"""The campaign store: a SQLite file (WAL) or a PostgreSQL database, SQLAlchemy Core/SQLModel,
portable SQL: the same tables, migrations and code paths on both.

Check-then-update sequences (status transitions, claiming a campaign) must not race with
another process. On SQLite every write transaction takes the file's write lock first
(BEGIN IMMEDIATE), which serialises them all. On PostgreSQL writes run at READ COMMITTED
and lock what they check: the campaign row (SELECT ... FOR UPDATE), and for a claim the
WAHA session too (an advisory lock, see `_lock_session`). Due and lapsed campaigns are
picked with FOR UPDATE SKIP LOCKED, so several runners split them without waiting on one
another; SQLAlchemy drops those clauses on SQLite, where the write lock already holds.
Reads use a second engine with ordinary transactions, so the dashboard never waits behind
the runner.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import ArgumentError, DatabaseError, IntegrityError, OperationalError
from sqlmodel import SQLModel, col

from waha_tui import history, optout
from waha_tui.errors import UserError
from waha_tui.history import Actor, Entry, Kind
from waha_tui.media import Media
from waha_tui.models import (
    CAMPAIGN_SORTS,
    CASE_FOLDED_SORTS,
    SCHEMA_VERSION,
    Campaign,
    CampaignEventRow,
    Contact,
    ContactList,
    MediaRow,
    Meta,
    NumberCaps,
    OptOut,
    Recipient,
    SendLog,
    Template,
    utcnow,
)
from waha_tui.pacing import CapHit, Caps, CapUse, Pacing
from waha_tui.secret import hide, mask_url
from waha_tui.spread import Spread, names_of, overlap, sessions_named
from waha_tui.status import (
    FINISHED,
    CampaignStatus,
    RecipientStatus,
    StatusRefused,
    TransitionError,
    check_deletable,
    check_editable,
    check_transition,
    described,
)
from waha_tui.waha.message_ids import bare, bare_or_none

# SQLModel sets a table model's __table__ but does not declare it to type checkers.
log = logging.getLogger(__name__)
C = Campaign.__table__  # type: ignore[attr-defined]
R = Recipient.__table__  # type: ignore[attr-defined]
E = CampaignEventRow.__table__  # type: ignore[attr-defined]
M = MediaRow.__table__  # type: ignore[attr-defined]
OPT = OptOut.__table__  # type: ignore[attr-defined]
CAPS = NumberCaps.__table__  # type: ignore[attr-defined]
SENDS = SendLog.__table__  # type: ignore[attr-defined]
S = CampaignStatus
T = TypeVar("T")
BUSY_TIMEOUT_MS = 10_000
INTERRUPTED = "interrupted: the process running it stopped"
# A campaign's settings a clone takes (its recipients come fresh; the rest is new).
CLONED_SETTINGS = (
    "template_text",
    "variants",
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
    "check_numbers",
)
# A send window or its days given as this in an edit: none (any time, every day).
ANY_TIME = ""
# What a status change is recorded as in the history, unless the caller says otherwise.
KIND_OF = {
    S.SCHEDULED: Kind.SCHEDULED,
    S.RUNNING: Kind.CLAIMED,
    S.PAUSED: Kind.PAUSED,
    S.COMPLETED: Kind.COMPLETED,
    S.FAILED: Kind.FAILED,
    S.CANCELLED: Kind.CANCELLED,
    S.DELETING: Kind.DELETING,
}


class _RolledBack(Exception):
    """Leaves a transaction by rolling it back (Store.warm_up)."""


class StoreError(UserError):
    pass


class Busy(StoreError):
    """A write asked not to wait (`write(wait=False)`) found the database locked."""


class ClaimLost(StoreError):
    """Another process has (or is taking) this campaign or its WAHA session. A scheduler
    that lost such a race simply moves on; an operator's resume shows the message."""


class NotFound(UserError):
    pass


@dataclass(frozen=True)
class SendCount:
    """A send counted against its number's caps (`Store.commit_progress`): the number
    (me.id's digits) and when, on the sender's clock."""

    number: str
    at: datetime


class CapReached(Exception):
    """`Store.commit_progress` did not mark the recipient `sending`: its number reached a
    cap. Everything else the transaction held (outcomes, ids, the lease) was committed."""

    def __init__(self, campaign: Campaign, hit: CapHit) -> None:
        super().__init__(hit.reason())
        self.campaign, self.hit = campaign, hit


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


@dataclass(frozen=True)
class OptOutEntry:
    """A number to add to the opt-out list (models.OptOut)."""

    phone: str  # as phones.normalise_phone gives it
    source: str  # reply, import, hand
    reason: str | None = None
    campaign_id: int | None = None


@dataclass(frozen=True)
class CampaignPage:
    """A page of the dashboard's campaign rows (Store.campaign_page)."""

    rows: Sequence[Any]  # in the order asked for
    offset: int  # where the page starts among the campaigns matching the filter
    count: int  # how many campaigns match the filter
    found: bool  # the campaign asked to be `around` matches, and is on this page


@dataclass(frozen=True)
class Outcome:
    """What became of one recipient: written by `Store.commit_progress`."""

    recipient_id: int
    position: int
    status: RecipientStatus
    message_id: str | None = None
    error: str | None = None
    attempted: bool = False  # counts one more attempt (when no `sending` mark counted it)


@dataclass(frozen=True)
class Claimed:
    """What `Store.claim_and_read` did in its one transaction."""

    campaign: Campaign
    recipients: list[Recipient]  # from its next_index, as read before `reserved` was stored
    reserved: tuple[int, str] | None  # (recipient id, message id) stored, if any


_COUNTER = {
    RecipientStatus.SENT: "sent",
    RecipientStatus.FAILED: "failed",
    RecipientStatus.UNKNOWN: "unknown",
    RecipientStatus.SKIPPED: "skipped",
}


def _progress_params(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """What a run of outcomes moves in its campaign: counters, next_index (None: kept),
    the failure streak (reset by a sent message) and the last error. A skipped recipient
    (opted out, not on WhatsApp) was no send: it neither breaks nor lengthens the streak,
    and its reason is no error."""
    counts = {name: 0 for name in _COUNTER.values()}
    streak, any_sent = 0, False
    for o in outcomes:
        counts[_COUNTER[o.status]] += 1
        if o.status == RecipientStatus.SKIPPED:
            continue
        any_sent = any_sent or o.status == RecipientStatus.SENT
        streak = 0 if o.status == RecipientStatus.SENT else streak + 1
    errors = [o.error for o in outcomes if o.error and o.status != RecipientStatus.SKIPPED]
    return {
        "b_sent": counts["sent"],
        "b_failed": counts["failed"],
        "b_unknown": counts["unknown"],
        "b_skipped": counts["skipped"],
        "b_next": outcomes[-1].position + 1 if outcomes else None,
        "b_reset": any_sent,
        "b_streak": streak,
        "b_error": errors[-1] if errors else None,
    }


# The runner's statements, built once: building and keying a statement per call cost
# more than running it.
# Ids per IN (...): far below every driver's limit on bound parameters.
_IN_CHUNK = 500
_STATUS_AND_OWNER = sa.select(C.c.status, C.c.lease_owner).where(C.c.id == sa.bindparam("cid"))
_RESERVE_ID = (
    sa.update(R)
    .where(R.c.id == sa.bindparam("b_id"))
    .values(
        message_id=sa.bindparam("b_mid"),
        wa_id=sa.bindparam("b_wa"),
        # Its text, picked: a text once stored is the one every (re-)send carries.
        text=sa.func.coalesce(R.c.text, sa.bindparam("b_text", type_=sa.String)),
        # The session it goes from, fixed at its first attempt (a multi-session campaign's).
        session=sa.func.coalesce(R.c.session, sa.bindparam("b_session", type_=sa.String)),
    )
)
_STORE_TEXT = (
    sa.update(R)
    .where(R.c.id == sa.bindparam("b_id"), R.c.text.is_(None))
    .values(text=sa.bindparam("b_text", type_=sa.String))
)
_RECORD_OUTCOME = (
    sa.update(R)
    .where(R.c.id == sa.bindparam("b_id"))
    .values(
        status=sa.bindparam("b_status"),
        message_id=sa.func.coalesce(sa.bindparam("b_mid", type_=sa.String), R.c.message_id),
        wa_id=sa.func.coalesce(sa.bindparam("b_wa", type_=sa.String), R.c.wa_id),
        error=sa.bindparam("b_error", type_=sa.String),
        sent_at=sa.bindparam("b_sent_at", type_=R.c.sent_at.type),
        attempts=R.c.attempts + sa.bindparam("b_tries", type_=sa.Integer),
        # The session it goes from, fixed at its first attempt (a multi-session campaign's).
        session=sa.func.coalesce(R.c.session, sa.bindparam("b_session", type_=sa.String)),
    )
)
_ADVANCE_VALUES: dict[str, Any] = dict(
    sent=C.c.sent + sa.bindparam("b_sent", type_=sa.Integer),
    failed=C.c.failed + sa.bindparam("b_failed", type_=sa.Integer),
    unknown=C.c.unknown + sa.bindparam("b_unknown", type_=sa.Integer),
    skipped=C.c.skipped + sa.bindparam("b_skipped", type_=sa.Integer),
    # Only forward while it runs: the runs of a campaign's several sessions write theirs
    # in whichever order their transactions commit.
    next_index=sa.case(
        (sa.bindparam("b_next", type_=sa.Integer) > C.c.next_index, sa.bindparam("b_next")),
        else_=C.c.next_index,
    ),
    consecutive_failures=sa.case(
        (sa.bindparam("b_reset", type_=sa.Boolean), sa.bindparam("b_streak", type_=sa.Integer)),
        else_=C.c.consecutive_failures + sa.bindparam("b_streak", type_=sa.Integer),
    ),
    last_error=sa.func.coalesce(sa.bindparam("b_error", type_=sa.String), C.c.last_error),
    lease_until=sa.case(
        (
            C.c.lease_owner == sa.bindparam("b_owner", type_=sa.String),
            sa.bindparam("b_lease", type_=C.c.lease_until.type),
        ),
        else_=C.c.lease_until,
    ),
)
_ADVANCE = sa.update(C).where(C.c.id == sa.bindparam("b_cid")).returning(*C.c)
_ADVANCE_CAMPAIGN = _ADVANCE.values(**_ADVANCE_VALUES)
# updated_at ("last change": a sort, with its index) follows a run's progress at most once
# a second (TOUCH_EVERY): with every message it was one index write more per message.
_ADVANCE_AND_TOUCH = _ADVANCE.values(
    updated_at=sa.bindparam("b_now", type_=C.c.updated_at.type), **_ADVANCE_VALUES
)
TOUCH_EVERY = 1.0  # seconds
# send_log rows older than this are deleted (a day's count never looks further back), at
# most once every PRUNE_EVERY seconds per process.
SEND_LOG_KEEP = timedelta(days=2)
PRUNE_EVERY = 3600.0

_MARK_SENDING = (
    sa.update(R)
    .where(R.c.id == sa.bindparam("b_id"))
    .values(
        status=RecipientStatus.SENDING,
        attempts=R.c.attempts + 1,
        message_id=sa.bindparam("b_mid", type_=sa.String),
        wa_id=sa.bindparam("b_wa", type_=sa.String),
        error=None,
        text=sa.func.coalesce(R.c.text, sa.bindparam("b_text", type_=sa.String)),
        # The session it goes from, fixed at its first attempt (a multi-session campaign's).
        session=sa.func.coalesce(R.c.session, sa.bindparam("b_session", type_=sa.String)),
    )
)


# Rows come straight from our own tables, typed by their columns: validating them again
# cost 4-7 times as much (~40 µs a recipient, ~100 µs a campaign), on the path of a resume's
# first message (its claim reads 32 recipients) and of every batch a run reads.
def _campaign(row: Any) -> Campaign:
    return Campaign.model_construct(**row._mapping)


def _recipient(row: Any) -> Recipient:
    return Recipient.model_construct(**row._mapping)


def parse_target(target: str | os.PathLike[str]) -> URL:
    """A bare path is a SQLite file; anything with "://" is a SQLAlchemy URL."""
    text = os.fspath(target)
    if "://" not in text:
        return URL.create("sqlite", database=text)
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise StoreError(f"database URL {mask_url(text)} is not a valid URL") from None
    if url.get_backend_name() == "postgresql":
        # psycopg (v3) is the driver this package installs; postgresql:// alone means psycopg2.
        return url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return URL.create("sqlite", database=url.database)
    raise StoreError(
        f"database {url.render_as_string(hide_password=True)} is not supported: give a "
        "SQLite file path or a postgresql+psycopg://user:password@host/dbname URL"
    )


class Store:
    def __init__(
        self, path: str | os.PathLike[str], *, busy_timeout: float = BUSY_TIMEOUT_MS / 1000
    ) -> None:
        """`busy_timeout`: how long a write waits for a lock another process holds before
        it fails with StoreError (seconds)."""
        self.url = parse_target(path)
        self._busy_ms = max(int(busy_timeout * 1000), 1)
        self._status_conn: sqlite3.Connection | None = None  # status_and_owner's, SQLite
        self._nowait_engine: Engine | None = None  # write(wait=False)'s, SQLite
        self._touched: dict[int, float] = {}  # campaign id -> when its run last moved updated_at
        self._pruned = -PRUNE_EVERY  # when this process last pruned send_log (monotonic)
        # This process's writes that can wait (WAHA's events) hold off while an operator's
        # action is on its way to its write (a resume's claim), and say when they end.
        self._gate = threading.Condition()
        self._urgent = 0  # operators' actions on their way to a write
        self._background = 0  # background writes under way
        self.is_postgres = self.url.get_backend_name() == "postgresql"
        # Where the data is, for messages: a file path, or the URL without its password.
        self.location = (
            self.url.render_as_string(hide_password=True)
            if self.is_postgres
            else str(self.url.database)
        )
        if self.is_postgres:
            self.path: Path | None = None
            self.engine = self._make_pg_engine()
            self.read_engine = self._make_pg_engine()
        else:
            self.path = Path(str(self.url.database))
            self._prepare_file()
            url = f"sqlite:///{self.path}"
            self.engine = self._make_engine(url, "BEGIN IMMEDIATE", self._busy_ms)
            self.read_engine = self._make_engine(url, "BEGIN", self._busy_ms)
        self._init_schema()

    def __repr__(self) -> str:
        return f"Store({self.location!r})"

    @property
    def target(self) -> str:
        """What opens this database again (the URL with its password: never print it)."""
        if self.path is not None:
            return str(self.path)
        return self.url.render_as_string(hide_password=False)

    # -- opening -----------------------------------------------------------------------

    def _make_pg_engine(self) -> Engine:
        return sa.create_engine(
            self.url,
            # Explicit, whatever the server's default: the locks above assume it.
            isolation_level="READ COMMITTED",
            pool_pre_ping=True,
            connect_args={
                "connect_timeout": 10,
                "application_name": "waha-tui",
                # Like SQLite's busy_timeout: a lock held too long is an error, not a hang.
                "options": f"-c lock_timeout={self._busy_ms}",
            },
        )

    def _prepare_file(self) -> None:
        p = self.path
        assert p is not None
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
    def _make_engine(url: str, begin: str, busy_ms: int) -> Engine:
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": busy_ms / 1000}
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout = {busy_ms}")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.execute("PRAGMA synchronous = NORMAL")
            _switch_to_wal(cur, busy_ms)
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql(begin)

        return engine

    def _init_schema(self) -> None:
        loc = self.location
        try:
            # A read (BEGIN, not BEGIN IMMEDIATE): opening a database to look at it must
            # not wait for another process's write lock.
            with self.read_engine.connect() as conn:
                mode = (
                    None
                    if self.is_postgres
                    else conn.exec_driver_sql("PRAGMA journal_mode").scalar()
                )
                tables = set(sa.inspect(conn).get_table_names())
        except DatabaseError as exc:
            if _busy(exc):
                raise StoreError(self._busy_message()) from None
            if self.is_postgres:
                raise StoreError(f"cannot open database {loc}: {self._reason(exc)}") from None
            raise StoreError(f"{loc} is not a waha-tui database ({self._reason(exc)})") from None
        if not self.is_postgres and mode != "wal":
            raise StoreError(f"{loc}: could not switch the database to WAL mode")
        if tables and "meta" not in tables:
            kind = "PostgreSQL database" if self.is_postgres else "SQLite file"
            raise StoreError(f"{loc} is a {kind} but not a waha-tui database")
        if "meta" in tables:
            with self.read() as conn:
                version = self._schema_version(conn)
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{loc} was written by a newer waha-tui (schema {version}; this "
                    f"version knows {SCHEMA_VERSION}): upgrade waha-tui to open it"
                )
            if version < SCHEMA_VERSION:
                self._migrate()
            self._ensure_sort_indexes()
            return
        with self.write() as conn:
            # Another process may have created it since we looked: under the write lock
            # (SQLite) or the schema lock (PostgreSQL) this second look is final.
            self._pg_lock(conn, "waha-tui:schema")
            if "meta" not in sa.inspect(conn).get_table_names():
                SQLModel.metadata.create_all(conn)
                conn.execute(
                    sa.insert(Meta).values(key="schema_version", value=str(SCHEMA_VERSION))
                )
                self._create_sort_indexes(conn)
        if self.path is not None:
            os.chmod(self.path, stat.S_IRUSR | stat.S_IWUSR)

    def _schema_version(self, conn: Connection) -> int:
        found = conn.execute(
            sa.select(col(Meta.value)).where(col(Meta.key) == "schema_version")
        ).scalar()
        try:
            return int(found or 0)
        except ValueError:
            raise StoreError(
                f"{self.location}: its schema_version is {found!r}, not a number: the "
                "database is damaged, or was not written by waha-tui"
            ) from None

    def _migrate(self) -> None:
        """Bring an older schema up to SCHEMA_VERSION in one transaction; several processes
        opening the same old database at once migrate it once (the second look is final)."""
        with self.write() as conn:
            self._pg_lock(conn, "waha-tui:schema")
            version = self._schema_version(conn)
            for step in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[step](conn)
            if version < SCHEMA_VERSION:
                conn.execute(
                    sa.update(Meta)
                    .where(col(Meta.key) == "schema_version")
                    .values(value=str(SCHEMA_VERSION))
                )

    def _missing_sort_indexes(self, conn: Connection) -> list[str]:
        if self.is_postgres:
            query = (
                "SELECT indexname FROM pg_indexes WHERE tablename = 'campaign' "
                "AND schemaname = current_schema()"
            )
        else:
            query = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'campaign'"
        have = set(conn.exec_driver_sql(query).scalars())
        return [n for n in CAMPAIGN_SORTS if n != "id" and _sort_index(n) not in have]

    def _ensure_sort_indexes(self) -> None:
        """The dashboard's sort indexes (models.CAMPAIGN_SORTS), made where missing: by
        name, not by schema version, so adding one needs no migration step. A look first
        (a read): opening a database that has them all takes no write lock."""
        with self.read() as conn:
            missing = self._missing_sort_indexes(conn)
        if missing:
            with self.write() as conn:
                self._pg_lock(conn, "waha-tui:schema")
                self._create_sort_indexes(conn)
            log.info("%s: made the dashboard's sort indexes on %s", self.location, missing)

    def _create_sort_indexes(self, conn: Connection) -> None:
        for name in self._missing_sort_indexes(conn):
            key = f"lower({name})" if name in CASE_FOLDED_SORTS else name
            # NULLS FIRST on PostgreSQL: the order SQLite gives NULLs, which campaign_page
            # asks for on both (SQLite's CREATE INDEX has no such clause).
            nulls = " NULLS FIRST" if self.is_postgres else ""
            conn.exec_driver_sql(
                f"CREATE INDEX IF NOT EXISTS {_sort_index(name)} ON campaign ({key}{nulls}, id)"
            )

    def _pg_lock(self, conn: Connection, key: str) -> None:
        """A transaction-scoped lock on a name, on PostgreSQL. On SQLite every write
        transaction already holds the one write lock (BEGIN IMMEDIATE), which is stronger."""
        if self.is_postgres:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(key))))

    def _reason(self, exc: Exception) -> str:
        # Database passwords never reach a message or a log.
        return hide(_reason(exc), [self.url.password])

    def _error(self, exc: Exception) -> StoreError:
        if _busy(exc):
            return StoreError(self._busy_message())
        return StoreError(f"database {self.location}: {self._reason(exc)}")

    def _busy_message(self) -> str:
        return (
            f"database {self.location} is busy: another process holds its lock "
            f"(waited {self._busy_ms / 1000:g} s); try again"
        )

    def close(self) -> None:
        self.engine.dispose()
        self.read_engine.dispose()
        if self._nowait_engine is not None:
            self._nowait_engine.dispose()
        if self._status_conn is not None:
            self._status_conn.close()
            self._status_conn = None

    @contextmanager
    def write(self, *, wait: bool = True) -> Iterator[Connection]:
        """One write transaction; the log lines of the history it wrote follow its commit.

        wait=False: raise Busy at once, rather than wait, if another connection holds the
        write lock (SQLite; on PostgreSQL always Busy: the caller writes the usual way).
        Its commits never checkpoint the WAL (others' do), so such a write can run in the
        event loop: it costs what its statements cost, and never waits on I/O or a lock."""
        engine = self.engine if wait else self._no_waiting()
        try:
            with engine.begin() as conn:
                told = history.collect(conn)
                yield conn
        except OperationalError as exc:
            if not wait and _busy(exc):
                raise Busy(self._busy_message()) from None
            raise self._error(exc) from None
        history.tell(told)

    @contextmanager
    def urgent(self) -> Iterator[None]:
        """An operator's action on its way to a write (a resume, to its claim): this
        process's background writes do not begin meanwhile (see `background_write`), so
        the action's write finds the lock free. Taken and left in microseconds: the event
        loop may use it."""
        with self._gate:
            self._urgent += 1
        try:
            yield
        finally:
            with self._gate:
                self._urgent -= 1
                self._gate.notify_all()

    @contextmanager
    def background_write(self, hold_off: float) -> Iterator[Connection]:
        """A write that can wait a moment (WAHA's events, from a worker thread): it
        begins once no `urgent` action of this process is on its way, waiting at most
        `hold_off` seconds (the events are written late by that much at worst)."""
        with self._gate:
            if self._urgent:
                self._gate.wait_for(lambda: not self._urgent, hold_off)
            self._background += 1
        try:
            with self.write() as conn:
                yield conn
        finally:
            with self._gate:
                self._background -= 1
                self._gate.notify_all()

    def background_done(self, timeout: float) -> bool:
        """Wait (blocking: from a worker thread) until no background write of this process
        is under way, at most `timeout` seconds: a write that found one holding the lock
        then begins at once, rather than when SQLite's busy handler next looks (it sleeps
        1, 2, 5, 10 ms ... between looks). Whether none is under way."""
        with self._gate:
            return self._gate.wait_for(lambda: not self._background, timeout)

    def _no_waiting(self) -> Engine:
        if self.path is None:
            raise Busy("only a SQLite write can be tried without waiting")
        if self._nowait_engine is None:
            engine = self._make_engine(f"sqlite:///{self.path}", "BEGIN IMMEDIATE", 0)

            @event.listens_for(engine, "connect")
            def _no_checkpoints(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
                dbapi_conn.execute("PRAGMA wal_autocheckpoint = 0")

            self._nowait_engine = engine
        return self._nowait_engine

    @contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            with self.read_engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise self._error(exc) from None

    # -- contact lists -----------------------------------------------------------------

    def create_list(self, name: str, contacts: Sequence[NewRecipient]) -> int:
        now = utcnow()
        try:
            with self.write() as conn:
                list_id = conn.execute(
                    sa.insert(ContactList)
                    .values(name=name, contact_count=len(contacts), created_at=now)
                    .returning(col(ContactList.id))
                ).scalar_one()
                assert list_id is not None  # a primary key (Optional in the model: unsaved rows)
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
                    col(ContactList.name),
                    col(ContactList.contact_count),
                    col(ContactList.created_at),
                ).order_by(col(ContactList.name))
            ).all()
        return [ListInfo(*row) for row in rows]

    def list_contacts(self, name: str) -> list[NewRecipient]:
        with self.read() as conn:
            list_id = self._list_id(conn, name)
            rows = conn.execute(
                sa.select(
                    col(Contact.phone),
                    col(Contact.chat_id),
                    col(Contact.name),
                    col(Contact.variables),
                )
                .where(col(Contact.list_id) == list_id)
                .order_by(col(Contact.position))
            ).all()
        return [NewRecipient(*row) for row in rows]

    def delete_list(self, name: str) -> int:
        """Campaigns hold their own copy of the recipients, so deleting a list is safe."""
        with self.write() as conn:
            list_id = self._list_id(conn, name)
            conn.execute(sa.delete(Contact).where(col(Contact.list_id) == list_id))
            conn.execute(sa.delete(ContactList).where(col(ContactList.id) == list_id))
        return list_id

    @staticmethod
    def _list_id(conn: Connection, name: str) -> int:
        list_id = conn.execute(
            sa.select(col(ContactList.id)).where(col(ContactList.name) == name)
        ).scalar()
        if list_id is None:
            raise NotFound(f"no contact list named '{name}'")
        return list_id

    # -- templates ---------------------------------------------------------------------

    def add_template(self, name: str, text: str) -> int:
        now = utcnow()
        try:
            with self.write() as conn:
                template_id = conn.execute(
                    sa.insert(Template)
                    .values(name=name, text=text, created_at=now, updated_at=now)
                    .returning(col(Template.id))
                ).scalar_one()
                assert template_id is not None  # a primary key (Optional in the model)
                return template_id
        except IntegrityError:
            raise StoreError(f"a template named '{name}' already exists") from None

    def templates(self) -> list[Template]:
        with self.read() as conn:
            rows = conn.execute(sa.select(Template).order_by(col(Template.name))).all()
        return [Template.model_validate(dict(r._mapping)) for r in rows]

    def update_template(self, name: str, text: str) -> None:
        """A template's new text; campaigns made from it keep the text they copied."""
        with self.write() as conn:
            changed = conn.execute(
                sa.update(Template)
                .where(col(Template.name) == name)
                .values(text=text, updated_at=utcnow())
            ).rowcount
        if not changed:
            raise NotFound(f"no template named '{name}'")

    def delete_template(self, name: str) -> None:
        """Campaigns copied the text when they were created, so none is affected."""
        with self.write() as conn:
            gone = conn.execute(sa.delete(Template).where(col(Template.name) == name)).rowcount
        if not gone:
            raise NotFound(f"no template named '{name}'")

    def get_template(self, name: str) -> Template:
        with self.read() as conn:
            row = conn.execute(sa.select(Template).where(col(Template.name) == name)).first()
        if row is None:
            raise NotFound(f"no template named '{name}'")
        return Template.model_validate(dict(row._mapping))

    # -- campaigns ---------------------------------------------------------------------

    def create_campaign(
        self,
        campaign: Campaign,
        recipients: Iterable[NewRecipient],
        image: Media | None = None,
    ) -> int:
        """The campaign, its recipients and its image's bytes, in one transaction."""
        now = utcnow()
        values = campaign.model_dump(exclude={"id"})
        values.update(created_at=now, updated_at=now, status=S.SCHEDULED, next_index=0)
        values["created_by"] = Actor.here().who
        with self.write() as conn:
            if image is not None:
                values.update(image_sha256=self._store_media(conn, image, now))
            cid: int = conn.execute(sa.insert(C).values(**values).returning(C.c.id)).scalar_one()
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
            source = f" from {campaign.list_name}" if campaign.list_name else ""
            count = f"{total} recipient{'' if total == 1 else 's'}"
            detail = f"{count}{source}, on {sessions_named(campaign)}"
            history.record(conn, cid, Entry(Kind.CREATED, detail), at=now)
        return cid

    def _store_media(self, conn: Connection, image: Media, now: datetime) -> str:
        """Keep the image's bytes once, by their hash (a second campaign with the same image
        shares the row; two hosts storing it at once are both right)."""
        sha = image.sha256
        self._lock_media(conn, sha)  # not dropped by a delete meanwhile (drop_campaign)
        row = {
            "sha256": sha,
            "mimetype": image.mimetype,
            "filename": image.filename,
            "size": len(image.data),
            "data": image.data,
            "created_at": now,
        }
        if conn.dialect.name == "postgresql":
            conn.execute(
                pg_insert(M).values(**row).on_conflict_do_nothing(index_elements=["sha256"])
            )
        else:
            conn.execute(
                sqlite_insert(M).values(**row).on_conflict_do_nothing(index_elements=["sha256"])
            )
        return sha

    def media(self, sha256: str) -> Media | None:
        """The image stored under `sha256`, or None."""
        with self.read() as conn:
            row = conn.execute(sa.select(M).where(M.c.sha256 == sha256)).first()
        if row is None:
            return None
        return Media(bytes(row.data), row.mimetype, row.filename)

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

    # The columns the dashboard shows (and reads under the cursor), nothing more.
    DASHBOARD_COLUMNS = (
        "id",
        "name",
        "session",
        "sessions",  # several: the row, the estimate and a resume's session check
        "status",
        "scheduled_at",
        "total",
        "sent",
        "failed",
        "unknown",
        "next_index",
        "pause_reason",
        "waiting_for",
        "waiting_since",
        "last_error",
        "lease_owner",
        "updated_at",
        # What WhatsApp said after the sends.
        "skipped",
        "delivered",
        "read",
        "replied",
        "unconfirmed",
        # For the times and the estimate (pacing.Estimate).
        "created_at",
        "started_at",
        "completed_at",
        "next_send_at",
        "delay_min",
        "delay_max",
        "typing",
        "break_every",
        "break_seconds",
        "break_max",
        "send_window",
        "window_days",
        "timezone",
        # Whether its messages take pre-generated ids (runner.ids.takes_ids): a resume
        # asks for its first one while the campaign is read again.
        "image_path",
        "image_sha256",
    )

    def campaign_page(
        self,
        sort: str = "id",
        descending: bool = True,
        needle: str = "",
        *,
        offset: int = 0,
        limit: int = 100,
        around: int | None = None,
    ) -> CampaignPage:
        """The dashboard's columns of one page of campaigns, sorted by a stored column
        (models.CAMPAIGN_SORTS; ties by id), of those whose name or status contains
        `needle` (any case), read in one transaction with how many match.

        `around`: the page holding this campaign instead of `offset`, if it matches. An
        offset past the end gives the last page. Every sort walks its own index; a page
        nearer the end is read from the end, so the last page costs what the first does.
        NULLs (a campaign not started yet) come first ascending, last descending, on
        SQLite and PostgreSQL alike.
        """
        if sort not in CAMPAIGN_SORTS:
            raise ValueError(f"cannot sort campaigns by {sort!r}")
        columns = [C.c[name] for name in self.DASHBOARD_COLUMNS]
        matching = _matching(needle)
        found = around is None
        with self.read() as conn:
            count = conn.execute(
                sa.select(sa.func.count()).select_from(C).where(*matching)
            ).scalar_one()
            if around is not None:
                anchor = conn.execute(
                    sa.select(_sort_key(sort)).where(C.c.id == around, *matching)
                ).first()
                if anchor is not None:
                    before = conn.execute(
                        sa.select(sa.func.count())
                        .select_from(C)
                        .where(*matching, _before(sort, descending, anchor[0], around))
                    ).scalar_one()
                    offset, found = before // limit * limit, True
            offset = max(0, min(offset, (max(count, 1) - 1) // limit * limit))
            take = max(0, min(limit, count - offset))
            after = count - offset - take
            if after < offset:  # nearer the end: read from the end, in the opposite order
                query = sa.select(*columns).order_by(*_order(sort, not descending))
                rows = list(conn.execute(query.where(*matching).offset(after).limit(take)))
                rows.reverse()
            else:
                query = sa.select(*columns).order_by(*_order(sort, descending))
                rows = list(conn.execute(query.where(*matching).offset(offset).limit(limit)))
        return CampaignPage(rows, offset, count, found)

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

    def recipient_window(
        self,
        campaign_id: int,
        *,
        around: int,
        before: int,
        limit: int,
        status: str | None = None,
    ) -> tuple[list[Recipient], int | None]:
        """At most `limit` recipients (only those of `status`, if given) in sending order:
        up to `before` of them before position `around`, the rest from it on (more before
        when fewer follow); and, with a status, how many of the campaign's have it (None
        without: the campaign's total says). One read, whatever the campaign's size."""
        where = [R.c.campaign_id == campaign_id]
        if status:
            where.append(R.c.status == status)
        earlier = sa.select(R).where(*where, R.c.position < around).order_by(R.c.position.desc())
        later = sa.select(R).where(*where, R.c.position >= around).order_by(R.c.position)
        with self.read() as conn:
            after = conn.execute(later.limit(limit)).all()
            taken = max(limit - len(after), min(before, limit))
            ahead = conn.execute(earlier.limit(taken)).all() if taken else []
            count = None
            if status:
                count = conn.execute(
                    sa.select(sa.func.count()).select_from(R).where(*where)
                ).scalar_one()
        kept_after = after[: limit - len(ahead)]
        return [_recipient(r) for r in (*reversed(ahead), *kept_after)], count

    def events(self, campaign_id: int) -> list[CampaignEventRow]:
        """A campaign's history, oldest first (in the order the database wrote it, whatever
        the clocks of the hosts that wrote it say)."""
        with self.read() as conn:
            rows = conn.execute(
                sa.select(E).where(E.c.campaign_id == campaign_id).order_by(E.c.id)
            ).all()
        return [CampaignEventRow.model_validate(dict(r._mapping)) for r in rows]

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
        expect: Iterable[str] | None = None,
        entry: Entry | None = None,
        **fields: Any,
    ) -> Campaign:
        """Move a campaign to `new`, refusing anything the transition table forbids; the
        history records it as `entry` (by default: the new status, and a pause's reason)."""
        with self.write() as conn:
            return self.transition_in(conn, campaign_id, new, expect=expect, entry=entry, **fields)

    def transition_in(
        self,
        conn: Connection,
        campaign_id: int,
        new: CampaignStatus,
        *,
        expect: Iterable[str] | None = None,
        entry: Entry | None = None,
        **fields: Any,
    ) -> Campaign:
        """`transition`, inside a write transaction the caller holds (`write()`), for a
        change that must commit with other writes (delivery.apply's pause)."""
        if new == S.DELETING:
            raise ValueError("a deletion starts with mark_deleting, never a plain transition")
        camp = self._locked_campaign(conn, campaign_id)
        if expect is not None and camp.status not in set(expect):
            raise TransitionError(campaign_id, camp.status, new)
        check_transition(campaign_id, camp.status, new)
        now = utcnow()
        values = {"status": new, "updated_at": now, **fields}
        conn.execute(sa.update(C).where(C.c.id == campaign_id).values(**values))
        entry = entry or Entry(KIND_OF[new], fields.get("pause_reason"))
        history.record(conn, campaign_id, entry, at=now)
        return _campaign(conn.execute(sa.select(C).where(C.c.id == campaign_id)).one())

    def claim(self, campaign_id: int, owner: str, lease_seconds: float) -> Campaign:
        """Atomically take a Scheduled or Paused campaign and make it Running for `owner`.

        Refusals are ClaimLost: another process has the campaign or its WAHA session."""
        with self.write() as conn:
            return self._claim(conn, campaign_id, owner, lease_seconds)

    def claim_and_read(
        self,
        campaign_id: int,
        owner: str,
        lease_seconds: float,
        *,
        read: int,
        reserve: Callable[[Campaign, list[Recipient]], tuple[int, str, str | None] | None]
        | None = None,
        wait: bool = True,
    ) -> Claimed:
        """`claim`, and in the same transaction the first `read` recipients from its
        next_index, and a pre-generated message id stored for the recipient `reserve`
        picks from them (recipient id, message id, its text if none is stored yet; None:
        none), so a run can send its first message with no transaction of its own before
        it (the runner's rules say which recipient may take one: `reserve` is the
        runner's). `wait`: see `write`."""
        with self.write(wait=wait) as conn:
            camp = self._claim(conn, campaign_id, owner, lease_seconds)
            recipients, pair = self.claim_reads(conn, camp, reserve, read=read)
            return Claimed(camp, recipients, pair)

    def claim_reads(
        self,
        conn: Connection,
        camp: Campaign,
        reserve: Callable[[Campaign, list[Recipient]], tuple[int, str, str | None] | None] | None,
        *,
        read: int = 32,
    ) -> tuple[list[Recipient], tuple[int, str] | None]:
        """In a claim's transaction: its first `read` recipients, and the id stored ahead
        for the one `reserve` picks (with its text, unless one is stored)."""
        rows = conn.execute(
            sa.select(R)
            .where(R.c.campaign_id == camp.id, R.c.position >= camp.next_index)
            .order_by(R.c.position)
            .limit(read)
        ).all()
        recipients = [_recipient(r) for r in rows]
        picked = reserve(camp, recipients) if reserve is not None else None
        if picked is None:
            return recipients, None
        rid, mid, text = picked
        row = {"b_id": rid, "b_mid": mid, "b_wa": bare(mid), "b_text": text, "b_session": None}
        conn.execute(_RESERVE_ID, row)
        return recipients, (rid, mid)

    def warm_up(self) -> None:
        """The statements of a resume's way to its first message (the campaign read, the
        claim and its first recipients, an id stored ahead), run once on a campaign that
        could be resumed, in a transaction rolled back: SQLAlchemy compiles a statement at
        its first run (~30 ms for these), which an operator's first `r` would otherwise
        pay. The write is tried without waiting (a busy database is left alone) and leaves
        nothing: no row, no history, no log line."""
        with self.read() as conn:
            cid = conn.execute(
                sa.select(C.c.id).where(C.c.status.in_((S.PAUSED, S.SCHEDULED))).limit(1)
            ).scalar()
        if cid is None:
            return
        self.get_campaign(cid)

        def touch(camp: Campaign, recipients: list[Recipient]) -> tuple[int, str, None] | None:
            return (recipients[0].id or 0, "warm-up", None) if recipients else None

        with (
            contextlib.suppress(_RolledBack, ClaimLost, Busy, StoreError),
            self.write(wait=not self.path) as conn,
        ):
            self.claim_reads(conn, self._claim(conn, cid, "warm-up", 1.0), touch)
            raise _RolledBack

    def _claim(
        self, conn: Connection, campaign_id: int, owner: str, lease_seconds: float
    ) -> Campaign:
        now = utcnow()
        camp = self._locked_campaign(conn, campaign_id)
        if camp.status == S.RUNNING and camp.lease_until and camp.lease_until > now:
            raise ClaimLost(f"campaign {campaign_id} is already running in another process")
        if camp.status not in (S.SCHEDULED, S.PAUSED):
            raise ClaimLost(
                f"campaign {campaign_id} is {described(camp.status)}: only a Scheduled or "
                "Paused campaign can be run"
            )
        mine = names_of(camp.session, camp.sessions)
        for session in sorted(mine):  # one order everywhere: two claims never deadlock
            self._lock_session(conn, session)
        # Few campaigns run at once (one per session at most): their session lists are
        # read whole and compared here, a multi-session campaign's being a JSON list.
        for row in conn.execute(
            sa.select(C.c.id, C.c.session, C.c.sessions).where(
                C.c.status == S.RUNNING, C.c.id != campaign_id, C.c.lease_until > now
            )
        ):
            if shared := overlap(mine, names_of(row.session, row.sessions)):
                raise ClaimLost(
                    f"session '{shared[0]}' is busy sending campaign {row.id}: one campaign "
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
                ack_errors=0,  # the operator resumed: ERROR acks count afresh
                lease_owner=owner,
                lease_until=now + timedelta(seconds=lease_seconds),
                waiting_for=None,
                waiting_since=None,
                updated_at=now,
            )
        )
        # Only an operator's resume claims a Paused campaign; runners take Scheduled ones.
        kind = Kind.RESUMED if camp.status == S.PAUSED else Kind.CLAIMED
        detail = f"on {sessions_named(camp)}, from recipient {camp.next_index + 1} of {camp.total}"
        history.record(conn, campaign_id, Entry(kind, detail), at=now)
        return _campaign(conn.execute(sa.select(C).where(C.c.id == campaign_id)).one())

    def _lock_session(self, conn: Connection, session: str) -> None:
        """Serialise claims on one WAHA session across every host.

        The "is the session busy?" check reads other campaigns' rows, which FOR UPDATE on
        our own row does not protect: at READ COMMITTED two hosts claiming two campaigns of
        one session would both see it free. An advisory lock on the session's name, held to
        the end of the transaction, makes the second claim wait for the first to commit and
        then see its Running row. (SQLite: BEGIN IMMEDIATE already serialised them.) A hash
        collision between two names only makes unrelated claims wait a moment.
        """
        self._pg_lock(conn, f"waha-session:{session}")

    def heartbeat(
        self, campaign_id: int, owner: str, lease_seconds: float
    ) -> tuple[str, str | None]:
        """Renew the lease; returns the status and the lease's owner, so the runner sees a
        pause set elsewhere, or its lease taken over."""
        seen = self.renew_leases(owner, [campaign_id], lease_seconds)
        if campaign_id not in seen:
            raise NotFound(f"no campaign with id {campaign_id}")
        return seen[campaign_id]

    def renew_leases(
        self, owner: str, campaign_ids: Sequence[int], lease_seconds: float
    ) -> dict[int, tuple[str, str | None]]:
        """Renew every lease `owner` holds among these campaigns, in one transaction, and
        read back each one's status and lease owner in it: one process's heartbeat for all
        its runs, each of which sees a pause set elsewhere, or its lease taken over. A
        campaign missing from the table is missing from the answer."""
        now = utcnow()
        until = now + timedelta(seconds=lease_seconds)
        seen: dict[int, tuple[str, str | None]] = {}
        with self.write() as conn:
            for part in chunks(sorted(campaign_ids), _IN_CHUNK):
                conn.execute(
                    sa.update(C)
                    .where(C.c.id.in_(part), C.c.lease_owner == owner)
                    .values(lease_until=until)
                )
                rows = conn.execute(
                    sa.select(C.c.id, C.c.status, C.c.lease_owner).where(C.c.id.in_(part))
                )
                seen.update((row.id, (row.status, row.lease_owner)) for row in rows)
        return seen

    def leases_of(self, campaign_ids: Sequence[int]) -> dict[int, tuple[str, str | None]]:
        """Each campaign's status and lease owner: a read, no lock taken (on SQLite through
        the plain connection `status_and_owner` uses, so call it from one thread)."""
        seen: dict[int, tuple[str, str | None]] = {}
        for part in chunks(sorted(campaign_ids), _IN_CHUNK):
            if self.path is None:
                with self.read() as conn:
                    rows = conn.execute(
                        sa.select(C.c.id, C.c.status, C.c.lease_owner).where(C.c.id.in_(part))
                    ).all()
            else:
                marks = ", ".join("?" * len(part))
                rows = self._plain_read(
                    f"SELECT id, status, lease_owner FROM campaign WHERE id IN ({marks})",
                    tuple(part),
                )
            seen.update((int(row[0]), (str(row[1]), row[2])) for row in rows)
        return seen

    def status_and_owner(self, campaign_id: int) -> tuple[str, str | None]:
        """The campaign's status and lease owner: a read, no lock taken (the runner asks
        right before each send that has no transaction of its own). On SQLite through a
        plain connection of its own: one statement in autocommit reads a WAL snapshot in
        4 µs, where a SQLAlchemy transaction took 100 µs, a few % of the runner's speed."""
        if self.path is None:
            with self.read() as conn:
                row = conn.execute(_STATUS_AND_OWNER, {"cid": campaign_id}).first()
            if row is None:
                raise NotFound(f"no campaign with id {campaign_id}")
            return row.status, row.lease_owner
        found = self._plain_read(
            "SELECT status, lease_owner FROM campaign WHERE id = ?", (campaign_id,)
        )
        if not found:
            raise NotFound(f"no campaign with id {campaign_id}")
        return str(found[0][0]), found[0][1]

    def _plain_read(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        """One statement on SQLite's plain autocommit connection (see status_and_owner)."""
        assert self.path is not None
        try:
            if self._status_conn is None:
                self._status_conn = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False
                )
                self._status_conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            return self._status_conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"database {self.location}: {exc}") from None

    @property
    def reads_block(self) -> bool:
        """Whether a read may wait on the network (PostgreSQL) rather than only on a local
        file read that no writer blocks (SQLite in WAL mode)."""
        return self.is_postgres

    def set_waiting(self, campaign_id: int, owner: str, waiting_for: str | None) -> None:
        """What this owner's run is waiting for (None: nothing any more), for every reader."""
        now = utcnow()
        with self.write() as conn:
            changed = conn.execute(
                sa.update(C)
                .where(C.c.id == campaign_id, C.c.lease_owner == owner)
                .values(
                    waiting_for=waiting_for,
                    waiting_since=now if waiting_for else None,
                    updated_at=now,
                )
            ).rowcount
            if changed and waiting_for:
                history.record(conn, campaign_id, Entry(Kind.WAITING, waiting_for), at=now)

    def set_next_send(self, campaign_id: int, owner: str, at: datetime) -> None:
        """When this owner's run sends its next message: every host's dashboard counts
        down to it."""
        with self.write() as conn:
            conn.execute(
                sa.update(C)
                .where(C.c.id == campaign_id, C.c.lease_owner == owner)
                .values(next_send_at=at, updated_at=utcnow())
            )

    def mark_sending(
        self,
        recipient_id: int,
        message_id: str | None,
        text: str | None = None,
        session: str | None = None,
    ) -> None:
        """`sending` with its id (and its text, unless one is stored; and its session,
        unless one is): it may go out."""
        with self.write() as conn:
            conn.execute(
                _MARK_SENDING,
                {
                    "b_id": recipient_id,
                    "b_mid": message_id,
                    "b_wa": bare_or_none(message_id),
                    "b_text": text,
                    "b_session": session,
                },
            )

    def set_recipient_pending(
        self, recipient_id: int, error: str | None = None, *, attempted: bool = False
    ) -> None:
        """The send surely did not go out (refused before WAHA accepted it). Its message id
        is dropped: a stored id on a pending recipient means "may have been sent".
        `attempted` counts the refused attempt when no `sending` mark counted it."""
        with self.write() as conn:
            conn.execute(
                sa.update(R)
                .where(R.c.id == recipient_id)
                .values(
                    status=RecipientStatus.PENDING,
                    error=error,
                    message_id=None,
                    wa_id=None,
                    attempts=R.c.attempts + (1 if attempted else 0),
                )
            )

    def commit_progress(
        self,
        campaign_id: int,
        outcomes: Sequence[Outcome],
        *,
        owner: str,
        lease_seconds: float,
        reserve: Sequence[tuple[int, str]] = (),
        sending: tuple[int, str | None] | None = None,
        count: SendCount | None = None,
        texts: Mapping[int, str] | None = None,
        session: str | None = None,
        next_index: int | None = None,
    ) -> Campaign:
        """One transaction: recipients' outcomes (in position order), the counters,
        next_index, the lease; and pre-generated message ids stored for the recipients
        about to be sent (`reserve`: recipient id, message id), so each id is durable
        before its message leaves; and `sending` (recipient id, message id): that
        recipient marked `sending`, only while the campaign is Running for `owner`.
        Returns the campaign as it now is: a status other than Running, or another
        lease owner, means it was paused, cancelled or taken over elsewhere, and then
        nothing was marked and nothing may be sent. `texts` (recipient id -> text): the
        texts picked for those recipients, stored (unless one already is) in the same
        statement as their id or mark, so each is durable before its message leaves.

        `count`: the number the messages go from. The `sending` mark is then a send
        reserved from that number: checked against its caps and counted in send_log here,
        under the number's lock, so processes and hosts sharing the database never exceed
        a cap together; a cap reached leaves the recipient unmarked and raises CapReached
        once the rest is committed. Outcomes of messages sent with no mark of their own
        (their ids stored ahead: `attempted`) are counted as they are written.

        A run of one session of a campaign with several (runner/lanes.py): `session` is
        stored on the recipients it marks, reserves or settles (unless one already is),
        and `next_index` is the campaign's, counted over all its sessions' runs (by
        default: after the last outcome's position)."""
        now = utcnow()
        progress = _progress_params(outcomes)
        if next_index is not None:
            progress["b_next"] = next_index
        capped: CapHit | None = None
        texts = texts or {}
        with self.write() as conn:
            if reserve:
                conn.execute(
                    _RESERVE_ID,
                    [
                        {
                            "b_id": rid,
                            "b_mid": mid,
                            "b_wa": bare(mid),
                            "b_text": texts.get(rid),
                            "b_session": session,
                        }
                        for rid, mid in reserve
                    ],
                )
            if outcomes:
                conn.execute(
                    _RECORD_OUTCOME,
                    [
                        {
                            "b_id": o.recipient_id,
                            "b_status": o.status,
                            "b_mid": o.message_id,
                            "b_wa": bare_or_none(o.message_id),
                            "b_error": o.error,
                            "b_sent_at": now if o.status == RecipientStatus.SENT else None,
                            "b_tries": 1 if o.attempted else 0,
                            "b_session": session,
                        }
                        for o in outcomes
                    ],
                )
            last = self._touched.get(campaign_id)
            touch = last is None or time.monotonic() - last >= TOUCH_EVERY
            row = conn.execute(
                _ADVANCE_AND_TOUCH if touch else _ADVANCE_CAMPAIGN,
                {
                    "b_cid": campaign_id,
                    "b_owner": owner,
                    "b_now": now,
                    "b_lease": now + timedelta(seconds=lease_seconds),
                    **progress,
                },
            ).one()
            if count is not None:
                sent = sum(
                    1
                    for o in outcomes
                    if o.attempted and o.status in (RecipientStatus.SENT, RecipientStatus.UNKNOWN)
                )
                self._log_sends(conn, count, campaign_id, sent)
            if sending is not None and row.status == S.RUNNING and row.lease_owner == owner:
                if count is not None:
                    capped = self._reserve_send(conn, count, campaign_id)
                if capped is None:
                    rid, mid = sending
                    conn.execute(
                        _MARK_SENDING,
                        {
                            "b_id": rid,
                            "b_mid": mid,
                            "b_wa": bare_or_none(mid),
                            "b_text": texts.get(rid),
                            "b_session": session,
                        },
                    )
            marked = {rid for rid, _ in reserve} | ({sending[0]} if sending else set())
            if rest := [
                {"b_id": rid, "b_text": t} for rid, t in texts.items() if rid not in marked
            ]:
                conn.execute(_STORE_TEXT, rest)
        if touch:  # committed
            self._touched[campaign_id] = time.monotonic()
        # The row comes straight from the database: no need to validate it again.
        camp = Campaign.model_construct(**row._mapping)
        if capped is not None:
            raise CapReached(camp, capped)
        return camp

    # -- per-number caps ---------------------------------------------------------------

    def _reserve_send(self, conn: Connection, count: SendCount, campaign_id: int) -> CapHit | None:
        """One send from `count.number`, if its caps allow it now: counted (a send_log
        row), or the cap it reached. The number's lock (PostgreSQL; SQLite's write lock
        already holds) makes the count and the check one step across every host."""
        self._pg_lock(conn, f"waha-number:{count.number}")
        found = conn.execute(sa.select(CAPS).where(CAPS.c.number == count.number)).first()
        if found is not None:
            caps = caps_of(found)
            in_hour, in_day = self._sends_in(conn, count.number, caps, count.at)
            hit = caps.blocked(count.at, in_hour, in_day, count.number)
            if hit is not None:
                return hit
        self._log_sends(conn, count, campaign_id, 1)
        return None

    def _log_sends(self, conn: Connection, count: SendCount, campaign_id: int, n: int) -> None:
        if n <= 0:
            return
        row = {"number": count.number, "at": count.at, "campaign_id": campaign_id}
        conn.execute(sa.insert(SENDS), [row] * n)
        if time.monotonic() - self._pruned >= PRUNE_EVERY:
            self._pruned = time.monotonic()
            conn.execute(sa.delete(SENDS).where(SENDS.c.at < count.at - SEND_LOG_KEEP))

    @staticmethod
    def _sends_in(conn: Connection, number: str, caps: Caps, at: datetime) -> tuple[int, int]:
        """What `number` sent in the clock hour and the day holding `at` (its caps' zone):
        one range read of the (number, at) index."""
        hour = caps.hour_start(at)
        found = conn.execute(
            sa.select(
                sa.func.coalesce(sa.func.sum(sa.case((SENDS.c.at >= hour, 1), else_=0)), 0),
                sa.func.count(),
            ).where(SENDS.c.number == number, SENDS.c.at >= caps.day_start(at))
        ).one()
        return int(found[0]), int(found[1])

    def set_caps(
        self,
        number: str,
        *,
        per_hour: int | None,
        per_day: int | None,
        zone: str,
        warmup: Sequence[int] | None,
        warmup_start: datetime | None,
    ) -> NumberCaps:
        """A number's caps, replacing any it had (every host's runs obey them from their
        next send)."""
        now = utcnow()
        values = {
            "per_hour": per_hour,
            "per_day": per_day,
            "timezone": zone,
            "warmup": list(warmup) if warmup else None,
            "warmup_start": warmup_start if warmup else None,
            "updated_at": now,
        }
        with self.write() as conn:
            self._pg_lock(conn, f"waha-number:{number}")
            changed = conn.execute(
                sa.update(CAPS).where(CAPS.c.number == number).values(**values)
            ).rowcount
            if not changed:
                conn.execute(sa.insert(CAPS).values(number=number, **values))
            row = conn.execute(sa.select(CAPS).where(CAPS.c.number == number)).one()
        return NumberCaps.model_validate(dict(row._mapping))

    def number_caps(self, number: str | None = None) -> list[NumberCaps]:
        """Every number's caps (by number), or that one's (an empty list: none)."""
        query = sa.select(CAPS).order_by(CAPS.c.number)
        if number is not None:
            query = query.where(CAPS.c.number == number)
        with self.read() as conn:
            return [NumberCaps.model_validate(dict(r._mapping)) for r in conn.execute(query)]

    def clear_caps(self, number: str) -> bool:
        """Whether the number had caps. Its send_log stays: caps set again count it."""
        with self.write() as conn:
            return bool(conn.execute(sa.delete(CAPS).where(CAPS.c.number == number)).rowcount)

    def cap_uses(
        self, numbers: Iterable[str] | None = None, at: datetime | None = None
    ) -> dict[str, CapUse]:
        """The caps of these numbers (None: every number with caps) and what each sent in
        the hour and the day holding `at` (now), in one read transaction; numbers without
        caps are left out."""
        when = at or utcnow()
        query = sa.select(CAPS)
        if numbers is not None:
            wanted = sorted(set(numbers))
            if not wanted:
                return {}
            query = query.where(CAPS.c.number.in_(wanted))
        out: dict[str, CapUse] = {}
        with self.read() as conn:
            for row in conn.execute(query).all():
                caps = caps_of(row)
                in_hour, in_day = self._sends_in(conn, row.number, caps, when)
                out[row.number] = CapUse(row.number, caps, in_hour, in_day, when)
        return out

    def set_checked(self, recipient_id: int, chat_id: str) -> None:
        """WAHA's check-exists found the recipient's number: `chat_id` is the one WhatsApp
        answered (a Brazilian account may differ from the imported one), stored before the
        message leaves, so every send and re-send goes there and a resume asks no more."""
        with self.write() as conn:
            conn.execute(
                sa.update(R)
                .where(R.c.id == recipient_id)
                .values(chat_id=chat_id, checked_at=utcnow())
            )

    def release_ids(self, recipient_ids: Sequence[int]) -> None:
        """Drop ids stored ahead for recipients that were never sent (the run stopped
        first), so a stored id keeps meaning "may have been sent"."""
        if not recipient_ids:
            return
        with self.write() as conn:
            conn.execute(
                sa.update(R)
                .where(R.c.id.in_(recipient_ids), R.c.status == RecipientStatus.PENDING)
                .values(message_id=None, wa_id=None)
            )

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
            values: dict[str, Any] = {
                "lease_owner": None,
                "lease_until": None,
                "waiting_for": None,
                "waiting_since": None,
                "updated_at": now,
            }
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
            changed = conn.execute(
                sa.update(C)
                .where(
                    C.c.id == campaign_id,
                    sa.or_(C.c.lease_owner == owner, C.c.lease_owner.is_(None)),
                )
                .values(**values)
            ).rowcount
            ended = _campaign(conn.execute(sa.select(C).where(C.c.id == campaign_id)).one())
            if changed and "status" in values:
                history.record(conn, campaign_id, _end_entry(ended, pause_reason), at=now)
            return ended

    def retry_recipients(
        self,
        campaign_id: int,
        statuses: Iterable[RecipientStatus],
        *,
        unconfirmed: bool = False,
        keep_ids: bool = True,
    ) -> int:
        """Queue failed or unknown recipients to be sent again, and with `unconfirmed` the
        sent ones flagged unconfirmed (no SERVER ack in time, delivery.flag_unconfirmed);
        the campaign becomes Paused.

        Counters and next_index move back with them, so they still equal the per-recipient
        truth. The operator then resumes it as any paused campaign. An unconfirmed one keeps
        its WhatsApp id (`wa_id`, the shape WAHA's `id` takes) when `keep_ids`, so the repeat
        carries it and WhatsApp dedupes; without, it is sent as a new message (the caller
        asked the operator: it may arrive twice).
        """
        wanted = sorted({RecipientStatus(s) for s in statuses})
        if not wanted and not unconfirmed:
            raise StoreError("choose what to retry: failed, unknown or unconfirmed recipients")
        flagged = sa.and_(R.c.status == RecipientStatus.SENT, R.c.unconfirmed.is_(True))
        chosen = sa.or_(R.c.status.in_(wanted), flagged) if unconfirmed else R.c.status.in_(wanted)
        with self.write() as conn:
            camp = self._locked_campaign(conn, campaign_id)
            if camp.status not in (S.PAUSED, S.COMPLETED, S.FAILED):
                raise StoreError(
                    f"campaign {campaign_id} is {described(camp.status)}: only a Paused, "
                    "Completed or Failed campaign can retry recipients"
                )
            # Unconfirmed ones are `sent`: grouped apart, by what they are queued as.
            group = sa.case((flagged, sa.literal("unconfirmed")), else_=R.c.status)
            rows = conn.execute(
                sa.select(group, sa.func.count(), sa.func.min(R.c.position))
                .where(R.c.campaign_id == campaign_id, chosen)
                .group_by(group)
            ).all()
            found: dict[str, tuple[int, int]] = {
                str(status): (count, first) for status, count, first in rows
            }
            total: int = sum(count for count, _ in found.values())
            if not total:
                names = " or ".join([str(s) for s in wanted] + ["unconfirmed"] * unconfirmed)
                raise StoreError(f"campaign {campaign_id} has no {names} recipients to retry")
            queued = sa.update(R).where(R.c.campaign_id == campaign_id, chosen)
            # An unknown recipient may have gone out: it keeps its pre-generated id, so the
            # repeat carries it and WhatsApp dedupes. A failed one surely did not: no id.
            # An unconfirmed one went out: its own WhatsApp id, if kept (see above).
            unknown = R.c.status == RecipientStatus.UNKNOWN
            kept = (flagged, R.c.wa_id) if keep_ids else (flagged, sa.null())
            conn.execute(
                queued.values(
                    status=RecipientStatus.PENDING,
                    error=None,
                    sent_at=None,
                    message_id=sa.case((unknown, R.c.message_id), kept, else_=None),
                    wa_id=sa.case((unknown, R.c.wa_id), kept, else_=None),
                    # A new message's acks start afresh (a kept id's late acks still count).
                    ack=sa.case((unknown, R.c.ack), else_=None),
                    unconfirmed=False,
                )
            )
            if camp.status != S.PAUSED:
                check_transition(campaign_id, camp.status, S.PAUSED)
            first = min(first for _, first in found.values())
            now = utcnow()

            def count(what: str) -> int:
                return found.get(what, (0, 0))[0]

            conn.execute(
                sa.update(C)
                .where(C.c.id == campaign_id)
                .values(
                    status=S.PAUSED,
                    failed=C.c.failed - count(RecipientStatus.FAILED),
                    unknown=C.c.unknown - count(RecipientStatus.UNKNOWN),
                    sent=C.c.sent - count("unconfirmed"),
                    unconfirmed=C.c.unconfirmed - count("unconfirmed"),
                    next_index=min(camp.next_index, first),
                    consecutive_failures=0,
                    ack_errors=0,
                    completed_at=None,
                    pause_reason=f"{total} recipient{'s' if total > 1 else ''} queued for "
                    "retry: resume to send",
                    updated_at=now,
                )
            )
            counts = ", ".join(f"{n} {status}" for status, (n, _) in sorted(found.items()))
            if count("unconfirmed") and not keep_ids:
                counts += " (sent as new messages: they may arrive twice)"
            detail = f"{counts} queued again, from {camp.status}; resume to send"
            history.record(conn, campaign_id, Entry(Kind.RETRIED, detail), at=now)
        return total

    # -- deleting, cloning, editing ----------------------------------------------------

    def mark_deleting(self, campaign_id: int) -> Campaign:
        """The first step of a delete: the campaign becomes Deleting, so nothing runs,
        resumes, retries or edits it while its recipients go a batch at a time
        (`delete_recipients`) and, last, its row (`drop_campaign`). A Running campaign is
        refused. One already Deleting (a delete cut short by a crash) is taken as it is:
        deleting it again finishes the job. Returns the campaign as it was."""
        with self.write() as conn:
            camp = self._locked_campaign(conn, campaign_id)
            if camp.status == S.DELETING:
                return camp
            check_deletable(campaign_id, camp.status)
            now = utcnow()
            conn.execute(
                sa.update(C)
                .where(C.c.id == campaign_id)
                .values(
                    status=S.DELETING,
                    updated_at=now,
                    lease_owner=None,
                    lease_until=None,
                    waiting_for=None,
                    waiting_since=None,
                )
            )
            detail = f"was {camp.status}, with {_recipients(camp.total)}"
            history.record(conn, campaign_id, Entry(Kind.DELETING, detail), at=now)
            return camp

    def delete_recipients(self, campaign_id: int, limit: int) -> int:
        """At most `limit` recipients of a Deleting campaign deleted, in one short write
        transaction (the write lock is never held long, whatever the campaign's size); how
        many went: fewer than `limit` means none is left."""
        with self.write() as conn:
            self._deleting(conn, campaign_id)
            batch = sa.select(R.c.id).where(R.c.campaign_id == campaign_id).limit(limit)
            gone: int = conn.execute(sa.delete(R).where(R.c.id.in_(batch))).rowcount
            return gone

    def drop_campaign(self, campaign_id: int) -> tuple[Campaign, bool]:
        """The last step of a delete: a Deleting campaign's row, its history, any recipient
        left and its image, unless another campaign sends the same one, in one transaction.
        Returns the campaign as it was and whether its image went too; its log line
        (`Kind.DELETED`) follows the commit, as its history is gone."""
        with self.write() as conn:
            camp = self._deleting(conn, campaign_id)
            conn.execute(sa.delete(R).where(R.c.campaign_id == campaign_id))
            conn.execute(sa.delete(E).where(E.c.campaign_id == campaign_id))
            conn.execute(sa.delete(C).where(C.c.id == campaign_id))
            image_gone = False
            sha = camp.image_sha256
            if sha:
                self._lock_media(conn, sha)
                used = conn.execute(sa.select(C.c.id).where(C.c.image_sha256 == sha).limit(1))
                if used.first() is None:
                    image_gone = bool(conn.execute(sa.delete(M).where(M.c.sha256 == sha)).rowcount)
        image = ", and its image" if image_gone else ""
        detail = (
            f"'{camp.name}' with {_recipients(camp.total)}, its history{image}, "
            f"by {Actor.here().who}"
        )
        history.tell([(campaign_id, Entry(Kind.DELETED, detail))])
        return camp, image_gone

    def _deleting(self, conn: Connection, campaign_id: int) -> Campaign:
        """The campaign, locked, which must be Deleting (mark_deleting came first)."""
        camp = self._locked_campaign(conn, campaign_id)
        if camp.status != S.DELETING:
            raise StatusRefused(
                f"campaign {campaign_id} is {camp.status}: only a campaign being deleted "
                "loses its recipients"
            )
        return camp

    def _lock_media(self, conn: Connection, sha256: str) -> None:
        """Storing an image and dropping it when no campaign sends it any more, serialised
        (PostgreSQL; SQLite's write lock already is): a campaign created with the image
        while the last one using it is deleted keeps it."""
        self._pg_lock(conn, f"waha-media:{sha256}")

    def clone_campaign(
        self,
        source_id: int,
        *,
        name: str,
        scheduled_at: datetime,
        session: Spread | None = None,
    ) -> int:
        """A new Scheduled campaign with the source's recipients, all of them fresh
        (pending: no message id, no error, no attempt), its text, image and settings
        (CLONED_SETTINGS), under `name`, due at `scheduled_at`, on `session` (one or
        several; by default the source's). One transaction, so the clone is whole or
        absent. The history of both says so."""
        now = utcnow()
        with self.write() as conn:
            # Locked: a delete (mark_deleting) of the source waits for the copy, or came
            # first and the clone is refused.
            src = self._locked_campaign(conn, source_id)
            if src.status == S.DELETING:
                raise StatusRefused(f"campaign {source_id} is being deleted: it cannot be cloned")
            values: dict[str, Any] = {key: getattr(src, key) for key in CLONED_SETTINGS}
            values.update(
                name=name,
                session=session.names[0] if session else src.session,
                sessions=session.stored() if session else src.sessions,
                status=S.SCHEDULED,
                scheduled_at=scheduled_at,
                created_at=now,
                updated_at=now,
                created_by=Actor.here().who,
            )
            if src.image_sha256:
                self._lock_media(conn, src.image_sha256)  # its bytes stay for the clone
            cid: int = conn.execute(sa.insert(C).values(**values).returning(C.c.id)).scalar_one()
            copied = (
                "campaign_id",
                "position",
                "phone",
                "chat_id",
                "name",
                "variables",
                "status",
                "attempts",
            )
            fresh = sa.select(
                sa.literal(cid, sa.Integer),
                R.c.position,
                R.c.phone,
                R.c.chat_id,
                R.c.name,
                R.c.variables,
                sa.literal(RecipientStatus.PENDING.value, sa.String),
                sa.literal(0, sa.Integer),
            ).where(R.c.campaign_id == source_id)
            conn.execute(sa.insert(R).from_select(copied, fresh))
            total = conn.execute(
                sa.select(sa.func.count()).select_from(R).where(R.c.campaign_id == cid)
            ).scalar_one()
            conn.execute(sa.update(C).where(C.c.id == cid).values(total=total))
            conn.execute(sa.update(C).where(C.c.id == source_id).values(updated_at=now))
            where = f"on {sessions_named(Campaign.model_construct(**values))}"
            history.record(
                conn,
                cid,
                Entry(
                    Kind.CREATED, f"{_recipients(total)} cloned from campaign {source_id}, {where}"
                ),
                at=now,
            )
            history.record(
                conn, source_id, Entry(Kind.CLONED, f"into campaign {cid} '{name}'"), at=now
            )
        return cid

    def edit_campaign(
        self,
        campaign_id: int,
        *,
        name: str | None = None,
        scheduled_at: datetime | None = None,
        delay: tuple[float, float] | None = None,
        check_numbers: bool | None = None,
        window: str | None = None,
        days: str | None = None,
        timezone: str | None = None,
        breaks: tuple[int, float, float] | None = None,
    ) -> tuple[Campaign, list[str]]:
        """A Scheduled or Paused campaign's name, start, delay, number check, send window
        (ANY_TIME: none), its days (ANY_TIME: every day), zone, or long breaks (every,
        shortest, longest) (None: kept), checked under
        its lock; the history records what changed, from what. Returns the campaign and the
        changes, as they are recorded (none: nothing differed, nothing was written)."""
        with self.write() as conn:
            camp = self._locked_campaign(conn, campaign_id)
            check_editable(campaign_id, camp.status)
            values: dict[str, Any] = {}
            changes: list[str] = []
            if name is not None and name != camp.name:
                values["name"] = name
                changes.append(f"name '{camp.name}' → '{name}'")
            if scheduled_at is not None and scheduled_at != camp.scheduled_at:
                values["scheduled_at"] = scheduled_at
                changes.append(f"start {_utc(camp.scheduled_at)} → {_utc(scheduled_at)}")
            if delay is not None and delay != (camp.delay_min, camp.delay_max):
                values.update(delay_min=delay[0], delay_max=delay[1])
                was = f"{camp.delay_min:g}-{camp.delay_max:g}"
                changes.append(f"delay {was} s → {delay[0]:g}-{delay[1]:g} s")
            if check_numbers is not None and check_numbers != camp.check_numbers:
                values["check_numbers"] = check_numbers
                changes.append(f"number check {_on(camp.check_numbers)} → {_on(check_numbers)}")
            for column, given, what in (
                ("send_window", window, "send window"),
                ("window_days", days, "days"),
                ("timezone", timezone, "time zone"),
            ):
                new_value = None if given == ANY_TIME else given
                if given is not None and new_value != getattr(camp, column):
                    values[column] = new_value
                    was, now_is = getattr(camp, column) or "any", new_value or "any"
                    changes.append(f"{what} {was} → {now_is}")
            was_breaks = (camp.break_every, *Pacing.of(camp).break_range)
            if breaks is not None and breaks != was_breaks:
                values.update(break_every=breaks[0], break_seconds=breaks[1], break_max=breaks[2])
                changes.append(f"long breaks {_breaks_text(was_breaks)} → {_breaks_text(breaks)}")
            if not values:
                return camp, []
            now = utcnow()
            conn.execute(sa.update(C).where(C.c.id == campaign_id).values(updated_at=now, **values))
            history.record(conn, campaign_id, Entry(Kind.EDITED, "; ".join(changes)), at=now)
            return _campaign(conn.execute(sa.select(C).where(C.c.id == campaign_id)).one()), changes

    def recover_interrupted(self, now: datetime | None = None) -> list[int]:
        """Campaigns left Running by a process whose lease lapsed become Paused
        ("interrupted"), or Scheduled again when the operator chose auto-resume for them,
        so that whichever runner gets there first takes them over."""
        now = now or utcnow()
        lapsed = sa.and_(
            C.c.status == S.RUNNING,
            sa.or_(C.c.lease_until.is_(None), C.c.lease_until < now),
        )
        recovered: list[int] = []
        with self.write() as conn:
            # Rows another runner is recovering (or claiming) right now are skipped, not
            # waited for; they are its business.
            owners: dict[int, str | None] = dict(
                conn.execute(
                    sa.select(C.c.id, C.c.lease_owner)
                    .where(lapsed)
                    .with_for_update(skip_locked=True)
                ).all()
            )
            ids = list(owners)
            if not ids:
                return []
            released = {
                "lease_owner": None,
                "lease_until": None,
                "waiting_for": None,
                "waiting_since": None,
                "updated_at": now,
            }
            outcomes = (
                (False, {"status": S.PAUSED, "pause_reason": INTERRUPTED}),
                (True, {"status": S.SCHEDULED, "pause_reason": None}),
            )
            for auto, values in outcomes:
                # The UPDATE repeats the condition: a heartbeat that renewed the lease since
                # the SELECT keeps its campaign.
                done = list(
                    conn.execute(
                        sa.update(C)
                        .where(C.c.id.in_(ids), lapsed, C.c.auto_resume == auto)
                        .values(**values, **released)
                        .returning(C.c.id)
                    ).scalars()
                )
                for cid in sorted(done):
                    why = f"{INTERRUPTED} (its runner: {owners[cid] or 'none'})"
                    entry = (
                        Entry(
                            Kind.SCHEDULED,
                            f"{why}; auto-resume: the next free runner takes it over",
                            level=logging.WARNING,
                        )
                        if auto
                        else Entry(Kind.PAUSED, why)
                    )
                    history.record(conn, cid, entry, at=now)
                recovered += done
        return sorted(recovered)

    def claimable_campaigns(self, now: datetime | None = None) -> list[Campaign]:
        """Due Scheduled campaigns whose WAHA session no live lease holds, oldest first.

        FOR UPDATE SKIP LOCKED leaves out rows another runner is claiming at this moment,
        so runners on several hosts spread over the work instead of queueing behind one
        another's claims. The claim itself (`claim`) re-checks everything under its locks.
        """
        now = now or utcnow()
        with self.write() as conn:
            busy: set[str] = set()
            for row in conn.execute(
                sa.select(C.c.session, C.c.sessions).where(
                    C.c.status == S.RUNNING, C.c.lease_until > now
                )
            ):
                busy.update(names_of(row.session, row.sessions))
            due_now = sa.and_(C.c.status == S.SCHEDULED, C.c.scheduled_at <= now)
            if busy:  # a campaign's first session is a column (the others: below)
                due_now = sa.and_(due_now, C.c.session.not_in(sorted(busy)))
            rows = conn.execute(
                sa.select(C)
                .where(due_now)
                .order_by(C.c.scheduled_at, C.c.id)
                .with_for_update(skip_locked=True)
            ).all()
        due = [_campaign(r) for r in rows]
        return [c for c in due if not overlap(names_of(c.session, c.sessions), busy)]

    # -- the opt-out list ----------------------------------------------------------------

    def insert_optouts(
        self, conn: Connection, entries: Sequence[OptOutEntry], *, now: datetime | None = None
    ) -> list[str]:
        """Add numbers to the opt-out list inside the caller's write transaction; a number
        already there keeps its row (several listeners on several hosts are harmless).
        Returns the numbers that were new, in the order given."""
        when = now or utcnow()
        fresh: list[str] = []
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        for e in entries:
            if e.phone not in seen:  # the first of each number
                seen.add(e.phone)
                rows.append(
                    {
                        "phone": e.phone,
                        "added_at": when,
                        "source": e.source,
                        "reason": e.reason,
                        "campaign_id": e.campaign_id,
                    }
                )
        insert = pg_insert(OPT) if conn.dialect.name == "postgresql" else sqlite_insert(OPT)
        for chunk in chunks(rows, 500):
            added = conn.execute(
                insert.values(chunk)
                .on_conflict_do_nothing(index_elements=["phone"])
                .returning(OPT.c.phone)
            ).scalars()
            fresh += added
        order = {row["phone"]: i for i, row in enumerate(rows)}
        return sorted(fresh, key=order.__getitem__)

    def add_optouts(self, entries: Sequence[OptOutEntry]) -> list[str]:
        """`insert_optouts` in a transaction of its own."""
        with self.write() as conn:
            return self.insert_optouts(conn, entries)

    def remove_optout(self, phone: str) -> bool:
        """Whether the number was on the list."""
        with self.write() as conn:
            return bool(conn.execute(sa.delete(OPT).where(OPT.c.phone == phone)).rowcount)

    def optouts(self, search: str = "", *, offset: int = 0, limit: int = 100) -> list[OptOut]:
        """A page of the list, the newest first; `search`: a part of the number (digits)."""
        query = (
            sa.select(OPT)
            .where(*_optout_matching(search))
            .order_by(OPT.c.added_at.desc(), OPT.c.phone)
            .offset(offset)
            .limit(limit)
        )
        with self.read() as conn:
            return [OptOut.model_validate(dict(r._mapping)) for r in conn.execute(query)]

    def count_optouts(self, search: str = "") -> int:
        with self.read() as conn:
            found: int = conn.execute(
                sa.select(sa.func.count()).select_from(OPT).where(*_optout_matching(search))
            ).scalar_one()
            return found

    def opted_out(self, phones: Iterable[str]) -> set[str]:
        """Which of these numbers (as phones.normalise_phone gives them) are on the list:
        one indexed look-up per 500 numbers, whatever the list's size."""
        wanted = sorted(set(phones))
        out: set[str] = set()
        if not wanted:
            return out
        with self.read() as conn:
            for chunk in chunks(wanted, 500):
                out.update(
                    conn.execute(sa.select(OPT.c.phone).where(OPT.c.phone.in_(chunk))).scalars()
                )
        return out

    def optout_keywords(self) -> list[str] | None:
        """The stored opt-out keywords; None: none stored (optout.DEFAULT_KEYWORDS apply)."""
        with self.read() as conn:
            value = conn.execute(
                sa.select(col(Meta.value)).where(col(Meta.key) == optout.META_KEY)
            ).scalar()
        return optout.parse_stored(value)

    def set_optout_keywords(self, keywords: Sequence[str] | None) -> None:
        """Store the opt-out keywords for every host (None: back to the defaults)."""
        with self.write() as conn:
            conn.execute(sa.delete(Meta).where(col(Meta.key) == optout.META_KEY))
            if keywords is not None:
                conn.execute(
                    sa.insert(Meta).values(key=optout.META_KEY, value=optout.dumps(list(keywords)))
                )


def caps_of(row: Any) -> Caps:
    """A number_caps row as the caps' rules take it (pacing.Caps)."""
    return Caps(
        per_hour=row.per_hour,
        per_day=row.per_day,
        zone=row.timezone,
        warmup=tuple(row.warmup or ()),
        warmup_start=row.warmup_start,
    )


def _breaks_text(breaks: tuple[int, float, float]) -> str:
    every, low, high = breaks
    return f"every {every}, {low:g}-{high:g} s" if every else "none"


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def _recipients(count: int) -> str:
    return f"{count:,} recipient{'' if count == 1 else 's'}"


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Bound lists of parameters: SQLite takes at most 32,766 in one statement."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _optout_matching(search: str) -> list[Any]:
    digits = "".join(ch for ch in search if ch.isdecimal() and ch.isascii())
    return [OPT.c.phone.contains(digits, autoescape=True)] if digits else []


def _utc(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "-"


def _end_entry(camp: Campaign, reason: str | None) -> Entry:
    """How the end of a run is recorded, from the campaign as it ended."""
    if camp.status == S.COMPLETED:
        unknown = f", {camp.unknown} unknown" if camp.unknown else ""
        detail = f"{camp.sent} sent, {camp.failed} failed{unknown} of {camp.total}"
        return Entry(Kind.COMPLETED, detail)
    if camp.status == S.FAILED:
        return Entry(Kind.FAILED, camp.last_error)
    return Entry(KIND_OF[S(camp.status)], reason)


def _reason(exc: Exception) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).strip().split("\n")[0]


def _switch_to_wal(cur: sqlite3.Cursor, busy_ms: int) -> None:
    """PRAGMA journal_mode = WAL, outside any transaction (SQLite cannot change the journal
    inside one). While several processes open a new file at once, the switch fails at once
    with "database is locked" instead of waiting for the busy timeout: it is tried again
    for as long as that timeout."""
    deadline = time.monotonic() + busy_ms / 1000
    delay = 0.005
    while True:
        try:
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
            if code not in _SQLITE_BUSY or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


# SQLITE_BUSY, SQLITE_LOCKED; PostgreSQL: lock_not_available (our lock_timeout).
_SQLITE_BUSY = frozenset({5, 6})
_PG_BUSY = frozenset({"55P03"})


def _busy(exc: Exception) -> bool:
    """A lock held by another process outlasted the timeout (by error code, not text)."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _SQLITE_BUSY  # extended codes keep the primary in the low byte
    return getattr(orig, "sqlstate", None) in _PG_BUSY


def _sort_index(name: str) -> str:
    return f"ix_campaign_by_{name}"


def _sort_key(name: str) -> Any:
    """What campaigns sorted by this stored column are ordered by (then by id)."""
    column = C.c[name]
    return sa.func.lower(column) if name in CASE_FOLDED_SORTS else column


def _order(name: str, descending: bool) -> list[Any]:
    if name == "id":
        return [C.c.id.desc() if descending else C.c.id.asc()]
    key = _sort_key(name)
    if descending:
        return [key.desc().nulls_last(), C.c.id.desc()]
    return [key.asc().nulls_first(), C.c.id.asc()]


def _before(name: str, descending: bool, value: Any, anchor_id: int) -> Any:
    """The campaigns that come before (value, anchor_id) in _order(name, descending)."""
    by_id = C.c.id > anchor_id if descending else C.c.id < anchor_id
    if name == "id":
        return by_id
    key = _sort_key(name)
    if value is None:  # NULLs come first ascending, last descending
        null = key.is_(None)
        return (
            sa.or_(key.is_not(None), sa.and_(null, by_id)) if descending else sa.and_(null, by_id)
        )
    ahead = key > value if descending else sa.or_(key.is_(None), key < value)
    return sa.or_(ahead, sa.and_(key == value, by_id))


def _matching(needle: str) -> list[Any]:
    """The dashboard's filter: the name or the status contains `needle`, in any case."""
    needle = needle.strip().lower()
    if not needle:
        return []
    return [
        sa.or_(
            sa.func.lower(C.c.name).contains(needle, autoescape=True),
            sa.func.lower(C.c.status).contains(needle, autoescape=True),
        )
    ]


def _add_column(conn: Connection, table: sa.Table, name: str) -> None:
    """ALTER TABLE ... ADD COLUMN, its DDL rendered from the model (one place owns it)."""
    ddl = sa.schema.CreateColumn(table.c[name]).compile(dialect=conn.dialect)
    conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {ddl}")


# Schema version -> the step that brings the previous version to it.
def _to_v2(conn: Connection) -> None:
    _add_column(conn, C, "auto_resume")
    # (and ix_campaign_updated_at, which the step to 8 drops)


def _to_v3(conn: Connection) -> None:
    _add_column(conn, C, "waiting_for")
    _add_column(conn, C, "waiting_since")


def _to_v4(conn: Connection) -> None:
    _add_column(conn, C, "created_by")
    E.create(conn)  # with its index


def _to_v5(conn: Connection) -> None:
    _add_column(conn, C, "image_sha256")
    M.create(conn)


def _to_v6(conn: Connection) -> None:
    _add_column(conn, C, "next_send_at")


def _to_v7(conn: Connection) -> None:
    index = next(i for i in R.indexes if i.name == "ix_recipient_campaign_status")
    index.drop(conn)  # (campaign_id, status): now with position
    index.create(conn)


def _to_v8(conn: Connection) -> None:
    # Redundant beside the sort index ix_campaign_by_updated_at, and a write more for
    # every message the runner records.
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_campaign_updated_at")


def _to_v9(conn: Connection) -> None:
    for name in ("skipped", "delivered", "read", "replied", "unconfirmed", "ack_errors"):
        _add_column(conn, C, name)
    _add_column(conn, C, "check_numbers")
    for name in (
        "wa_id",
        "ack",
        "delivered_at",
        "read_at",
        "unconfirmed",
        "replied_at",
        "reply_text",
        "checked_at",
    ):
        _add_column(conn, R, name)
    for index in R.indexes:
        if index.name in ("ix_recipient_wa_id", "ix_recipient_chat_id", "ix_recipient_unacked"):
            index.create(conn)
    OPT.create(conn)
    # Counted as campaigns counted them before: skipped recipients were never counted.
    skipped = (
        sa.select(sa.func.count())
        .where(R.c.campaign_id == C.c.id, R.c.status == RecipientStatus.SKIPPED)
        .scalar_subquery()
    )
    conn.execute(sa.update(C).values(skipped=skipped))


def _to_v10(conn: Connection) -> None:
    for name in ("break_max", "send_window", "window_days", "timezone", "variants"):
        _add_column(conn, C, name)
    # A long break was one length: the range is that length to that length.
    conn.execute(sa.update(C).values(break_max=C.c.break_seconds))
    for name in ("text", "session"):
        _add_column(conn, R, name)
    CAPS.create(conn)
    SENDS.create(conn)  # with its index


def _to_v11(conn: Connection) -> None:
    _add_column(conn, C, "sessions")


MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    2: _to_v2,
    3: _to_v3,
    4: _to_v4,
    5: _to_v5,
    6: _to_v6,
    7: _to_v7,
    8: _to_v8,
    9: _to_v9,
    10: _to_v10,
    11: _to_v11,
}
