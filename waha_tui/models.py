"""Tables (SQLModel). Portable SQL: the same tables on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from waha_tui.status import CampaignStatus, RecipientStatus

# 2: campaign.auto_resume; 3: campaign.waiting_for / waiting_since; 4: campaign.created_by
# and the campaign_event table; 5: the media table and campaign.image_sha256; 6:
# campaign.next_send_at; 7: recipients by campaign, status and position, for the details
# screen's filter; 8: no ix_campaign_updated_at (ix_campaign_by_updated_at, a sort index,
# serves the same reads, and every message the runner records wrote both) (migrations in
# store.py); 9: delivery truth (issue 16): the recipients' acks, replies and WhatsApp id,
# the campaigns' counts of them and check_numbers, the recipients' checked_at, the opt-out
# table; 10: sending like a person (issue 17): send windows in a zone, long breaks as a
# range, text variants, a text and a session per recipient, per-number caps and warm-up,
# the send log they count; 11: campaign.sessions, the sessions (numbers) a campaign sends
# through, with their weights (spread.py), when it has more than one.
SCHEMA_VERSION = 11


# The campaign columns the dashboard sorts by (Store.campaign_page). Each has an index of
# its own, the column then id (the order is total, a page is a walk along the index), which
# the store makes wherever it is missing when it opens a database, whatever the schema
# version: an index changes no row, and an older waha-tui ignores it. Names sort regardless
# of case (the index is on lower(name)).
CAMPAIGN_SORTS = (
    "id",
    "name",
    "status",
    "session",
    "scheduled_at",
    "started_at",
    "completed_at",
    "next_index",
    "failed",
    "total",
    "updated_at",
)
CASE_FOLDED_SORTS = frozenset({"name"})


# The largest id a row can have: a signed 64-bit integer (SQLite's INTEGER, BIGINT).
MAX_ID = 2**63 - 1


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Always hands back aware UTC datetimes, whatever the backend stores."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store: use UTC-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stored: datetime = value  # what the DateTime it decorates reads
        return stored.replace(tzinfo=UTC) if stored.tzinfo is None else stored.astimezone(UTC)


def _count() -> Any:
    """A counter column: 0 in the rows a migration adds it to, too."""
    return Field(default=0, sa_column_kwargs={"server_default": sa.text("0")})


def _dt(nullable: bool = True) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable)


class Meta(SQLModel, table=True):
    __tablename__ = "meta"
    key: str = Field(primary_key=True, max_length=64)
    value: str


class ContactList(SQLModel, table=True):
    __tablename__ = "contact_list"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    contact_count: int = 0
    created_at: datetime | None = _dt()


class Contact(SQLModel, table=True):
    __tablename__ = "contact"
    __table_args__ = (sa.UniqueConstraint("list_id", "position"),)
    id: int | None = Field(default=None, primary_key=True)
    list_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("contact_list.id", ondelete="CASCADE"), nullable=False)
    )
    position: int
    phone: str = Field(max_length=20)
    chat_id: str = Field(max_length=64)
    name: str | None = None
    variables: dict[str, str] = Field(default_factory=dict, sa_type=sa.JSON)


class Template(SQLModel, table=True):
    __tablename__ = "template"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    text: str
    created_at: datetime | None = _dt()
    updated_at: datetime | None = _dt()


class Campaign(SQLModel, table=True):
    __tablename__ = "campaign"
    __table_args__ = (sa.Index("ix_campaign_status_scheduled", "status", "scheduled_at"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    session: str = Field(default="default", max_length=100)  # the first of `sessions`
    # Several sessions: [[name, weight], ...], its recipients dealt among them
    # (spread.Spread); None: only `session`.
    sessions: list[list[Any]] | None = Field(default=None, sa_type=sa.JSON)
    template_text: str
    default_name: str = ""
    image_path: str | None = None  # the file as given at creation: shown, never read again
    image_mime: str | None = None
    # The image's bytes, stored with the campaign when it was created (the media table);
    # None for a campaign created before they were (it reads image_path).
    image_sha256: str | None = Field(default=None, max_length=64)
    list_name: str | None = None  # where the recipients came from, for display only
    status: str = Field(default=CampaignStatus.SCHEDULED, max_length=16)
    scheduled_at: datetime | None = _dt()
    created_at: datetime | None = _dt()
    started_at: datetime | None = _dt()
    completed_at: datetime | None = _dt()
    total: int = 0
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = _count()  # opted out, or not on WhatsApp: settled without a send
    # What WhatsApp said after the sends (acks and replies, delivery.py): how many
    # recipients got to DEVICE (or further), READ (or further), answered, and were not
    # confirmed in time while the event feed was live.
    delivered: int = _count()
    read: int = _count()
    replied: int = _count()
    unconfirmed: int = _count()
    ack_errors: int = _count()  # ERROR acks in a row (a SERVER or later ack ends the run)
    # Ask WAHA whether each number is on WhatsApp before its first message.
    check_numbers: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    next_index: int = 0  # position of the next recipient not yet processed
    pause_reason: str | None = None
    # What a Running campaign is waiting for (a session coming back, ...) and since when:
    # stored, so every host's dashboard and `campaign show` see it.
    waiting_for: str | None = None
    waiting_since: datetime | None = _dt()
    # When a Running campaign's next message is due (the end of the wait it is in):
    # stored, so every host's dashboard counts down to it.
    next_send_at: datetime | None = _dt()
    last_error: str | None = None
    delay_min: float = 30.0
    delay_max: float = 60.0
    typing: bool = False
    break_every: int = 0
    break_seconds: float = 0.0  # the shortest long break (schema 10: a range up to break_max)
    break_max: float = Field(default=0.0, sa_column_kwargs={"server_default": sa.text("0")})
    # A daily send window ("09:00-20:00"; None: any time), on these days ("mon,tue,...";
    # None: every day), in this IANA zone (stored at creation: every host reads it alike).
    send_window: str | None = Field(default=None, max_length=11)
    window_days: str | None = Field(default=None, max_length=27)
    timezone: str | None = Field(default=None, max_length=64)
    # More texts beside template_text (variant 0); with spintax in any of them, each
    # recipient's text is picked (stably) and stored before its first send.
    variants: list[str] | None = Field(default=None, sa_type=sa.JSON)
    max_consecutive_failures: int = 10
    consecutive_failures: int = 0
    # When its runner dies: True goes back to Scheduled (any runner takes it), False Paused.
    auto_resume: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    # Who created it, "user@host" (None: created before waha-tui kept a history).
    created_by: str | None = Field(default=None, max_length=255)
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_until: datetime | None = _dt()
    updated_at: datetime | None = _dt()


# A sent recipient with no SERVER-or-later ack and not flagged yet (the partial index's
# condition: a query uses that index only when its own WHERE says the same).
UNACKED = sa.text("status = 'sent' AND NOT unconfirmed AND (ack IS NULL OR ack < 1)")


class Recipient(SQLModel, table=True):
    __tablename__ = "recipient"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "position"),
        # A status's count, and its rows in sending order around the next one (the details
        # screen's filter), read from the index alone, whatever the campaign's size.
        sa.Index("ix_recipient_campaign_status", "campaign_id", "status", "position"),
        # An ack finds its message's recipient; a reply, the recipients of its chat.
        sa.Index("ix_recipient_wa_id", "wa_id"),
        sa.Index("ix_recipient_chat_id", "chat_id"),
        # The sent messages WhatsApp has not acknowledged yet, by when they went
        # (delivery.flag_unconfirmed's look every few seconds): each leaves at its first
        # SERVER ack, so the look stays small whatever the campaigns' size.
        sa.Index(
            "ix_recipient_unacked",
            "sent_at",
            sqlite_where=UNACKED,
            postgresql_where=UNACKED,
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("campaign.id", ondelete="CASCADE"), nullable=False)
    )
    position: int
    phone: str = Field(max_length=20)
    chat_id: str = Field(max_length=64)
    name: str | None = None
    variables: dict[str, str] = Field(default_factory=dict, sa_type=sa.JSON)
    status: str = Field(default=RecipientStatus.PENDING, max_length=10)
    message_id: str | None = None
    error: str | None = None
    attempts: int = 0
    sent_at: datetime | None = _dt()
    # The message's own WhatsApp id (message_ids.bare of message_id): what acks carry.
    wa_id: str | None = Field(default=None, max_length=128)
    ack: int | None = None  # the highest waha.envelope.Ack seen; None: none yet
    delivered_at: datetime | None = _dt()  # its first DEVICE (or later) ack
    read_at: datetime | None = _dt()  # its first READ (or later) ack
    # No SERVER or DEVICE ack in time while the event feed was live (never re-sent by itself).
    unconfirmed: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    replied_at: datetime | None = _dt()  # the first reply from its chat
    reply_text: str | None = None
    # The text it was (or is to be) sent, picked and stored before its first send, so a
    # re-send carries the same one; None: not picked yet.
    text: str | None = None
    # The session it is sent from, fixed at its first attempt (a campaign may send through
    # several); None: not attempted yet, or the campaign's one session.
    session: str | None = Field(default=None, max_length=100)
    # When WAHA's check-exists found the number on WhatsApp (campaign.check_numbers); its
    # chat_id is then the one WhatsApp answered. Set: a resume does not ask again.
    checked_at: datetime | None = _dt()


class OptOut(SQLModel, table=True):
    """A number never to be messaged again (the do-not-contact list, every campaign's)."""

    __tablename__ = "optout"
    phone: str = Field(primary_key=True, max_length=20)  # as phones.normalise_phone gives it
    added_at: datetime | None = _dt(nullable=False)
    source: str = Field(max_length=16)  # reply, import, hand
    reason: str | None = None  # what they wrote, the file and line, the operator's words
    campaign_id: int | None = None  # the campaign they answered (no key: it may be deleted)


class NumberCaps(SQLModel, table=True):
    """Limits on one WhatsApp number (a session's me.id, whichever server or session name
    sends from it), shared by every campaign, process and host."""

    __tablename__ = "number_caps"
    number: str = Field(primary_key=True, max_length=32)  # me.id's digits
    per_hour: int | None = None
    per_day: int | None = None
    timezone: str = Field(max_length=64)  # where its day ends at midnight
    # A new number's daily caps, day by day from warmup_start (then per_day).
    warmup: list[int] | None = Field(default=None, sa_type=sa.JSON)
    warmup_start: datetime | None = _dt()
    updated_at: datetime | None = _dt()


class SendLog(SQLModel, table=True):
    """One row per send reserved from a number, written in the transaction that reserves
    it: what the caps count. Old rows are pruned."""

    __tablename__ = "send_log"
    __table_args__ = (sa.Index("ix_send_log_number_at", "number", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=32)
    at: datetime | None = _dt(nullable=False)
    campaign_id: int | None = None  # no key: the log outlives a deleted campaign


class MediaRow(SQLModel, table=True):
    """An image as checked when a campaign was created, by the SHA-256 of its bytes (one
    row for every campaign that sends the same image). Every host sends these bytes."""

    __tablename__ = "media"
    sha256: str = Field(primary_key=True, max_length=64)
    mimetype: str = Field(max_length=100)
    filename: str = Field(max_length=255)
    size: int
    data: bytes = Field(sa_type=sa.LargeBinary)
    created_at: datetime | None = _dt()


class CampaignEventRow(SQLModel, table=True):
    """One entry of a campaign's history (history.py writes them): what happened, why, and
    which user on which host, in which process, did it."""

    __tablename__ = "campaign_event"
    __table_args__ = (sa.Index("ix_campaign_event_campaign", "campaign_id", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("campaign.id", ondelete="CASCADE"), nullable=False)
    )
    at: datetime | None = _dt(nullable=False)
    kind: str = Field(max_length=16)
    detail: str | None = None
    os_user: str = Field(max_length=64)  # the operating-system user of the process
    host: str = Field(max_length=255)
    pid: int
