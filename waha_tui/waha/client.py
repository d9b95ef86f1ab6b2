"""Async WAHA client over httpx, following WAHA's OpenAPI spec (2026.7.2).

Every failure is turned into one of the typed errors in `waha_tui.waha.errors`, so the
runner can decide between retrying, pausing and failing a single recipient.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import os
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from waha_tui.errors import UserError
from waha_tui.secret import Secret
from waha_tui.waha.errors import (
    BadResponse,
    NoAnswer,
    Unreachable,
    WahaError,
    error_for,
    is_send,
)

# httpcore asks for `import sniffio` on every request, and anyio no longer installs it:
# each failed import searched sys.path again (~70 µs, a few times per request, on the
# path of every message). A None in sys.modules makes that import fail at once instead.
if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]

KNOWN_STATUSES = ("STOPPED", "STARTING", "SCAN_QR_CODE", "WORKING", "FAILED")
MAX_BODY_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class Timeouts:
    """WAHA's NOWEB engine can hang forever on a malformed chatId: never wait unbounded."""

    connect: float = 5.0
    read: float = 30.0
    write: float = 10.0
    pool: float = 5.0

    def to_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


@dataclass(frozen=True)
class SessionInfo:
    name: str
    status: str  # kept as WAHA sent it: new statuses appear in new releases
    me_id: str | None = None
    me_push_name: str | None = None
    engine: str | None = None
    # WhatsApp's reach-out timelock (the cause of error 463): active now, and when it ends
    # (me.reachoutTimelock, WAHA >= 2026; None when WAHA does not say).
    timelocked: bool = False
    timelock_until: datetime | None = None

    @property
    def working(self) -> bool:
        return self.status == "WORKING"

    @property
    def number(self) -> str | None:
        """The linked phone's number, me.id's digits ("15550000000"; NOWEB may add
        ":<device>"), or None while no phone is linked (no `me` yet)."""
        if not self.me_id:
            return None
        digits = self.me_id.split("@", 1)[0].split(":", 1)[0]
        return digits if digits.isdecimal() else None

    @classmethod
    def from_json(cls, data: Any) -> SessionInfo:
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise BadResponse("WAHA answered a session without a name")
        me = data.get("me")
        if not isinstance(me, dict):
            me = {}
        engine = data.get("engine")
        lock = me.get("reachoutTimelock")
        if not isinstance(lock, dict):
            lock = {}
        locked = lock.get("isActive") is True
        ends = lock.get("timeEnforcementEnds") if locked else None
        until = None
        if isinstance(ends, int | float) and not isinstance(ends, bool) and ends > 0:
            with contextlib.suppress(OverflowError, OSError, ValueError):
                until = datetime.fromtimestamp(ends, UTC)  # Unix seconds (the spec)
        return cls(
            name=data["name"],
            status=str(data.get("status") or "UNKNOWN"),
            me_id=me.get("id"),
            me_push_name=me.get("pushName"),
            engine=engine.get("engine") if isinstance(engine, dict) else None,
            timelocked=locked,
            timelock_until=until,
        )


@dataclass(frozen=True)
class SendResult:
    message_id: str | None
    body: Any = field(default=None, repr=False)


def extract_message_id(body: Any) -> str | None:
    """Each engine answers a send in its own shape (WAHA #760); take the id where it is."""
    if not isinstance(body, dict):
        return None
    ident = body.get("id")
    if isinstance(ident, str) and ident:
        return ident
    serialized = _str_at(ident, "_serialized")
    if serialized is not None:
        return serialized
    data = body.get("_data")
    if isinstance(data, dict):
        serialized = _str_at(data.get("id"), "_serialized")
        if serialized is not None:
            return serialized
    return _str_at(body.get("key"), "id")


def _str_at(value: object, key: str) -> str | None:
    """`value[key]` when `value` is a JSON object and that member is a string, else None."""
    if isinstance(value, dict):
        found = value.get(key)
        if isinstance(found, str):
            return found
    return None


def validate_base_url(url: str) -> str:
    """Check a WAHA base URL up front, so a typo is one clear line and not an httpx trace."""
    shown = _redact_url(url)
    if not isinstance(url, str) or not url.strip():
        raise UserError("WAHA URL is empty: expected http://host:port")
    url = url.strip()
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise UserError(f"WAHA URL {shown!r} contains spaces or control characters")
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise UserError(f"WAHA URL {shown!r} is not valid: expected http://host:port") from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise UserError(f"WAHA URL {shown!r} is not valid: expected http://host:port")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise UserError(f"WAHA URL {shown!r} has an invalid port") from None
    if parts.username is not None or parts.password is not None:
        raise UserError(
            f"WAHA URL {shown!r} must not contain credentials: pass the API key with "
            "--api-key or WAHA_API_KEY"
        )
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise UserError(
            f"WAHA URL {shown!r} must not contain a query string or fragment: pass the API key "
            "with --api-key or WAHA_API_KEY"
        )
    try:
        httpx.URL(url)
    except httpx.InvalidURL:
        raise UserError(f"WAHA URL {shown!r} is not valid: expected http://host:port") from None
    return url.rstrip("/")


def _redact_url(url: object) -> str:
    """The URL without anything that may hold a secret (credentials, query, fragment)."""
    if not isinstance(url, str):
        return "<not a string>"
    text = url.strip().split("?", 1)[0].split("#", 1)[0]
    scheme, sep, rest = text.partition("://")
    if sep:
        authority, slash, path = rest.partition("/")
        if "@" in authority:
            authority = "***@" + authority.rsplit("@", 1)[1]
        text = f"{scheme}{sep}{authority}{slash}{path}"
    elif "@" in text:
        text = "***@" + text.rsplit("@", 1)[1]
    return text


def _check_api_key(key: Secret) -> None:
    # httpx would fail with an encoding error that carries the key itself, or h11 would
    # refuse the header only when the first request is sent.
    if any(not 0x20 <= ord(ch) <= 0x7E for ch in key.reveal()):
        raise UserError(
            "the WAHA API key contains characters that cannot be sent in an HTTP header "
            "(only printable ASCII is allowed)"
        )


# Connections per WAHA session (a send, its next id, a session check and the dashboard's
# poll may be out at once), and for the requests about no session.
SESSION_CONNECTIONS = 8
SHARED_CONNECTIONS = 20
_SESSION = "waha_tui.session"  # the request extension that names the session's pool


class _PoolPerSession(httpx.AsyncBaseTransport):
    """A connection pool per WAHA session, and one for the rest.

    One process may run a campaign on each of hundreds of sessions, each with a send on
    the wire. In one pool of 20 connections the sends queue (one queued past the pool
    timeout reads as WAHA unreachable); in one pool of hundreds, httpcore looks over every
    connection at each request, which cost a 200-session run more than its sends. Each
    session sends one message at a time, so its own pool stays a few connections."""

    def __init__(self, limits: httpx.Limits, shared: httpx.Limits) -> None:
        self._limits = limits
        # One TLS context for every pool: each of its own read the CA bundle (25 ms, on
        # the event loop, at each session's first request).
        self._tls = httpx.create_ssl_context()
        self._shared = httpx.AsyncHTTPTransport(verify=self._tls, limits=shared)
        self._pools: dict[str, httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = request.extensions.get(_SESSION)
        if session is None:
            return await self._shared.handle_async_request(request)
        pool = self._pools.get(session)
        if pool is None:
            pool = httpx.AsyncHTTPTransport(verify=self._tls, limits=self._limits)
            self._pools[session] = pool
        return await pool.handle_async_request(request)

    async def aclose(self) -> None:
        for pool in [self._shared, *self._pools.values()]:
            await pool.aclose()
        self._pools.clear()


class WahaClient:
    """One per process: holds the single httpx.AsyncClient and its connection pool."""

    def __init__(
        self,
        base_url: str = "http://localhost:3000",
        api_key: Secret | str | None = None,
        *,
        timeouts: Timeouts | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.base_url = validate_base_url(base_url)
        key = api_key if isinstance(api_key, Secret) or api_key is None else Secret(api_key)
        headers = {"Accept": "application/json"}
        if key:
            _check_api_key(key)
            headers["X-Api-Key"] = key.reveal()
        self._api_key: Secret | None = key or None
        self.timeouts = timeouts or Timeouts()
        self.max_body_bytes = max_body_bytes
        # Per session: True once it handed out a pre-generated id, False once the runner
        # learnt it has none (a server before 2026.4.3, or an engine without them).
        self._message_ids: dict[str, bool] = {}
        self._numbers: dict[str, str] = {}  # session -> me.id's digits, as last seen
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=self.timeouts.to_httpx(),
            transport=transport
            or _PoolPerSession(
                # Keep-alive shorter than uvicorn's and WAHA's, so a pooled connection is
                # never reused just as the server closes it (a send would look ambiguous).
                httpx.Limits(max_connections=SESSION_CONNECTIONS, keepalive_expiry=4.0),
                httpx.Limits(max_connections=SHARED_CONNECTIONS, keepalive_expiry=4.0),
            ),
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"WahaClient({self.base_url!r})"

    @property
    def api_key(self) -> Secret | None:
        """The key this client sends (a Secret: never shown), for the event feed."""
        return self._api_key

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> WahaClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- transport ---------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        session: str | None = None,
    ) -> tuple[int, Any]:
        """One call; `what` words its errors ("sending a message", "checking session 'x'"),
        `session` is the session it is about (for the errors' classification)."""
        where = f"{method} {path} ({what})"
        try:
            # Each session's requests in a pool of its own (_PoolPerSession).
            extensions = {_SESSION: session} if session is not None else None
            async with self._http.stream(
                method, path, json=json_body, params=params, extensions=extensions
            ) as resp:
                declared = _content_length(resp.headers.get("content-length"))
                if declared is not None and declared > self.max_body_bytes:
                    raise self._oversized(where, resp.status_code, declared)
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_body_bytes:
                        raise self._oversized(where, resp.status_code, None)
                    chunks.append(chunk)
                raw = b"".join(chunks)
                status = resp.status_code
                content_type = resp.headers.get("content-type", "")
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            why = _said(exc) or "no connection"
            raise Unreachable(
                f"WAHA at {self.base_url} is unreachable ({why})", route=f"{method} {path}"
            ) from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL):
            raise UserError(f"WAHA URL {_redact_url(self.base_url)!r} is not valid") from None
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            if isinstance(exc, httpx.TimeoutException):
                lost = f"WAHA gave no answer within {self.timeouts.read:g} s for {where}"
            else:
                why = f" ({_said(exc)})" if _said(exc) else ""
                lost = f"the connection to WAHA was lost{why} during {where}"
            # Only a send can have been "carried out" in a way that matters twice.
            tail = "; the message may have been sent" if is_send(path) else ""
            raise NoAnswer(f"{lost}{tail}", route=f"{method} {path}") from None
        except httpx.DecodingError:
            raise BadResponse(
                f"WAHA answered {where} with a body that could not be decoded "
                "(bad Content-Encoding); is WAHA_URL pointing at WAHA?",
                route=f"{method} {path}",
            ) from None
        body = self._decode(raw, content_type, status, where)
        if 200 <= status < 300:
            return status, body
        raise self._error(method, path, status, body, raw, session)

    def _oversized(self, where: str, status: int, size: int | None) -> BadResponse:
        limit = f"the {_megabytes(self.max_body_bytes)} MB limit"
        got = (
            f"a {_megabytes(size)} MB body, over {limit}"
            if size is not None
            else f"a body over {limit}"
        )
        return BadResponse(
            f"WAHA answered {where} with {got}; is WAHA_URL pointing at WAHA?",
            status_code=status,
        )

    @staticmethod
    def _decode(raw: bytes, content_type: str, status: int, where: str) -> Any:
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):  # bad UTF-8, invalid or absurdly nested JSON
            if 200 <= status < 300:
                kind = content_type.split(";")[0] or "unknown content"
                raise BadResponse(
                    f"WAHA answered {where} with non-JSON ({kind}, HTTP {status}); "
                    "is WAHA_URL pointing at WAHA?",
                    status_code=status,
                ) from None
            return None  # an error status with an HTML page: the status says enough

    def _error(
        self, method: str, path: str, status: int, body: Any, raw: bytes, session: str | None
    ) -> WahaError:
        text = raw[:500].decode("utf-8", "replace")
        exc = error_for(method, path, status, body, text, session=session)
        key = self._api_key.reveal() if self._api_key else ""
        if len(key) >= 4 and (key in str(exc) or key in exc.detail):
            # A proxy may echo the request, headers and all, back in its page.
            exc.args = (str(exc).replace(key, "***"),)
            exc.detail = exc.detail.replace(key, "***")
        return exc

    # -- server ------------------------------------------------------------------------

    async def ping(self) -> bool:
        _, body = await self._request("GET", "/ping", what="pinging WAHA")
        return isinstance(body, dict) and body.get("message") == "pong"

    async def server_version(self, path: str = "/api/server/version") -> dict[str, Any]:
        """`path`: /api/server/version, or /api/version (deprecated, older servers)."""
        _, body = await self._request("GET", path, what="asking WAHA's version")
        if not isinstance(body, dict):
            raise BadResponse(f"WAHA answered {path} without a JSON object")
        return body

    # -- sessions ----------------------------------------------------------------------

    async def list_sessions(self) -> list[SessionInfo]:
        _, body = await self._request(
            "GET", "/api/sessions", params={"all": "true"}, what="listing the sessions"
        )
        if not isinstance(body, list):
            raise BadResponse("WAHA answered /api/sessions without a JSON array")
        return [self._seen(SessionInfo.from_json(item)) for item in body]

    async def get_session(self, session: str) -> SessionInfo:
        _, body = await self._request(
            "GET",
            f"/api/sessions/{_seg(session)}",
            what=f"checking session '{session}'",
            session=session,
        )
        return self._seen(SessionInfo.from_json(body))

    async def create_session(self, session: str, *, start: bool = True) -> SessionInfo:
        _, body = await self._request(
            "POST",
            "/api/sessions",
            json_body={"name": session, "start": start},
            what=f"creating session '{session}'",
            session=session,
        )
        return SessionInfo.from_json(body)

    async def _session_action(self, session: str, action: str) -> SessionInfo:
        _, body = await self._request(
            "POST",
            f"/api/sessions/{_seg(session)}/{action}",
            what=f"{_ACTIONS[action]} session '{session}'",
            session=session,
        )
        return SessionInfo.from_json(body)

    async def start_session(self, session: str) -> SessionInfo:
        return await self._session_action(session, "start")

    async def stop_session(self, session: str) -> SessionInfo:
        return await self._session_action(session, "stop")

    async def restart_session(self, session: str) -> SessionInfo:
        return await self._session_action(session, "restart")

    async def logout_session(self, session: str) -> SessionInfo:
        return await self._session_action(session, "logout")

    async def get_qr_value(self, session: str) -> str:
        # Not under /api/sessions: the real path is /api/{session}/auth/qr.
        _, body = await self._request(
            "GET",
            f"/api/{_seg(session)}/auth/qr",
            params={"format": "raw"},
            what=f"fetching the QR code of session '{session}'",
            session=session,
        )
        value = _str_at(body, "value")
        if value is None:
            raise BadResponse("WAHA answered the QR request without a value")
        return value

    async def request_pairing_code(self, session: str, phone: str) -> str:
        _, body = await self._request(
            "POST",
            f"/api/{_seg(session)}/auth/request-code",
            json_body={"phoneNumber": phone},
            what=f"requesting a pairing code for session '{session}'",
            session=session,
        )
        code = _str_at(body, "code")
        if code is None:
            raise BadResponse("WAHA answered the pairing-code request without a code")
        return code

    # -- sending -----------------------------------------------------------------------

    async def send_text(
        self, session: str, chat_id: str, text: str, *, message_id: str | None = None
    ) -> SendResult:
        payload: dict[str, Any] = {"session": session, "chatId": chat_id, "text": text}
        if message_id:
            payload["id"] = message_id
        _, body = await self._request(
            "POST", "/api/sendText", json_body=payload, what="sending a message", session=session
        )
        return SendResult(extract_message_id(body), body)

    async def send_image(
        self,
        session: str,
        chat_id: str,
        *,
        caption: str,
        data: bytes,
        mimetype: str,
        filename: str | None = None,
    ) -> SendResult:
        file: dict[str, Any] = {"mimetype": mimetype, "data": base64.b64encode(data).decode()}
        if filename:
            file["filename"] = filename
        payload = {"session": session, "chatId": chat_id, "caption": caption, "file": file}
        _, body = await self._request(
            "POST", "/api/sendImage", json_body=payload, what="sending an image", session=session
        )
        return SendResult(extract_message_id(body), body)

    async def send_seen(self, session: str, chat_id: str) -> None:
        """Mark the chat's messages read (WAHA's SendSeenRequest: without messageIds, all
        of them), as a person opens a chat before typing in it."""
        await self._request(
            "POST",
            "/api/sendSeen",
            json_body={"session": session, "chatId": chat_id},
            what="marking the chat read",
            session=session,
        )

    async def start_typing(self, session: str, chat_id: str) -> None:
        await self._request(
            "POST",
            "/api/startTyping",
            json_body={"session": session, "chatId": chat_id},
            what="showing typing",
            session=session,
        )

    async def stop_typing(self, session: str, chat_id: str) -> None:
        await self._request(
            "POST",
            "/api/stopTyping",
            json_body={"session": session, "chatId": chat_id},
            what="stopping typing",
            session=session,
        )

    def _seen(self, info: SessionInfo) -> SessionInfo:
        if info.number:
            self._numbers[info.name] = info.number
        return info

    def number(self, session: str) -> str | None:
        """The number `session` was last seen linked to (me.id's digits), by any session
        read of this client; None until one was seen with `me`."""
        return self._numbers.get(session)

    def message_ids(self, session: str) -> bool | None:
        """Whether `session` hands out pre-generated ids: None until known."""
        return self._message_ids.get(session)

    def no_message_ids(self, session: str) -> None:
        """Remember that `session` has no pre-generated ids (asked once, not per message)."""
        self._message_ids[session] = False

    async def new_message_id(self, session: str) -> str:
        """A pre-generated id (WAHA >= 2026.4.3, NOWEB and GOWS). A server or engine
        without them answers 404 or 422: what that means is the runner's policy's call."""
        _, body = await self._request(
            "GET",
            f"/api/{_seg(session)}/new-message-id",
            what=f"fetching a message id from session '{session}'",
            session=session,
        )
        message_id = _str_at(body, "id")
        if message_id is None:
            raise BadResponse("WAHA answered new-message-id without an id")
        self._message_ids[session] = True
        return message_id

    async def check_exists(self, session: str, phone: str) -> tuple[bool, str | None]:
        _, body = await self._request(
            "GET",
            "/api/contacts/check-exists",
            params={"phone": phone, "session": session},
            what="checking a number on WhatsApp",
            session=session,
        )
        if not isinstance(body, dict) or "numberExists" not in body:
            raise BadResponse("WAHA answered check-exists without numberExists")
        return bool(body["numberExists"]), body.get("chatId")


_ACTIONS = {
    "start": "starting",
    "stop": "stopping",
    "restart": "restarting",
    "logout": "logging out",
}


def _content_length(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".removesuffix(".0")


def _seg(value: str) -> str:
    return quote(value, safe="")


__all__ = ["SendResult", "SessionInfo", "Timeouts", "WahaClient", "WahaError", "extract_message_id"]


_ERRNO = re.compile(r"^\[Errno -?\d+\]\s*")


def _said(exc: BaseException) -> str:
    """What a transport error says, in words ("connection refused", "server disconnected
    without sending a response"): never its class name, which means nothing to an operator.
    The operating system's reason first, when there is one below it."""
    text = _ERRNO.sub("", " ".join(str(exc).split()))
    seen: BaseException | None = exc
    for _ in range(10):  # a chain, never a loop
        if seen is None:
            break
        if isinstance(seen, OSError):
            # asyncio words a refusal "Connect call failed (...)": the errno says it plainly.
            if seen.errno is not None and seen.errno > 0:
                text = os.strerror(seen.errno)
                break
            if seen.strerror:
                text = seen.strerror
                break
        seen = seen.__cause__ or seen.__context__
    text = text.rstrip(".")
    return text[:1].lower() + text[1:]
