"""The simulator's state: sessions, the log of accepted messages, and the faults on demand.

Shared between the HTTP app (possibly on another thread) and test code, so every access
goes through a lock.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Account-level engine errors, worded as WAHA's 500s carry them (NOTES.md section 9).
ERROR_463 = "2 UNKNOWN: server returned error 463"  # GOWS: the reach-out timelock
CONNECTION_CLOSED = "Connection Closed"  # NOWEB (#531)
RATE_OVERLIMIT = "rate-overlimit"  # NOWEB, with `data: 429` (#619)
STATUSES = ("STOPPED", "STARTING", "SCAN_QR_CODE", "WORKING", "FAILED")
TIERS = ("PLUS", "CORE")
ENGINES = ("NOWEB", "WEBJS")
SEND_SHAPES = ("noweb", "baileys", "webjs", "empty")
PROXY_STATUSES = (413, 502, 504)
# What /ws does: as current WAHA, or as Core 2024.10.8 (only `session=*` with `events=*` or
# `events=session.status`, anything else closed with 4001; no key; session.status only).
WS_VERSIONS = ("current", "2024.10.8")
# How far one sent message gets (AckPlan.chats): no ack at all, ERROR after the 201, or up
# to SERVER, DEVICE or READ.
ACK_OUTCOMES = ("none", "error", "server", "device", "read")


@dataclass
class ChatFault:
    """How sends to one chat fail: WAHA's NestJS 4xx, or its 500 for an engine error."""

    status: int
    message: str


MAX_STATUSES = 10  # the status history a session.status event carries


@dataclass
class SimSession:
    name: str
    status: str = "STOPPED"
    authenticated: bool = False
    phone: str = "15550000000"
    push_name: str = "WAHA simulator"
    # While STARTING, when the session settles (lazily evaluated on read).
    starting_until: float | None = None
    qr_value: str = ""
    pairing_code: str | None = None
    stop_after: int | None = None  # flip to `stop_status` after this many more sends
    stop_status: str = "STOPPED"
    stop_for: float | None = None  # ... and come back by itself after this long
    # When a flapped session goes back to STARTING (then WORKING), on the monotonic clock.
    recover_at: float | None = None
    # The reach-out timelock's end (epoch seconds; None: never seen one).
    timelock_until: float | None = None
    timelock_type: str = "DEFAULT"
    chats: set[str] = field(default_factory=set)  # chats this account has written to
    # config.webhooks and config.metadata as given on create / update (PUT).
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    # WASessionStatusBody.statuses: the last changes, (status, epoch ms).
    statuses: list[tuple[str, int]] = field(default_factory=list)
    # Told of every change of status (the simulator's session.status event).
    on_change: Callable[[SimSession], None] | None = field(default=None, repr=False)

    def set_status(self, status: str) -> None:
        if status == self.status and self.statuses:
            return
        self.status = status
        self.statuses = [*self.statuses[-(MAX_STATUSES - 1) :], (status, int(time.time() * 1000))]
        if self.on_change is not None:
            self.on_change(self)

    def settle(self, now: float) -> None:
        if self.recover_at is not None and now >= self.recover_at:
            # The flap is over: the engine reconnected by itself.
            self.recover_at = None
            self.authenticated = True
            self.starting_until = None
            self.set_status("WORKING")
        until = self.starting_until
        if self.status == "STARTING" and until is not None and now >= until:
            self.starting_until = None
            self.set_status("WORKING" if self.authenticated else "SCAN_QR_CODE")
            if self.status == "SCAN_QR_CODE":
                self.new_qr()

    def new_qr(self) -> None:
        self.qr_value = f"2@{secrets.token_urlsafe(24)},{secrets.token_urlsafe(12)},{self.name}"

    def timelocked(self, now_epoch: float) -> bool:
        return self.timelock_until is not None and now_epoch < self.timelock_until

    def me(self) -> dict[str, Any] | None:
        if self.status != "WORKING" or not self.authenticated:
            return None
        info: dict[str, Any] = {"id": f"{self.phone}@c.us", "pushName": self.push_name}
        if self.timelock_until is not None:
            # WAHA >= 2026 (MeInfo.reachoutTimelock); absent until one was seen.
            info["reachoutTimelock"] = {
                "enforcementType": self.timelock_type,
                "isActive": self.timelocked(time.time()),
                "timeEnforcementEnds": self.timelock_until,
            }
        return info


@dataclass
class SentMessage:
    session: str
    chat_id: str
    kind: str  # "text" or "image"
    text: str
    id: str
    at: float
    image: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "session": self.session,
            "chatId": self.chat_id,
            "kind": self.kind,
            "text": self.text,
            "id": self.id,
            "at": self.at,
            "image": self.image,
        }


@dataclass
class Faults:
    fail_chat_ids: dict[str, ChatFault] = field(default_factory=dict)
    fail_next: int = 0
    fail_next_message: str = CONNECTION_CLOSED
    fail_next_data: Any = None
    latency: float = 0.0
    typing_latency: float = 0.0  # seconds startTyping / stopTyping take to answer
    seen_status: int = 0  # sendSeen answers this error status (0: 201)
    hang: float = 0.0  # seconds a send hangs before answering (beyond the client timeout)
    drop_after_record: int = 0  # next N sends: record, then drop the connection
    # A message route on a session that is not in the status it needs: WAHA polls every
    # `status_poll` s for `status_wait` s before its 422 (5.0 and 0.5 on a real server).
    status_wait: float = 0.0
    status_poll: float = 0.5
    send_shape: str | None = None  # None: the engine's own (NOWEB: WAMessage)
    proxy_status: int = 0  # a proxy's HTML page answers the next `proxy_count` sends
    proxy_count: int = 0
    proxy_after_record: bool = True
    ws_version: str = "current"  # WS_VERSIONS
    ws_key_header: bool = False  # also take the key from the X-Api-Key header (WAHA: no)

    # check-exists: numbers (digits) that have no WhatsApp account, and the next
    # `fail_checks` lookups answering WAHA's 500 with `fail_checks_message` (NOWEB's
    # rate-overlimit, #619).
    not_on_whatsapp: set[str] = field(default_factory=set)
    fail_checks: int = 0
    fail_checks_message: str = RATE_OVERLIMIT
    fail_checks_data: Any = 429


@dataclass
class AckPlan:
    """How the simulator acknowledges each accepted send (`message.ack` events).

    Times are seconds after the send. A message gets no ack at all (`none`), ERROR (`error`,
    after `server` seconds), or SERVER then DEVICE, then READ for a `read` share of them;
    `chats` fixes one chat's outcome (ACK_OUTCOMES). `duplicate` is the chance each ack is
    sent twice, `out_of_order` the chance a message's acks come in reverse order (READ
    first). `seed` makes the draws repeatable."""

    server: float = 0.2
    device: float = 0.5
    read: float = 3.0
    none_share: float = 0.0
    error_share: float = 0.0
    read_share: float = 0.5
    duplicate: float = 0.0
    out_of_order: float = 0.0
    chats: dict[str, str] = field(default_factory=dict)
    seed: int | None = None

    def check(self) -> None:
        for name in ("server", "device", "read"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a number of seconds >= 0")
        for name in ("none_share", "error_share", "read_share", "duplicate", "out_of_order"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        for chat, outcome in self.chats.items():
            if outcome not in ACK_OUTCOMES:
                raise ValueError(
                    f"the outcome for {chat!r} must be one of {', '.join(ACK_OUTCOMES)}"
                )


class SimState:
    def __init__(
        self,
        *,
        api_key: str | None = None,
        sessions: dict[str, str] | None = None,
        message_ids: bool = True,
        start_delay: float = 0.3,
        stop_delay: float = 0.0,
        version: str = "2026.7.2",
        tier: str = "PLUS",
        engine: str = "NOWEB",
    ) -> None:
        if tier not in TIERS:
            raise ValueError(f"tier must be one of {', '.join(TIERS)}")
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}")
        self._lock = threading.RLock()
        self.api_key = api_key
        self.message_ids = message_ids
        self.start_delay = start_delay
        # A real stop answers after 3-4 s (18_session_stop); 0 keeps tests fast.
        self.stop_delay = stop_delay
        self.version = version
        self.tier = tier
        self.engine = engine
        self.sessions: dict[str, SimSession] = {}
        self.messages: list[SentMessage] = []
        # Every send WAHA accepted, repeats of a pre-generated id included (each as it
        # came, text and all): what a re-send carried.
        self.attempts: list[SentMessage] = []
        self._by_id: dict[str, SentMessage] = {}
        self.faults = Faults()
        self.acks = AckPlan()
        # Told of every session's change of status (the simulator's events).
        self.observers: list[Callable[[SimSession], None]] = []
        self.typing: list[tuple[str, str, str]] = []  # (session, chatId, start|stop)
        self.seen: list[tuple[str, str]] = []  # sendSeen asked: (session, chatId)
        self.lookups: list[tuple[str, str]] = []  # check-exists asked: (session, phone)
        self.held = 0  # sends the hang fault holds right now (none of them recorded yet)
        for name, status in (sessions if sessions is not None else {"default": "WORKING"}).items():
            self.add_session(name, status)

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    @property
    def core(self) -> bool:
        """WAHA Core: one session, named 'default'."""
        return self.tier == "CORE"

    # -- sessions ----------------------------------------------------------------------

    def add_session(self, name: str, status: str = "WORKING") -> SimSession:
        if self.core and name != "default":
            raise ValueError(f"WAHA Core has only the session 'default', not {name!r}")
        with self._lock:
            sess = SimSession(name=name, status=status, authenticated=status == "WORKING")
            sess.statuses = [(status, int(time.time() * 1000))]
            sess.on_change = self._changed
            if status == "SCAN_QR_CODE":
                sess.new_qr()
            self.sessions[name] = sess
            return sess

    def _changed(self, sess: SimSession) -> None:
        for observer in list(self.observers):
            observer(sess)

    def get(self, name: str) -> SimSession | None:
        with self._lock:
            sess = self.sessions.get(name)
            if sess:
                sess.settle(time.monotonic())
            return sess

    def set_status(self, name: str, status: str) -> None:
        """Disconnect or reconnect a session (WORKING marks it authenticated)."""
        with self._lock:
            sess = self.sessions.get(name) or self.add_session(name, status)
            sess.starting_until = None
            sess.recover_at = None
            if status == "WORKING":
                sess.authenticated = True
            if status == "SCAN_QR_CODE":
                sess.new_qr()
            sess.set_status(status)

    def start(self, name: str) -> SimSession:
        with self._lock:
            sess = self.sessions.get(name) or self.add_session(name, "STOPPED")
            sess.settle(time.monotonic())
            if sess.status in ("STOPPED", "FAILED"):
                sess.starting_until = time.monotonic() + self.start_delay
                sess.recover_at = None
                sess.set_status("STARTING")
            return sess

    def stop(self, name: str) -> SimSession:
        with self._lock:
            sess = self.sessions[name]
            sess.starting_until = None
            sess.recover_at = None
            sess.set_status("STOPPED")
            return sess

    def logout(self, name: str) -> SimSession:
        """Forget the pairing; like WAHA, a session that was running starts again (and goes
        on to SCAN_QR_CODE)."""
        with self._lock:
            sess = self.sessions[name]
            sess.settle(time.monotonic())
            running = sess.status != "STOPPED"
            sess.authenticated = False
            self.stop(name)
            return self.start(name) if running else sess

    def delete(self, name: str) -> None:
        """Stop, log out and forget the session (idempotent, as WAHA's DELETE is)."""
        with self._lock:
            sess = self.sessions.pop(name, None)
            if sess is not None:
                sess.set_status("STOPPED")

    def scan(self, name: str) -> None:
        """What the phone does when it scans the QR code (or enters the pairing code)."""
        with self._lock:
            sess = self.sessions[name]
            sess.authenticated = True
            sess.starting_until = None
            sess.recover_at = None
            sess.set_status("WORKING")

    def stop_after(
        self, name: str, sends: int, status: str = "STOPPED", *, for_seconds: float | None = None
    ) -> None:
        """Flip the session to `status` (STOPPED) right after its next `sends` accepted
        messages. With `for_seconds`, it comes back to WORKING by itself after that long: a
        flap, as NOWEB's reconnects are (`status="STARTING", for_seconds=3`)."""
        with self._lock:
            sess = self.sessions[name]
            sess.stop_status = status
            sess.stop_for = for_seconds
            if sends <= 0:
                sess.stop_after = None
                self._flip(sess)
            else:
                sess.stop_after = sends

    def _flip(self, sess: SimSession) -> None:
        sess.starting_until = None
        sess.stop_after = None
        if sess.stop_for is not None:
            sess.recover_at = time.monotonic() + sess.stop_for
            sess.stop_for = None
        sess.set_status(sess.stop_status)

    def timelock(
        self, name: str, until_epoch: float | None, enforcement_type: str = "DEFAULT"
    ) -> None:
        """WhatsApp's reach-out timelock on this account until `until_epoch` (epoch seconds;
        None lifts it and forgets it). While active, a send to a chat the account never
        wrote to answers WAHA's 500 with error 463, and `me.reachoutTimelock` says when it
        ends."""
        with self._lock:
            sess = self.sessions[name]
            sess.timelock_until = until_epoch
            sess.timelock_type = enforcement_type

    # -- faults ------------------------------------------------------------------------

    def fail_chat(self, chat_id: str, message: str | None = None, status: int = 400) -> None:
        """Sends to this chat fail as one bad recipient does: a 400 by default (NestJS's
        `{statusCode, message, error}`), or with `status=500` WAHA's engine-error body.
        Account-level errors (463, Connection Closed) belong to `fail_next_sends` and
        `timelock`, not here."""
        if "@" not in chat_id:
            chat_id += "@c.us"  # as WAHA's ensureSuffix does to the sends themselves
        if not 400 <= status <= 599:
            raise ValueError("status must be a 4xx or 5xx")
        text = message or (
            f"Invalid chatId '{chat_id}': not a WhatsApp account"
            if status < 500
            else CONNECTION_CLOSED
        )
        with self._lock:
            self.faults.fail_chat_ids[chat_id] = ChatFault(status, text)

    def clear_chat_faults(self) -> None:
        """No recipient fails any more (fail_chat undone)."""
        with self._lock:
            self.faults.fail_chat_ids.clear()

    def fail_next_sends(
        self, count: int, message: str = CONNECTION_CLOSED, *, data: Any = None
    ) -> None:
        """The next `count` sends answer WAHA's 500 (its exception-filter body) carrying
        `message`; `data` is Boom's extra field (rate-overlimit carries 429)."""
        with self._lock:
            self.faults.fail_next = count
            self.faults.fail_next_message = message
            self.faults.fail_next_data = data

    def set_latency(self, seconds: float) -> None:
        with self._lock:
            self.faults.latency = seconds

    def set_typing_latency(self, seconds: float) -> None:
        with self._lock:
            self.faults.typing_latency = seconds

    def set_hang(self, seconds: float) -> None:
        with self._lock:
            self.faults.hang = seconds

    def drop_after_record(self, count: int) -> None:
        with self._lock:
            self.faults.drop_after_record = count

    def status_wait(self, seconds: float = 5.0, poll: float = 0.5) -> None:
        """Answer a message route's 422 (session not in the status it needs) only after
        polling the status for `seconds`, as WAHA does; 0 turns it off (the default)."""
        if seconds < 0 or poll <= 0:
            raise ValueError("seconds must be >= 0 and poll > 0")
        with self._lock:
            self.faults.status_wait = seconds
            self.faults.status_poll = poll

    def send_shape(self, shape: str | None) -> None:
        """The body of a successful send, as each engine words it: "noweb" (WAHA's
        WAMessage), "baileys" (raw `{key: {id}}`), "webjs" (`_data.id._serialized`),
        "empty" (201 with no body, WEBJS 2025.6.5); None: the engine's own."""
        if shape is not None and shape not in SEND_SHAPES:
            raise ValueError(f"shape must be one of {', '.join(SEND_SHAPES)}")
        with self._lock:
            self.faults.send_shape = shape

    def proxy_error(self, status: int, *, after_record: bool = True, count: int = 1) -> None:
        """A reverse proxy's HTML page (413, 502, 504) answers the next `count` sends:
        after WAHA accepted the message (`after_record`: it WAS sent) or before (not sent)."""
        if status not in PROXY_STATUSES:
            raise ValueError(f"status must be one of {PROXY_STATUSES}")
        with self._lock:
            self.faults.proxy_status = status
            self.faults.proxy_count = count
            self.faults.proxy_after_record = after_record

    def not_on_whatsapp(self, phones: list[str]) -> None:
        """check-exists answers `numberExists: false` for these numbers (digits; the whole
        set: [] clears it)."""
        digits = {"".join(ch for ch in p if ch.isdigit()) for p in phones}
        with self._lock:
            self.faults.not_on_whatsapp = digits

    def fail_next_checks(
        self, count: int, message: str = RATE_OVERLIMIT, *, data: Any = 429
    ) -> None:
        """The next `count` check-exists lookups answer WAHA's 500 carrying `message`."""
        with self._lock:
            self.faults.fail_checks = count
            self.faults.fail_checks_message = message
            self.faults.fail_checks_data = data

    def take_check_fault(self) -> tuple[str, Any] | None:
        with self._lock:
            if self.faults.fail_checks <= 0:
                return None
            self.faults.fail_checks -= 1
            return self.faults.fail_checks_message, self.faults.fail_checks_data

    def require_api_key(self, key: str | None) -> None:
        with self._lock:
            self.api_key = key

    def set_acks(self, plan: AckPlan) -> None:
        """How accepted sends are acknowledged from now on (see AckPlan); reset() restores
        the default."""
        plan.check()
        with self._lock:
            self.acks = plan

    def ws_behaviour(self, version: str | None = None, key_header: bool | None = None) -> None:
        """/ws as current WAHA (the default) or as Core 2024.10.8; `key_header` also takes
        the key from the handshake's X-Api-Key header, which WAHA does not."""
        if version is not None and version not in WS_VERSIONS:
            raise ValueError(f"ws version must be one of {', '.join(WS_VERSIONS)}")
        with self._lock:
            if version is not None:
                self.faults.ws_version = version
            if key_header is not None:
                self.faults.ws_key_header = key_header

    def clear_faults(self) -> None:
        with self._lock:
            self.faults = Faults()
            for sess in self.sessions.values():
                sess.stop_after = None
                sess.stop_for = None
                sess.timelock_until = None

    # -- messages ----------------------------------------------------------------------

    def record(
        self,
        session: str,
        chat_id: str,
        text: str,
        *,
        kind: str = "text",
        message_id: str | None = None,
        image: dict[str, Any] | None = None,
    ) -> tuple[SentMessage, bool]:
        """Record an accepted message; a pre-generated id sent twice is stored once."""
        with self._lock:
            full_id = f"true_{chat_id}_{message_id or secrets.token_hex(10).upper()}"
            msg = SentMessage(session, chat_id, kind, text, full_id, time.time(), image)
            self.attempts.append(msg)
            if message_id and full_id in self._by_id:
                return self._by_id[full_id], False
            self.messages.append(msg)
            self._by_id[full_id] = msg
            sess = self.sessions.get(session)
            if sess:
                sess.chats.add(chat_id)
            if sess and sess.stop_after is not None:
                sess.stop_after -= 1
                if sess.stop_after <= 0:
                    self._flip(sess)
            return msg, True

    def sent(self, session: str | None = None) -> list[SentMessage]:
        with self._lock:
            return [m for m in self.messages if session is None or m.session == session]

    def reset(self) -> None:
        """Forget the messages and typing log, and drop every fault."""
        with self._lock:
            self.messages.clear()
            self.attempts.clear()
            self._by_id.clear()
            self.typing.clear()
            self.seen.clear()
            self.lookups.clear()
            for sess in self.sessions.values():
                sess.chats.clear()
            self.clear_faults()
            self.acks = AckPlan()
