"""Typed WAHA errors, and the one function that turns an HTTP answer into one of them.

The class says what kind of answer it was (by status code, route and whether the body is
WAHA's own JSON); WAHA's message text only words the error. What an error *means* for a
campaign (pause, fail the recipient, retry, ambiguous) is decided in one place,
`waha_tui.runner.policy`.
"""

from __future__ import annotations

from typing import Any

from waha_tui.errors import UserError

# Where the key comes from, said wherever WAHA refuses it: the flag and the environment.
CHECK_API_KEY = "check --api-key or WAHA_API_KEY"
# Routes whose success delivers a WhatsApp message: only there is a lost answer ambiguous.
SEND_ROUTES = frozenset({"/api/sendText", "/api/sendImage", "/api/sendFile"})


def is_send(path: str) -> bool:
    return path.split("?", 1)[0] in SEND_ROUTES


def is_session_route(path: str) -> bool:
    """`/api/sessions/{s}[/action]`: WAHA answers 404 "Session not found" there when the
    session does not exist. Message routes answer 404 both for a missing and a stopped one."""
    return path.startswith("/api/sessions/")


class WahaError(UserError):
    """Anything that went wrong talking to WAHA. Messages never contain the API key."""

    status_code: int | None = None

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        route: str = "",
        detail: str = "",
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.route = route  # "POST /api/sendText"
        self.detail = detail  # WAHA's own message (or the start of the body), for wording


class Unauthorized(WahaError):
    """401 or 403: the API key is missing, wrong, or not allowed to do this."""


class SessionMissing(WahaError):
    """404 on a session route: WAHA has no session of that name."""

    def __init__(self, message: str, *, session: str, **kw: Any) -> None:
        super().__init__(message, status_code=404, **kw)
        self.session = session


class SessionUnavailable(WahaError):
    """404 with WAHA's body on a message route: the session is missing *or* stopped (WAHA
    says the same for both); ask `GET /api/sessions/{s}` which."""

    def __init__(self, message: str, *, session: str, **kw: Any) -> None:
        super().__init__(message, status_code=404, **kw)
        self.session = session


class SessionNotWorking(WahaError):
    """422 with `expected`: the session exists but is not in the status the call needs."""

    def __init__(
        self, message: str, *, session: str, status: str, expected: list[str], **kw: Any
    ) -> None:
        super().__init__(message, status_code=422, **kw)
        self.session, self.status, self.expected = session, status, expected


class Refused(WahaError):
    """Any other 4xx: WAHA (or a proxy in front of it) refused the request; the status
    code says why (400 a bad field of this request, 413 too large, 429 too many, ...)."""


class ServerError(WahaError):
    """5xx with WAHA's own JSON body: an engine or WhatsApp failure WAHA reported."""


class GatewayError(WahaError):
    """5xx without WAHA's JSON body: a proxy's page (502, 504, ...). Whether WAHA carried
    the request out is not known."""


class Unreachable(WahaError):
    """Could not connect: the request never left, so it is safe to retry."""


class NoAnswer(WahaError):
    """A timeout or a connection lost after the request was sent: for a send, the message
    may have gone out."""


class BadResponse(WahaError):
    """WAHA answered something that is not a WAHA answer (HTML with 2xx, invalid JSON,
    oversized, a redirect)."""


def waha_body(status: int, body: Any) -> bool:
    """WAHA's own error JSON (NestJS's `{statusCode, message, error}`, its exception filter's
    `{statusCode, exception, ...}`, or the status-wait `{error, session, status, expected}`),
    as opposed to a proxy's page or nothing."""
    if not isinstance(body, dict):
        return False
    if body.get("statusCode") == status or isinstance(body.get("exception"), dict):
        return True
    return isinstance(body.get("expected"), list) and "status" in body


def error_message(body: Any, text: str) -> str:
    """WAHA's message from an error body, or the start of the text of any other body."""
    if isinstance(body, dict):
        exc = body.get("exception")
        if isinstance(exc, dict) and exc.get("message"):
            return str(exc["message"])
        msg = body.get("message")
        if isinstance(msg, list):
            return "; ".join(str(m) for m in msg)
        if msg:
            return str(msg)
        if body.get("error"):
            return str(body["error"])
    snippet = " ".join(text.split())[:200]
    return snippet or "no details"


def error_for(
    method: str, path: str, status: int, body: Any, text: str, *, session: str | None = None
) -> WahaError:
    """The error for a non-2xx answer. `session` is the session the request was about."""
    route = f"{method} {path.split('?', 1)[0]}"
    detail = error_message(body, text)
    ours = waha_body(status, body)
    kw: dict[str, Any] = {"route": route, "detail": detail}
    name = session or "default"
    if status in (401, 403):
        return Unauthorized(
            f"WAHA refused the API key (HTTP {status}) for {route}: {CHECK_API_KEY}",
            status_code=status,
            **kw,
        )
    if status == 404 and ours and session is not None:
        if is_session_route(path):
            return SessionMissing(f"WAHA has no session named '{name}'", session=name, **kw)
        return SessionUnavailable(
            f"session '{name}' is not available at WAHA (missing or not started)",
            session=name,
            **kw,
        )
    if status == 422 and isinstance(body, dict) and isinstance(body.get("expected"), list):
        actual = str(body.get("status") or "UNKNOWN")
        expected = [str(e) for e in body["expected"]]
        return SessionNotWorking(
            f"session '{body.get('session') or name}' is {actual}, not {'/'.join(expected)}",
            session=str(body.get("session") or name),
            status=actual,
            expected=expected,
            **kw,
        )
    if 400 <= status < 500:
        return Refused(f"WAHA refused {route} (HTTP {status}): {detail}", status_code=status, **kw)
    if status >= 500 and ours:
        return ServerError(f"WAHA error (HTTP {status}): {detail}", status_code=status, **kw)
    if status >= 500:
        return GatewayError(
            f"HTTP {status} from WAHA or a proxy in front of it for {route}, without WAHA's "
            f"answer ({detail})",
            status_code=status,
            **kw,
        )
    return BadResponse(f"WAHA answered {route} with HTTP {status}", status_code=status, **kw)
