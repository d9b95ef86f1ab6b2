"""WAHA (WhatsApp HTTP API) client: the only code that talks to a WAHA server."""

from waha_tui.waha.client import (
    SendResult,
    SessionInfo,
    Timeouts,
    WahaClient,
    extract_message_id,
)
from waha_tui.waha.envelope import Ack, AckEvent, MessageEvent, SessionStatusEvent, WahaEvent
from waha_tui.waha.errors import (
    BadResponse,
    GatewayError,
    NoAnswer,
    Refused,
    ServerError,
    SessionMissing,
    SessionNotWorking,
    SessionUnavailable,
    Unauthorized,
    Unreachable,
    WahaError,
)
from waha_tui.waha.feed import Backoff, EventFeed, FeedState, events_url
from waha_tui.waha.message_ids import bare

__all__ = [
    "Ack",
    "AckEvent",
    "Backoff",
    "BadResponse",
    "EventFeed",
    "FeedState",
    "GatewayError",
    "MessageEvent",
    "NoAnswer",
    "Refused",
    "SendResult",
    "ServerError",
    "SessionInfo",
    "SessionMissing",
    "SessionNotWorking",
    "SessionStatusEvent",
    "SessionUnavailable",
    "Timeouts",
    "Unauthorized",
    "Unreachable",
    "WahaClient",
    "WahaError",
    "WahaEvent",
    "bare",
    "events_url",
    "extract_message_id",
]
