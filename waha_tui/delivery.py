"""What WhatsApp says after a send, written to the database: acks (delivered, read, the
send refused after all), replies and opt-outs, from WAHA's events (waha/envelope.py).

`apply` takes a batch of events in one write transaction (the feed batches them: at
thousands of acks a second a call carries hundreds), reading the recipients they name by
their indexed `wa_id` / `chat_id` and writing back only what moved, by primary key.
Everything here is idempotent: the same batch applied twice, by one listener or by
several on several hosts, leaves the database as applying it once.

`flag_unconfirmed` marks what WhatsApp never confirmed while the feed was there to say so.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from waha_tui.history import Entry, Kind
from waha_tui.models import UNACKED, Campaign, Recipient, utcnow
from waha_tui.optout import DEFAULT_KEYWORDS, is_optout, matcher
from waha_tui.phones import PhoneError, masked, normalise_phone
from waha_tui.status import CampaignStatus, RecipientStatus
from waha_tui.store import OptOutEntry, Store, chunks
from waha_tui.waha.chat_ids import is_lid, number, personal
from waha_tui.waha.envelope import Ack, AckEvent, MessageEvent, WahaEvent

log = logging.getLogger(__name__)
C = Campaign.__table__  # type: ignore[attr-defined]
R = Recipient.__table__  # type: ignore[attr-defined]
S = CampaignStatus
RS = RecipientStatus

FAILED_BY_WHATSAPP = "WhatsApp reported the send failed"
REPLY_WINDOW = timedelta(days=30)  # a reply answers a campaign that messaged it this recently
# A reply stamped (by WAHA's clock) a little before our sent_at (our clock) still answers it.
CLOCK_SLACK = timedelta(minutes=5)
UNCONFIRMED_AFTER = timedelta(seconds=60)  # the maintainers' recipe (#789): no ack in ~60 s
CHUNK = 500  # parameters per IN (...): well under every backend's limit


def paused_reason(count: int) -> str:
    return (
        f"WhatsApp refused {count} messages in a row after accepting them: the account may "
        "be barred from messaging new contacts for now (reach-out timelock)"
    )


@dataclass(frozen=True)
class OptedOut:
    """A number newly on the opt-out list, and the campaign it answered (None: none)."""

    phone: str
    campaign_id: int | None


@dataclass(frozen=True)
class Applied:
    """What one `apply` changed (a replay of the same events changes, and says, nothing)."""

    acks: int = 0  # recipients an ack moved forward
    delivered: int = 0  # recipients that reached DEVICE (or further) for the first time
    read: int = 0  # ... READ (or further)
    failed: int = 0  # recipients turned failed by an ERROR ack
    confirmed: int = 0  # unconfirmed flags cleared by a late ack
    replies: int = 0  # recipients that answered for the first time
    ignored: int = 0  # events that matched nothing of ours (another tool's, groups, @lid...)
    campaigns: frozenset[int] = frozenset()  # whose recipients or counters changed
    opted_out: tuple[OptedOut, ...] = ()
    paused: tuple[int, ...] = ()  # Running campaigns paused by ERROR acks in a row

    @property
    def changed(self) -> bool:
        return bool(self.campaigns or self.opted_out)


@dataclass
class _Rec:
    """A recipient as read, then as moved by the batch."""

    id: int
    campaign_id: int
    status: str
    ack: int | None
    delivered_at: datetime | None
    read_at: datetime | None
    unconfirmed: bool
    error: str | None
    dirty: bool = False


@dataclass
class _Counts:
    """One campaign's counters as moved by the batch."""

    sent: int = 0
    failed: int = 0
    unknown: int = 0
    delivered: int = 0
    read: int = 0
    unconfirmed: int = 0
    replied: int = 0
    reset: bool = False  # a first SERVER-or-later ack: the ERROR run ended
    streak: int = 0  # ERROR acks in a row since (or, without a reset, on top of the stored)


@dataclass
class _Tally:
    counts: dict[int, _Counts] = field(default_factory=lambda: defaultdict(_Counts))
    acks: int = 0
    delivered: int = 0
    read: int = 0
    failed: int = 0
    confirmed: int = 0
    replies: int = 0
    ignored: int = 0
    opted_out: list[OptedOut] = field(default_factory=list)
    paused: list[int] = field(default_factory=list)


def apply(
    store: Store,
    events: Sequence[WahaEvent],
    *,
    now: datetime | None = None,
    hold_off: float | None = None,
) -> Applied:
    """Write what a batch of events says, in one transaction (StoreError if the database
    fails: nothing of the batch is then written, and the caller may apply it again).
    `hold_off`: a background write (`Store.background_write`): it waits up to that long
    for an operator's action on its way to its own write (a resume's claim)."""
    now = now or utcnow()
    acks = [e for e in events if isinstance(e, AckEvent)]
    messages = [e for e in events if isinstance(e, MessageEvent)]
    tally = _Tally(ignored=len(events) - len(acks) - len(messages))  # session statuses
    if not acks and not messages:
        return Applied(ignored=tally.ignored)
    # Read before the write lock is taken (it changes by an operator's hand, rarely).
    folded = matcher(store.optout_keywords() or DEFAULT_KEYWORDS) if messages else frozenset()
    writing = store.write() if hold_off is None else store.background_write(hold_off)
    with writing as conn:
        if acks:
            _apply_acks(conn, acks, tally)
        if messages:
            _apply_messages(store, conn, messages, folded, now, tally)
        _write_counts(store, conn, tally)
    return Applied(
        acks=tally.acks,
        delivered=tally.delivered,
        read=tally.read,
        failed=tally.failed,
        confirmed=tally.confirmed,
        replies=tally.replies,
        ignored=tally.ignored,
        campaigns=frozenset(tally.counts),
        opted_out=tuple(tally.opted_out),
        paused=tuple(tally.paused),
    )


# -- acks --------------------------------------------------------------------------------

_ACK_COLUMNS = (
    R.c.id,
    R.c.campaign_id,
    R.c.wa_id,
    R.c.status,
    R.c.ack,
    R.c.delivered_at,
    R.c.read_at,
    R.c.unconfirmed,
    R.c.error,
)
_WRITE_RECIPIENT = (
    sa.update(R)
    .where(R.c.id == sa.bindparam("b_id"))
    .values(
        status=sa.bindparam("b_status"),
        error=sa.bindparam("b_error", type_=sa.String),
        ack=sa.bindparam("b_ack", type_=sa.Integer),
        delivered_at=sa.bindparam("b_delivered", type_=R.c.delivered_at.type),
        read_at=sa.bindparam("b_read", type_=R.c.read_at.type),
        unconfirmed=sa.bindparam("b_unconfirmed", type_=sa.Boolean),
    )
)


def _apply_acks(conn: Connection, acks: Sequence[AckEvent], tally: _Tally) -> None:
    by_wa: dict[str, list[_Rec]] = defaultdict(list)
    wanted = sorted({a.wa_id for a in acks if a.wa_id})
    for chunk in chunks(wanted, CHUNK):
        # Locked (PostgreSQL; SQLite's write lock already serialises): two listeners
        # applying the same ack count it once. Always in id order: no deadlock between them.
        query = (
            sa.select(*_ACK_COLUMNS).where(R.c.wa_id.in_(chunk)).order_by(R.c.id).with_for_update()
        )
        for row in conn.execute(query):
            by_wa[row.wa_id].append(
                _Rec(
                    row.id,
                    row.campaign_id,
                    row.status,
                    row.ack,
                    row.delivered_at,
                    row.read_at,
                    bool(row.unconfirmed),
                    row.error,
                )
            )
    changed: dict[int, _Rec] = {}
    for event in acks:  # in the order they came: "in a row" is theirs
        recs = by_wa.get(event.wa_id)
        if not recs:
            tally.ignored += 1  # another tool's message, or one we no longer know
            continue
        for rec in recs:
            moved = _error(rec, tally) if event.ack == Ack.ERROR else _forward(rec, event, tally)
            if moved:
                changed[rec.id] = rec
    if changed:
        conn.execute(
            _WRITE_RECIPIENT,
            [
                {
                    "b_id": r.id,
                    "b_status": r.status,
                    "b_error": r.error,
                    "b_ack": r.ack,
                    "b_delivered": r.delivered_at,
                    "b_read": r.read_at,
                    "b_unconfirmed": r.unconfirmed,
                }
                for r in changed.values()
            ],
        )


def _forward(rec: _Rec, event: AckEvent, tally: _Tally) -> bool:
    """An ack of SERVER or later (or PENDING): it only ever moves a recipient forward."""
    level = int(event.ack)
    old = rec.ack
    if old is not None and level <= old:
        return False  # a duplicate, or one overtaken by a later ack
    counts = tally.counts[rec.campaign_id]
    rec.ack = level
    tally.acks += 1
    if level >= Ack.SERVER and (old is None or old < Ack.SERVER):
        counts.reset, counts.streak = True, 0  # WhatsApp accepts its messages again
        if rec.unconfirmed:
            rec.unconfirmed = False
            counts.unconfirmed -= 1
            tally.confirmed += 1
        if rec.status == RS.FAILED and rec.error == FAILED_BY_WHATSAPP:
            # Its ERROR came out of order: WhatsApp did take it after all.
            rec.status, rec.error = RS.SENT, None
            counts.sent += 1
            counts.failed -= 1
        elif rec.status == RS.UNKNOWN:
            # Its send's answer was lost (a timeout, a dropped connection), but WhatsApp
            # has the message: no longer ambiguous, and never to be sent again.
            rec.status, rec.error = RS.SENT, None
            counts.sent += 1
            counts.unknown -= 1
    if level >= Ack.DEVICE and rec.delivered_at is None:
        rec.delivered_at = event.at
        counts.delivered += 1
        tally.delivered += 1
    if level >= Ack.READ and rec.read_at is None:
        rec.read_at = event.at
        counts.read += 1
        tally.read += 1
    return True


def _error(rec: _Rec, tally: _Tally) -> bool:
    """ERROR: the send WAHA answered 201 for was refused after all. Only a `sent` (or
    `unknown`: its answer was lost) recipient that WhatsApp never acknowledged turns
    failed; anything else ignores it."""
    if rec.status not in (RS.SENT, RS.UNKNOWN) or (rec.ack is not None and rec.ack >= Ack.SERVER):
        return False
    counts = tally.counts[rec.campaign_id]
    if rec.status == RS.SENT:
        counts.sent -= 1
    else:
        counts.unknown -= 1
    rec.status, rec.error, rec.ack = RS.FAILED, FAILED_BY_WHATSAPP, int(Ack.ERROR)
    counts.failed += 1
    counts.streak += 1
    if rec.unconfirmed:  # failed now, not "unconfirmed"
        rec.unconfirmed = False
        counts.unconfirmed -= 1
    tally.failed += 1
    return True


# -- replies and opt-outs ------------------------------------------------------------------


def _apply_messages(
    store: Store,
    conn: Connection,
    messages: Sequence[MessageEvent],
    folded: frozenset[str],
    now: datetime,
    tally: _Tally,
) -> None:
    chats: dict[MessageEvent, str] = {}
    for m in messages:
        chat = personal(m.from_chat)
        if chat is not None:
            chats[m] = chat
        elif is_lid(m.from_chat):
            # A linked id hides the number: matching it to a recipient would be a guess.
            log.info(
                "session %s: a message from a linked id (%s) cannot be matched to a "
                "number: not counted as a reply%s",
                m.session,
                masked(m.from_chat.removesuffix("@lid")),
                ", and its opt-out could not be recorded" if is_optout(m.body, folded) else "",
            )
            tally.ignored += 1
        else:
            tally.ignored += 1  # a group, a broadcast, a newsletter: not a person's reply
    if not chats:
        return
    earliest = min(m.at for m in chats) - REPLY_WINDOW
    found: dict[str, list[Any]] = defaultdict(list)
    for chunk in chunks(sorted(set(chats.values())), CHUNK):
        query = (
            sa.select(
                R.c.id,
                R.c.campaign_id,
                R.c.phone,
                R.c.chat_id,
                R.c.sent_at,
                R.c.replied_at,
                # The session it went from: its own (a campaign with several sessions),
                # else its campaign's one.
                sa.func.coalesce(R.c.session, C.c.session).label("session"),
            )
            .join(C, C.c.id == R.c.campaign_id)
            .where(
                R.c.chat_id.in_(chunk),
                R.c.status == RS.SENT,
                R.c.sent_at >= earliest,
            )
            .order_by(R.c.id)
            .with_for_update(of=R)
        )
        for row in conn.execute(query):
            found[row.chat_id].append(row)
    replied: dict[int, tuple[datetime, str]] = {}  # recipient id -> the first reply
    entries: list[OptOutEntry] = []
    answered: dict[str, int | None] = {}
    for m, chat in chats.items():
        rows = [
            r
            for r in found.get(chat, ())
            if r.session == m.session and m.at - REPLY_WINDOW <= r.sent_at <= m.at + CLOCK_SLACK
        ]
        latest = max(rows, key=lambda r: (r.sent_at, r.id)) if rows else None
        optout = is_optout(m.body, folded)
        if latest is None and not optout:
            tally.ignored += 1  # not an answer to any campaign of ours
        elif latest is not None and latest.replied_at is None and latest.id not in replied:
            replied[latest.id] = (m.at, m.body)
            tally.counts[latest.campaign_id].replied += 1
            tally.replies += 1
        if optout:
            cid = latest.campaign_id if latest is not None else None
            # The number as our lists hold it (the recipient's phone: what a campaign is
            # created from and checked by) and, when check-exists corrected it, as WhatsApp
            # does (the chat's digits): either way it is never messaged again.
            numbers = [latest.phone] if latest is not None else []
            numbers += [n for n in [number(chat) or ""] if n not in numbers]
            for digits in numbers:
                try:
                    phone = normalise_phone(digits)
                except PhoneError:
                    log.warning(
                        "session %s: an opt-out from %s is not a phone number: not recorded",
                        m.session,
                        masked(digits),
                    )
                    continue
                entries.append(OptOutEntry(phone, "reply", m.body.strip(), cid))
                if digits == numbers[0]:
                    answered.setdefault(phone, cid)
    if replied:
        conn.execute(
            sa.update(R)
            .where(R.c.id == sa.bindparam("b_id"), R.c.replied_at.is_(None))
            .values(
                replied_at=sa.bindparam("b_at", type_=R.c.replied_at.type),
                reply_text=sa.bindparam("b_text", type_=sa.String),
            ),
            [{"b_id": rid, "b_at": at, "b_text": text} for rid, (at, text) in replied.items()],
        )
    if entries:
        for phone in store.insert_optouts(conn, entries, now=now):
            if phone not in answered:
                continue  # the same person's number in WhatsApp's shape: said once
            cid = answered[phone]
            tally.opted_out.append(OptedOut(phone, cid))
            where = f"campaign {cid}" if cid is not None else "no campaign of ours"
            log.info("%s: %s opted out by a reply", where, masked(phone))


# -- counters --------------------------------------------------------------------------------


# One statement for every campaign of a batch, built once: at thousands of acks a second a
# batch touches a hundred campaigns, and building an UPDATE each cost more than the SQL.
_WRITE_COUNTS = (
    sa.update(C)
    .where(C.c.id == sa.bindparam("b_id"))
    .values(
        sent=C.c.sent + sa.bindparam("b_sent", type_=sa.Integer),
        failed=C.c.failed + sa.bindparam("b_failed", type_=sa.Integer),
        unknown=C.c.unknown + sa.bindparam("b_unknown", type_=sa.Integer),
        delivered=C.c.delivered + sa.bindparam("b_delivered", type_=sa.Integer),
        read=C.c.read + sa.bindparam("b_read", type_=sa.Integer),
        unconfirmed=C.c.unconfirmed + sa.bindparam("b_unconfirmed", type_=sa.Integer),
        replied=C.c.replied + sa.bindparam("b_replied", type_=sa.Integer),
        # A reset starts the run of ERROR acks again (b_keep 0), else it goes on (1).
        ack_errors=C.c.ack_errors * sa.bindparam("b_keep", type_=sa.Integer)
        + sa.bindparam("b_streak", type_=sa.Integer),
    )
)


def _write_counts(store: Store, conn: Connection, tally: _Tally) -> None:
    """Each touched campaign's counters, in id order (a lock order every writer shares);
    a Running one paused when its ERROR acks in a row reach its limit."""
    ids = sorted(tally.counts)
    if not ids:
        return
    conn.execute(
        _WRITE_COUNTS,
        [
            {
                "b_id": cid,
                "b_sent": n.sent,
                "b_failed": n.failed,
                "b_unknown": n.unknown,
                "b_delivered": n.delivered,
                "b_read": n.read,
                "b_unconfirmed": n.unconfirmed,
                "b_replied": n.replied,
                "b_keep": 0 if n.reset else 1,
                "b_streak": n.streak,
            }
            for cid in ids
            for n in [tally.counts[cid]]
        ],
    )
    streaks = [cid for cid in ids if tally.counts[cid].streak]
    for chunk in chunks(streaks, CHUNK):
        # Already locked by the update above; one deleted meanwhile is simply not found.
        rows = conn.execute(
            sa.select(C.c.id, C.c.status, C.c.ack_errors, C.c.max_consecutive_failures)
            .where(C.c.id.in_(chunk))
            .order_by(C.c.id)
        )
        for row in rows.all():
            # The campaign's own limit of failures in a row, not a constant of ours: it is
            # the operator's one answer to "how many refusals before the campaign stops"
            # (0: never), and an ERROR ack is a send failure that WhatsApp reported late.
            limit = row.max_consecutive_failures
            if limit and row.ack_errors >= limit and row.status == S.RUNNING:
                # The status change every pause from another process makes: the runner
                # sees it at its next commit and stops there.
                store.transition_in(
                    conn,
                    row.id,
                    S.PAUSED,
                    expect=(S.RUNNING,),
                    entry=Entry(Kind.PAUSED, paused_reason(row.ack_errors)),
                    pause_reason=paused_reason(row.ack_errors),
                )
                tally.paused.append(row.id)


# -- unconfirmed --------------------------------------------------------------------------------


def flag_unconfirmed(
    store: Store,
    *,
    live_since: datetime,
    sessions_with_acks: set[str],
    older_than: timedelta = UNCONFIRMED_AFTER,
    now: datetime | None = None,
) -> int:
    """Flag `unconfirmed` every `sent` recipient with no SERVER (or later) ack `older_than`
    after its sent_at, of a campaign on a session acks are known to come from, sent while
    the event feed was live (`live_since`: when it last came up; the caller does not call
    while it is down). A later ack clears the flag (apply). Returns how many were flagged.
    Flagged recipients are never sent again by themselves: `campaign retry --unconfirmed`."""
    now = now or utcnow()
    cutoff = now - older_than
    if not sessions_with_acks or cutoff < live_since:
        return 0
    # Read first (a read waits for no writer), along the partial index of unacknowledged
    # sends by time; then flagged under the write lock, each condition checked again.
    # (No join: the index's condition names its columns bare, as the query must.)
    query = sa.select(R.c.id, R.c.campaign_id, R.c.session).where(
        UNACKED, R.c.sent_at >= live_since, R.c.sent_at <= cutoff
    )
    with store.read() as conn:
        rows = conn.execute(query).all()
        campaigns = sorted({row.campaign_id for row in rows})
        # Each campaign's session (a recipient of a campaign with several has its own).
        session_of: dict[int, str] = {
            row.id: row.session
            for chunk in chunks(campaigns, CHUNK)
            for row in conn.execute(sa.select(C.c.id, C.c.session).where(C.c.id.in_(chunk)))
        }
    found = sorted(
        row.id
        for row in rows
        if (row.session or session_of.get(row.campaign_id)) in sessions_with_acks
    )
    per: dict[int, int] = defaultdict(int)
    with store.write() as conn:
        for ids in chunks(found, CHUNK):
            flagged = conn.execute(
                sa.update(R)
                .where(R.c.id.in_(ids), UNACKED)
                .values(unconfirmed=True)
                .returning(R.c.campaign_id)
            ).scalars()
            for cid in flagged:
                per[cid] += 1
        for cid in sorted(per):
            conn.execute(
                sa.update(C).where(C.c.id == cid).values(unconfirmed=C.c.unconfirmed + per[cid])
            )
    for cid in sorted(per):
        log.warning(
            "campaign %s: %d sent message%s not confirmed by WhatsApp %d s after sending",
            cid,
            per[cid],
            "" if per[cid] == 1 else "s",
            older_than.total_seconds(),
        )
    return sum(per.values())
