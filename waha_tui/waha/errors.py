"""Typed WAHA errors, one per thing the runner can act on differently."""

from __future__ import annotations

from waha_tui.errors import UserError


class WahaError(UserError):
    """Anything that went wrong talking to WAHA. Messages never contain the API key."""

    status_code: int | None = None

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class Unauthorized(WahaError):
    """401: the API key is missing or wrong."""


class SessionNotFound(WahaError):
    """404 naming a session: the session does not exist on this WAHA server."""

    def __init__(self, message: str, *, session: str | None = None) -> None:
        super().__init__(message, status_code=404)
        self.session = session


class SessionNotWorking(WahaError):
    """422 with expected ["WORKING"]: the session exists but cannot send now."""

    def __init__(self, message: str, *, session: str | None, status: str | None) -> None:
        super().__init__(message, status_code=422)
        self.session = session
        self.status = status


class RecipientRejected(WahaError):
    """Any other 4xx: WAHA refused this request (bad chat id, unsupported, ...)."""


class ServerError(WahaError):
    """5xx: an engine or WhatsApp failure; keeps WhatsApp's own message."""


class Unreachable(WahaError):
    """Could not connect: the request never left, so it is safe to retry."""


class Ambiguous(WahaError):
    """Timeout or connection lost after the request was sent: it may have been delivered."""


class BadResponse(WahaError):
    """WAHA answered something that is not a WAHA answer (HTML, invalid JSON, oversized)."""
