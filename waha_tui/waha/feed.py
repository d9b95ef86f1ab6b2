"""WAHA's event feed: one WebSocket to `/ws?session=*&events=*`, kept open.

What arrives (acks, replies, session status) is read by `envelope.parse` and handed over in
batches to `on_events`, on the event loop: whatever frames are ready at once go in one
call, so the consumer can write them in one transaction. The connection comes back by
itself (exponential backoff with full jitter); a server that refuses our request (WAHA
Core 2024.10.8's close 4001, or the API key) is asked again only every few minutes. Its
state goes to `on_state` on every change, worded for the dashboard (`FeedState.line`).

The API key: WAHA reads it for `/ws` only from the `x-api-key` query parameter (its
WebSocketAuth; the X-Api-Key header is not looked at). The feed sends the header, and puts
the key in the URL only when WAHA refused it without (`key_in_query=None`, the default),
always (`True`), or never (`False`). That URL never reaches a log, an exception or a state.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import random
import socket
import ssl
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.frames import Close

from waha_tui.printable import printable
from waha_tui.secret import Secret, redact
from waha_tui.waha.client import _check_api_key, validate_base_url
from waha_tui.waha.envelope import AckEvent, WahaEvent, parse

log = logging.getLogger(__name__)

Phase = Literal["connecting", "live", "down", "refused"]
# WAHA closes what it will not serve right after the handshake: 1008 for the key
# ("Unauthorized", or "Forbidden" for a key scoped to another session), 4001 for the
# parameters on Core 2024.10.8 (reason: {"error": ...}).
POLICY_VIOLATION = 1008
REFUSED_PARAMETERS = 4001
MAX_FRAME = 16 * 1024 * 1024  # a message event may carry a media's base64
MAX_REASON = 160  # characters of WAHA's words kept in a state line
# WAHA accepts every handshake and closes at once what it will not serve (the key, 4001):
# the socket is live only once it stayed open this long (or brought an event).
SETTLE = 0.25


def _span(seconds: float) -> str:
    """12s, 4m, 2h 5m: a duration to the precision a glance needs."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m"
    return f"{whole // 3600}h {whole % 3600 // 60}m"


@dataclass(frozen=True)
class FeedState:
    """Where the feed stands: `phase` since `since` (UTC); `reason` says why it is down or
    refused, `next_try` when it connects again."""

    phase: Phase
    since: datetime
    reason: str = ""
    next_try: datetime | None = None

    def line(self, now: datetime | None = None) -> str:
        """`events: live`, `events: down 12s (connection refused), retry in 4s`, ..."""
        now = now or datetime.now(UTC)
        retry = ""
        if self.next_try is not None:
            left = (self.next_try - now).total_seconds()
            retry = f", retry in {_span(left)}" if left >= 0.5 else ", retrying"
        if self.phase == "live":
            return "events: live"
        if self.phase == "down":
            down_for = _span((now - self.since).total_seconds())
            return f"events: down {down_for} ({self.reason}){retry}"
        if self.phase == "refused":
            return f"events: refused by WAHA ({self.reason}){retry}"
        return "events: connecting"

    def __str__(self) -> str:
        return self.line()


@dataclass(frozen=True)
class Backoff:
    """Reconnection delays: full jitter over `initial` doubling to `cap`; back to `initial`
    after a connection that stayed up `stable` seconds. A refusal waits `refused`."""

    initial: float = 0.5
    cap: float = 30.0
    stable: float = 60.0
    refused: float = 300.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0, min(self.cap, self.initial * 2 ** min(attempt, 30)))


@dataclass(frozen=True)
class _Outcome:
    """How one connection ended: `refused` (not to be retried soon) or down, and why."""

    reason: str
    refused: bool = False
    unauthorized: bool = False  # refused for the key: worth one try with it in the URL


def events_url(base_url: str, key: str | None = None, events: tuple[str, ...] = ("*",)) -> str:
    """`ws(s)://<host>[/prefix]/ws?session=*&events=*` from WAHA's base URL (one `events`
    parameter per name); with `key`, the `x-api-key` parameter too (a URL that must never
    be shown)."""
    parts = urlsplit(validate_base_url(base_url))
    scheme = "wss" if parts.scheme == "https" else "ws"
    query = "session=*" + "".join(f"&events={quote(e, safe='*')}" for e in events)
    if key:
        query += f"&x-api-key={quote(key, safe='')}"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws", query, ""))


class ProtocolLog(logging.LoggerAdapter[logging.Logger]):
    """websockets' own log, with its debug lines off (they print the handshake: the key in
    the header and the URL) and every other line's text cleared of the key."""

    def __init__(self, logger: logging.Logger, secrets: list[str]) -> None:
        super().__init__(logger, {})
        self._secrets = secrets

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            text = str(msg)
        exc = kwargs.pop("exc_info", None)
        if exc:
            # A traceback could quote the URL: its last line alone, cleared.
            text += f" ({_said(exc if isinstance(exc, BaseException) else None)})"
        self.logger.log(level, "%s", redact(text, self._secrets))

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        return msg, kwargs


def _said(exc: BaseException | None) -> str:
    return (str(exc) or type(exc).__name__) if exc is not None else "error"


class EventFeed:
    """The WebSocket to WAHA's `/ws`, reconnected until `aclose()`."""

    def __init__(
        self,
        base_url: str,
        api_key: Secret | str | None = None,
        *,
        on_events: Callable[[list[WahaEvent]], None],
        on_state: Callable[[FeedState], None] | None = None,
        key_in_query: bool | None = None,
        events: tuple[str, ...] = ("*",),
        backoff: Backoff | None = None,
        open_timeout: float = 10.0,
        close_timeout: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:
        key = api_key if isinstance(api_key, Secret) or api_key is None else Secret(api_key)
        if key:
            _check_api_key(key)
        self._key: Secret | None = key or None
        # Every event by default: WAHA Core 2024.10.8 takes `*` (or session.status) only.
        self.events = events or ("*",)
        self.url = events_url(base_url, None, self.events)  # without the key: fit to show
        self._base_url = base_url
        self._on_events = on_events
        self._on_state = on_state
        self._key_in_query = key_in_query
        self.backoff = backoff or Backoff()
        self.open_timeout = open_timeout
        self.close_timeout = close_timeout
        self._rng = rng or random.Random()
        self._secrets = [key.reveal()] if key else []
        self._protocol_log = ProtocolLog(logging.getLogger(f"{__name__}.protocol"), self._secrets)
        self._state = FeedState("connecting", datetime.now(UTC))
        self.live_since: datetime | None = None
        self._acks_from: set[str] = set()
        self.received = 0  # frames
        self.malformed = 0  # frames that were no event envelope at all
        self.ignored = 0  # envelopes of events waha-tui does not act on
        self._pending: list[WahaEvent] = []
        self._flush_due = False
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"EventFeed({self.url!r}, {self._state.phase})"

    @property
    def state(self) -> FeedState:
        return self._state

    def acks_seen(self, session: str) -> bool:
        """Whether an ack of `session` arrived since the feed went live (this connection):
        then this server does send acks, and a send without one is worth a look."""
        return self.live_since is not None and session in self._acks_from

    def sessions_with_acks(self) -> frozenset[str]:
        """The sessions `acks_seen` holds for (none while the feed is not live)."""
        return frozenset(self._acks_from) if self.live_since is not None else frozenset()

    # -- life ------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect and keep connected, on the running loop."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="waha-event-feed")

    async def aclose(self) -> None:
        """Stop now: the task is cancelled; a close handshake waits `close_timeout` at
        most, whatever became of the server."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=self.close_timeout + 1.0)
        self._flush()

    # -- the connection --------------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        in_query = self._key_in_query is True and self._key is not None
        while True:
            opened = time.monotonic()
            try:
                outcome, was_live = await self._connect_once(in_query)
            except Exception as exc:  # a bug must not end the feed: it is retried as a fault
                log.exception("the event feed failed")
                outcome, was_live = _Outcome(self._words(_said(exc))), False
            if (
                outcome.unauthorized
                and self._key is not None
                and self._key_in_query is None
                and not in_query
            ):
                # WAHA reads the key of /ws from the URL only: give it there, once.
                log.info("WAHA refused the event socket's key in the header; sending it in the URL")
                in_query = True
                continue
            now = datetime.now(UTC)
            if outcome.refused:
                wait = self.backoff.refused * self._rng.uniform(0.9, 1.1)
                log.warning(
                    "WAHA refused the event feed: %s; next try in %s", outcome.reason, _span(wait)
                )
                self._set(FeedState("refused", now, outcome.reason, now + timedelta(seconds=wait)))
                attempt = 0
            else:
                if was_live and time.monotonic() - opened >= self.backoff.stable:
                    attempt = 0
                wait = self.backoff.delay(attempt, self._rng)
                attempt += 1
                since = self._state.since if self._state.phase == "down" else now
                log.info("event feed down (%s); next try in %.1fs", outcome.reason, wait)
                self._set(FeedState("down", since, outcome.reason, now + timedelta(seconds=wait)))
            await asyncio.sleep(wait)

    async def _connect_once(self, in_query: bool) -> tuple[_Outcome, bool]:
        """One connection, until it ends: how it ended, and whether it went live."""
        key = self._key.reveal() if self._key else None
        url = events_url(self._base_url, key if in_query else None, self.events)
        headers = {"X-Api-Key": key} if key else None
        try:
            async with connect(
                url,
                additional_headers=headers,
                open_timeout=self.open_timeout,
                close_timeout=self.close_timeout,
                max_size=MAX_FRAME,
                logger=self._protocol_log,
            ) as ws:
                try:
                    first = await asyncio.wait_for(ws.recv(), SETTLE)
                except TimeoutError:
                    first = None  # still open: WAHA serves it (it says nothing on its own)
                except ConnectionClosed as exc:
                    return self._closed(exc.rcvd), False
                self._went_live()
                if first is not None:
                    self._frame(first)
                return await self._read(ws), True
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                return _Outcome(f"HTTP {status}: the API key was refused", True, True), False
            return _Outcome(f"HTTP {status} to the WebSocket handshake"), False
        except TimeoutError:
            return _Outcome(f"no answer within {self.open_timeout:g}s"), False
        except ConnectionRefusedError:
            return _Outcome("connection refused"), False
        except socket.gaierror:
            return _Outcome("host not found"), False
        except ssl.SSLError as exc:
            return _Outcome(self._words(f"TLS: {exc.reason or exc}")), False
        except OSError as exc:
            # Every address refused (localhost: ::1 and 127.0.0.1) is one OSError of them all.
            if f"[Errno {errno.ECONNREFUSED}]" in str(exc):
                return _Outcome("connection refused"), False
            return _Outcome(self._words(_said(exc))), False
        except WebSocketException as exc:  # not a WebSocket server, a bad proxy, ...
            return _Outcome(self._words(_said(exc))), False

    async def _read(self, ws: ClientConnection) -> _Outcome:
        try:
            while True:
                self._frame(await ws.recv())
        except ConnectionClosed as exc:
            return self._closed(exc.rcvd)

    def _closed(self, frame: Close | None) -> _Outcome:
        if frame is None:
            return _Outcome("connection lost")
        reason = frame.reason
        if frame.code == REFUSED_PARAMETERS:
            with contextlib.suppress(ValueError, AttributeError):
                reason = str(json.loads(reason).get("error") or reason)
            return _Outcome(self._words(reason or "close 4001"), True)
        if frame.code == POLICY_VIOLATION:
            said = self._words(reason or "policy violation")
            unauthorized = reason == "Unauthorized"
            why = f"{said}: the API key was refused" if unauthorized else said
            return _Outcome(why, True, unauthorized)
        tail = f" {self._words(reason)}" if reason else ""
        return _Outcome(f"closed by WAHA: {frame.code}{tail}")

    def _words(self, text: str) -> str:
        """Text from outside, fit for a state line and a log: no key, no control
        characters, not too long."""
        shown = printable(redact(text, self._secrets))
        return shown if len(shown) <= MAX_REASON else shown[: MAX_REASON - 1] + "…"

    # -- what arrives ----------------------------------------------------------------------

    def _went_live(self) -> None:
        now = datetime.now(UTC)
        self.live_since = now
        self._acks_from = set()
        log.info("event feed live at %s", self.url)
        self._set(FeedState("live", now))

    def _frame(self, raw: str | bytes) -> None:
        self.received += 1
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("event"), str):
            self.malformed += 1
            log.debug("a frame that is no event envelope was left out (%d so far)", self.malformed)
            return
        event = parse(data)
        if event is None:
            self.ignored += 1
            return
        if isinstance(event, AckEvent):
            self._acks_from.add(event.session)
        self._pending.append(event)
        if not self._flush_due:
            # After the frames already read: they go in the same batch.
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            self._on_events(batch)
        except Exception:
            log.exception("the consumer of %d WAHA events failed; the feed goes on", len(batch))

    def _set(self, state: FeedState) -> None:
        if state == self._state:
            return
        if state.phase != "live":
            self.live_since = None
        self._state = state
        if self._on_state is not None:
            try:
                self._on_state(state)
            except Exception:
                log.exception("the event feed's state listener failed")
