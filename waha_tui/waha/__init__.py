"""WAHA (WhatsApp HTTP API) client: the only code that talks to a WAHA server."""

from waha_tui.waha.client import SessionInfo, Timeouts, WahaClient, extract_message_id
from waha_tui.waha.errors import (
    Ambiguous,
    BadResponse,
    RecipientRejected,
    ServerError,
    SessionNotFound,
    SessionNotWorking,
    Unauthorized,
    Unreachable,
    WahaError,
)

__all__ = [
    "Ambiguous",
    "BadResponse",
    "RecipientRejected",
    "ServerError",
    "SessionInfo",
    "SessionNotFound",
    "SessionNotWorking",
    "Timeouts",
    "Unauthorized",
    "Unreachable",
    "WahaClient",
    "WahaError",
    "extract_message_id",
]
