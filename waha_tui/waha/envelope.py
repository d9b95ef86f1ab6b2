"""WAHA's events, read from their envelope (the same on the WebSocket and in a webhook):
`{id, timestamp, event, session, metadata, me, payload, engine, environment}` (OpenAPI
`WAHAWebhook*`). Only what waha-tui acts on is kept; anything else, or anything malformed,
is None: events come from outside and a bad one must never stop the feed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from waha_tui.waha.message_ids import bare

log = logging.getLogger(__name__)


class Ack(IntEnum):
    """WhatsApp's acknowledgement levels (WAMessageAckBody.ack). They only move forward."""

    ERROR = -1
    PENDING = 0
    SERVER = 1
    DEVICE = 2
    READ = 3
    PLAYED = 4


@dataclass(frozen=True)
class AckEvent:
    """`message.ack` (and `message.ack.group`) for a message we sent (fromMe)."""

    session: str
    wa_id: str  # message_ids.bare() of payload.id
    ack: Ack
    chat_id: str  # payload.to: whom it was sent to
    at: datetime


@dataclass(frozen=True)
class MessageEvent:
    """`message`: a message that arrived (not fromMe)."""

    session: str
    wa_id: str
    from_chat: str  # payload.from: a chat id (`<digits>@c.us`, `@s.whatsapp.net`, `@lid`, ...)
    body: str
    at: datetime


@dataclass(frozen=True)
class SessionStatusEvent:
    """`session.status`: a session's new status."""

    session: str
    status: str
    at: datetime


WahaEvent = AckEvent | MessageEvent | SessionStatusEvent


def parse(raw: str | bytes | dict[str, Any]) -> WahaEvent | None:
    """One envelope, as text from the socket or a webhook body, or already decoded."""
    if isinstance(raw, (str, bytes)):
        try:
            raw = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            log.debug("an event that is not JSON was left out")
            return None
    if not isinstance(raw, dict):
        return None
    event, session, payload = raw.get("event"), raw.get("session"), raw.get("payload")
    if not isinstance(event, str) or not isinstance(session, str) or not isinstance(payload, dict):
        return None
    at = _when(raw.get("timestamp"))
    if event in ("message.ack", "message.ack.group"):
        return _ack(session, payload, at)
    if event == "message":
        return _message(session, payload, at)
    if event == "session.status":
        status = payload.get("status")
        return SessionStatusEvent(session, status, at) if isinstance(status, str) else None
    return None


def _ack(session: str, payload: dict[str, Any], at: datetime) -> AckEvent | None:
    ident, level, to = payload.get("id"), payload.get("ack"), payload.get("to")
    if payload.get("fromMe") is False:
        return None  # the ack of a message someone sent us: not ours to count
    if not isinstance(ident, str) or not ident or isinstance(level, bool):
        return None
    try:
        ack = Ack(int(level))  # type: ignore[arg-type]  # checked by the except below
    except (TypeError, ValueError):
        return None
    return AckEvent(session, bare(ident), ack, to if isinstance(to, str) else "", at)


def _message(session: str, payload: dict[str, Any], at: datetime) -> MessageEvent | None:
    ident, sender, body = payload.get("id"), payload.get("from"), payload.get("body")
    if payload.get("fromMe") is not False:
        return None  # ours (sent from the phone or the API), or unknown: not a reply
    if not isinstance(ident, str) or not isinstance(sender, str) or not sender:
        return None
    text = body if isinstance(body, str) else ""
    return MessageEvent(session, bare(ident), sender, text, at)


def _when(stamp: Any) -> datetime:
    """The envelope's timestamp (milliseconds); now when it has none."""
    if isinstance(stamp, (int, float)) and not isinstance(stamp, bool) and stamp > 0:
        try:
            return datetime.fromtimestamp(stamp / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    return datetime.now(UTC)
