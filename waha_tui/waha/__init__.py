"""WAHA (WhatsApp HTTP API) client: the only code that talks to a WAHA server."""

from waha_tui.waha.client import (
    SendResult,
    SessionInfo,
    Timeouts,
    WahaClient,
    extract_message_id,
)
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

__all__ = [
    "BadResponse",
    "GatewayError",
    "NoAnswer",
    "Refused",
    "SendResult",
    "ServerError",
    "SessionInfo",
    "SessionMissing",
    "SessionNotWorking",
    "SessionUnavailable",
    "Timeouts",
    "Unauthorized",
    "Unreachable",
    "WahaClient",
    "WahaError",
    "extract_message_id",
]
