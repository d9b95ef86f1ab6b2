"""The simulator's state: sessions, the log of accepted messages, and the faults on demand.

Shared between the HTTP app (possibly on another thread) and test code, so every access
goes through a lock.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

ERROR_463 = "2 UNKNOWN: server returned error 463"
STATUSES = ("STOPPED", "STARTING", "SCAN_QR_CODE", "WORKING", "FAILED")


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

    def settle(self, now: float) -> None:
        until = self.starting_until
        if self.status == "STARTING" and until is not None and now >= until:
            self.status = "WORKING" if self.authenticated else "SCAN_QR_CODE"
            self.starting_until = None
            if self.status == "SCAN_QR_CODE":
                self.new_qr()

    def new_qr(self) -> None:
        self.qr_value = f"2@{secrets.token_urlsafe(24)},{secrets.token_urlsafe(12)},{self.name}"

    def me(self) -> dict[str, Any] | None:
        if self.status != "WORKING" or not self.authenticated:
            return None
        return {"id": f"{self.phone}@c.us", "pushName": self.push_name}


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
    fail_chat_ids: dict[str, str] = field(default_factory=dict)  # chatId -> 500 message
    fail_next: int = 0
    fail_next_message: str = "Connection Closed"
    latency: float = 0.0
    hang: float = 0.0  # seconds a send hangs before answering (beyond the client timeout)
    drop_after_record: int = 0  # next N sends: record, then drop the connection


class SimState:
    def __init__(
        self,
        *,
        api_key: str | None = None,
        sessions: dict[str, str] | None = None,
        message_ids: bool = True,
        start_delay: float = 0.3,
        version: str = "2026.7.2",
    ) -> None:
        self._lock = threading.RLock()
        self.api_key = api_key
        self.message_ids = message_ids
        self.start_delay = start_delay
        self.version = version
        self.sessions: dict[str, SimSession] = {}
        self.messages: list[SentMessage] = []
        self._by_id: dict[str, SentMessage] = {}
        self.faults = Faults()
        self.typing: list[tuple[str, str, str]] = []  # (session, chatId, start|stop)
        for name, status in (sessions if sessions is not None else {"default": "WORKING"}).items():
            self.add_session(name, status)

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    # -- sessions ----------------------------------------------------------------------

    def add_session(self, name: str, status: str = "WORKING") -> SimSession:
        with self._lock:
            sess = SimSession(name=name, status=status, authenticated=status == "WORKING")
            if status == "SCAN_QR_CODE":
                sess.new_qr()
            self.sessions[name] = sess
            return sess

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
            sess.status = status
            sess.starting_until = None
            if status == "WORKING":
                sess.authenticated = True
            if status == "SCAN_QR_CODE":
                sess.new_qr()

    def start(self, name: str) -> SimSession:
        with self._lock:
            sess = self.sessions.get(name) or self.add_session(name, "STOPPED")
            sess.settle(time.monotonic())
            if sess.status in ("STOPPED", "FAILED"):
                sess.status = "STARTING"
                sess.starting_until = time.monotonic() + self.start_delay
            return sess

    def stop(self, name: str) -> SimSession:
        with self._lock:
            sess = self.sessions[name]
            sess.status = "STOPPED"
            sess.starting_until = None
            return sess

    def logout(self, name: str) -> SimSession:
        with self._lock:
            sess = self.sessions[name]
            sess.authenticated = False
            sess.status = "STOPPED"
            sess.starting_until = None
            return sess

    def scan(self, name: str) -> None:
        """What the phone does when it scans the QR code (or enters the pairing code)."""
        with self._lock:
            sess = self.sessions[name]
            sess.authenticated = True
            sess.status = "WORKING"
            sess.starting_until = None

    def stop_after(self, name: str, sends: int, status: str = "STOPPED") -> None:
        """Flip the session to `status` (STOPPED) right after its next `sends` accepted
        messages."""
        with self._lock:
            sess = self.sessions[name]
            sess.stop_status = status
            if sends <= 0:
                sess.status = status
                sess.starting_until = None
                sess.stop_after = None
            else:
                sess.stop_after = sends

    # -- faults ------------------------------------------------------------------------

    def fail_chat(self, chat_id: str, message: str = ERROR_463) -> None:
        """Answer sends to this chat with a 500 carrying `message` (WhatsApp's 463 by default)."""
        if "@" not in chat_id:
            chat_id += "@c.us"  # as WAHA's ensureSuffix does to the sends themselves
        with self._lock:
            self.faults.fail_chat_ids[chat_id] = message

    def fail_next_sends(self, count: int, message: str = "Connection Closed") -> None:
        with self._lock:
            self.faults.fail_next = count
            self.faults.fail_next_message = message

    def set_latency(self, seconds: float) -> None:
        with self._lock:
            self.faults.latency = seconds

    def set_hang(self, seconds: float) -> None:
        with self._lock:
            self.faults.hang = seconds

    def drop_after_record(self, count: int) -> None:
        with self._lock:
            self.faults.drop_after_record = count

    def require_api_key(self, key: str | None) -> None:
        with self._lock:
            self.api_key = key

    def clear_faults(self) -> None:
        with self._lock:
            self.faults = Faults()
            for sess in self.sessions.values():
                sess.stop_after = None

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
            if message_id and full_id in self._by_id:
                return self._by_id[full_id], False
            msg = SentMessage(session, chat_id, kind, text, full_id, time.time(), image)
            self.messages.append(msg)
            self._by_id[full_id] = msg
            sess = self.sessions.get(session)
            if sess and sess.stop_after is not None:
                sess.stop_after -= 1
                if sess.stop_after <= 0:
                    sess.status = sess.stop_status
                    sess.stop_after = None
            return msg, True

    def sent(self, session: str | None = None) -> list[SentMessage]:
        with self._lock:
            return [m for m in self.messages if session is None or m.session == session]

    def reset(self) -> None:
        """Forget the messages and typing log, and drop every fault."""
        with self._lock:
            self.messages.clear()
            self._by_id.clear()
            self.typing.clear()
            self.clear_faults()
