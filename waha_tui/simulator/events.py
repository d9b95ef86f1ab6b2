"""WAHA's events, as the simulator sends them: on its `/ws` socket and to the webhooks of a
session's config (`config.webhooks[]`), in WAHA's envelope (OpenAPI `WAHAWebhook*`).

Events start on any thread (a test changing a session's status, a route on the server's
loop); they are built at once (the state they describe) and delivered on the server's
event loop, so a send's answer never waits for an ack or a webhook.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from waha_tui.simulator.state import AckPlan, SentMessage, SimSession, SimState

logger = logging.getLogger(__name__)

# WAHA's event names (the spec's WAHAWebhook*.event enum): `*` stands for all of them, and
# names outside this list are ignored, as WAHA's EventWildUnmask does.
EVENTS = (
    "session.status",
    "message",
    "message.reaction",
    "message.any",
    "message.ack",
    "message.ack.group",
    "message.waiting",
    "message.revoked",
    "message.edited",
    "state.change",
    "group.join",
    "group.leave",
    "group.v2.join",
    "group.v2.leave",
    "group.v2.update",
    "group.v2.participants",
    "presence.update",
    "poll.vote",
    "poll.vote.failed",
    "chat.archive",
    "call.received",
    "call.accepted",
    "call.rejected",
    "label.upsert",
    "label.deleted",
    "label.chat.added",
    "label.chat.deleted",
    "event.response",
    "event.response.failed",
    "engine.event",
)
ACK_NAMES = {-1: "ERROR", 0: "PENDING", 1: "SERVER", 2: "DEVICE", 3: "READ", 4: "PLAYED"}
HMAC_ALGORITHM = "sha512"
WEBHOOK_TIMEOUT = 10.0
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"  # lower case, as WAHA's event ids are


def ulid() -> str:
    """A ULID (48 bits of milliseconds, 80 random bits) in lower-case Crockford base32."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def unmask(names: list[str]) -> set[str]:
    """WAHA's EventWildUnmask: `*` is every event, unknown names are left out."""
    wanted = set(names)
    return set(EVENTS) if "*" in wanted else wanted & set(EVENTS)


def signature(body: bytes, key: str) -> str:
    """X-Webhook-Hmac: HMAC-SHA512 of the raw body, in hex."""
    return hmac.new(key.encode(), body, hashlib.sha512).hexdigest()


def _dumps(data: dict[str, Any]) -> str:
    # JSON.stringify's shape: no spaces, text as is.
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


@dataclass(eq=False)  # each one is itself (kept in a set)
class Listener:
    """One `/ws` client: what it asked for, and its outbox."""

    session: str  # "*" or a session's name
    events: set[str]
    legacy: bool  # Core 2024.10.8's envelope (no id, no timestamp)
    outbox: asyncio.Queue[str | tuple[int, str] | None] = field(default_factory=asyncio.Queue)

    def wants(self, event: str, session: str) -> bool:
        return event in self.events and self.session in ("*", session)


class EventHub:
    """Builds WAHA's envelopes and hands them to the sockets and webhooks that want them."""

    def __init__(self, state: SimState, environment: Callable[[], dict[str, Any]]) -> None:
        self.state = state
        self._environment = environment
        self._loop: asyncio.AbstractEventLoop | None = None
        self.listeners: set[Listener] = set()
        self.connections = 0  # /ws handshakes accepted, refused ones too
        self._tasks: set[asyncio.Future[Any]] = set()
        self._rng = random.Random()
        self._seeded: AckPlan | None = None
        state.observers.append(self._status_changed)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop events are delivered on (the server's; learnt from its first call)."""
        self._loop = loop

    # -- any thread ------------------------------------------------------------------------

    def _on_loop(self, callback: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # nobody has called the server yet: nobody listens either
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            callback(*args)
        else:
            loop.call_soon_threadsafe(callback, *args)

    def envelope(self, event: str, sess: SimSession, payload: dict[str, Any]) -> dict[str, Any]:
        env: dict[str, Any] = {
            "id": f"evt_{ulid()}",
            "timestamp": int(time.time() * 1000),
            "event": event,
            "session": sess.name,
        }
        if sess.metadata is not None:
            env["metadata"] = sess.metadata
        me = sess.me()
        if me is not None:  # WAHA leaves it out (undefined) when there is none
            env["me"] = me
        env.update(
            payload=payload,
            engine=self.state.engine,
            environment={
                **self._environment(),
                "platform": "linux/x64",
                "worker": {"id": None},
            },
        )
        return env

    def publish(self, event: str, sess: SimSession, payload: dict[str, Any]) -> None:
        """Send one event now (built here, on the caller's thread, delivered on the loop)."""
        with self.state.lock:
            env = self.envelope(event, sess, payload)
            webhooks = [dict(w) for w in sess.webhooks]
        self._on_loop(self._deliver, env, webhooks)

    def _status_changed(self, sess: SimSession) -> None:
        # Called under the state's lock by whoever changed the status.
        payload: dict[str, Any] = {
            "name": sess.name,
            "status": sess.status,
            "statuses": [{"status": s, "timestamp": t} for s, t in sess.statuses],
        }
        if sess.status == "WORKING" and sess.timelocked(time.time()):
            me = sess.me() or {}
            payload["data"] = {"reachoutTimelock": me.get("reachoutTimelock")}
        self.publish("session.status", sess, payload)
        # STARTING settles by itself (lazily, on the next read): read it when it is due, so
        # its next session.status goes out on time.
        due = [t for t in (sess.starting_until, sess.recover_at) if t is not None]
        if due:
            self._on_loop(self._wake_at, sess.name, min(due))

    def _wake_at(self, name: str, monotonic_due: float) -> None:
        assert self._loop is not None
        delay = max(0.0, monotonic_due - time.monotonic()) + 0.001
        self._loop.call_later(delay, self.state.get, name)

    def close_sockets(self, code: int = 1001, reason: str = "Server is shutting down") -> None:
        """Close every open `/ws` socket (the server going away, a proxy timing out)."""
        self._on_loop(self._close_all, code, reason)

    def _close_all(self, code: int, reason: str) -> None:
        for listener in list(self.listeners):
            listener.outbox.put_nowait((code, reason))

    # -- on the loop -----------------------------------------------------------------------

    def _deliver(self, env: dict[str, Any], webhooks: list[dict[str, Any]]) -> None:
        event, session = env["event"], env["session"]
        current = _dumps(env)
        legacy = None
        for listener in list(self.listeners):
            if not listener.wants(event, session):
                continue
            if listener.legacy:
                if legacy is None:
                    old = {k: v for k, v in env.items() if k not in ("id", "timestamp")}
                    old["environment"] = {
                        k: v
                        for k, v in env["environment"].items()
                        if k not in ("platform", "worker")
                    }
                    legacy = _dumps(old)
                listener.outbox.put_nowait(legacy)
            else:
                listener.outbox.put_nowait(current)
        for hook in webhooks:
            events = hook.get("events")
            if isinstance(events, list) and event in unmask([str(e) for e in events]):
                self._spawn(self._post(hook, current.encode()))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, hook: dict[str, Any], body: bytes) -> None:
        """One webhook call, with the config's retries; a failing URL is logged, no more."""
        url = str(hook.get("url") or "")
        headers = {
            "content-type": "application/json",
            "User-Agent": f"WAHA/{self.state.version}",
        }
        for custom in hook.get("customHeaders") or []:
            if isinstance(custom, dict) and custom.get("name"):
                headers[str(custom["name"])] = str(custom.get("value") or "")
        key = (hook.get("hmac") or {}).get("key") if isinstance(hook.get("hmac"), dict) else None
        if key:
            headers["X-Webhook-Hmac"] = signature(body, str(key))
            headers["X-Webhook-Hmac-Algorithm"] = HMAC_ALGORITHM
        retries = hook.get("retries") if isinstance(hook.get("retries"), dict) else {}
        attempts = max(1, int(retries.get("attempts") or 1)) if retries else 1
        delay = float(retries.get("delaySeconds") or 2) if retries else 0.0
        policy = str(retries.get("policy") or "constant") if retries else "constant"
        request_id = f"webhook_{ulid()}"
        for attempt in range(1, attempts + 1):
            headers["X-Webhook-Request-Id"] = request_id
            headers["X-Webhook-Timestamp"] = str(int(time.time() * 1000))
            try:
                async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT, trust_env=False) as http:
                    resp = await http.post(url, content=body, headers=headers)
                if resp.status_code < 500:
                    return
                why = f"HTTP {resp.status_code}"
            except (httpx.HTTPError, ValueError, OSError) as exc:
                why = type(exc).__name__
            logger.debug("webhook %s failed (%s), attempt %d of %d", url, why, attempt, attempts)
            if attempt < attempts:
                factor = {"linear": attempt, "exponential": 2 ** (attempt - 1)}.get(policy, 1)
                await asyncio.sleep(delay * factor)

    # -- acks and replies ------------------------------------------------------------------

    def schedule_acks(self, session: str, msg: SentMessage) -> None:
        """The acks of one accepted send, as the AckPlan says; on the running loop, after
        the answer (never before it)."""
        loop = asyncio.get_running_loop()
        for delay, level in self._ack_plan(msg.chat_id):
            loop.call_later(delay, self._ack, session, msg, level)

    def _ack_plan(self, chat_id: str) -> list[tuple[float, int]]:
        with self.state.lock:
            plan = self.state.acks
            if plan is not self._seeded:
                self._seeded = plan
                self._rng = random.Random(plan.seed)
            rng = self._rng
            outcome = plan.chats.get(chat_id)
            if outcome is None:
                draw = rng.random()
                if draw < plan.none_share:
                    outcome = "none"
                elif draw < plan.none_share + plan.error_share:
                    outcome = "error"
                else:
                    outcome = "read" if rng.random() < plan.read_share else "device"
            steps = {
                "none": [],
                "error": [(plan.server, -1)],
                "server": [(plan.server, 1)],
                "device": [(plan.server, 1), (plan.device, 2)],
                "read": [(plan.server, 1), (plan.device, 2), (plan.read, 3)],
            }[outcome]
            if len(steps) > 1 and rng.random() < plan.out_of_order:
                times = [t for t, _ in steps]
                levels = [lv for _, lv in reversed(steps)]
                steps = list(zip(times, levels, strict=True))
            out: list[tuple[float, int]] = []
            for when, level in steps:
                out.append((when, level))
                if rng.random() < plan.duplicate:
                    out.append((when, level))
            return out

    def _ack(self, session: str, msg: SentMessage, level: int) -> None:
        sess = self.state.get(session)
        if sess is None or sess.status != "WORKING":
            return  # the engine is not connected: WhatsApp's receipt goes nowhere
        me = f"{sess.phone}@c.us"
        bare = msg.id.rsplit("_", 1)[-1]
        payload = {
            "id": msg.id,
            "from": me,
            "to": msg.chat_id,
            "participant": me,
            "fromMe": True,
            "ack": level,
            "ackName": ACK_NAMES[level],
            "_data": {
                "key": {
                    "remoteJid": msg.chat_id.replace("@c.us", "@s.whatsapp.net"),
                    "fromMe": True,
                    "id": bare,
                },
                "update": {"status": level + 1},  # Baileys' WAMessageStatus is one more
            },
        }
        self.publish("message.ack", sess, payload)

    def reply(self, sess: SimSession, chat_id: str, body: str) -> dict[str, Any]:
        """An inbound message from `chat_id` (the `message` event); returns its payload."""
        ident = secrets.token_hex(10).upper()
        payload = {
            "id": f"false_{chat_id}_{ident}",
            "timestamp": int(time.time()),
            "from": chat_id,
            "fromMe": False,
            "source": "app",
            "to": f"{sess.phone}@c.us",
            "participant": chat_id,
            "body": body,
            "hasMedia": False,
            "mediaUrl": "",
            "ack": 1,
            "ackName": "SERVER",
            "_data": {"key": {"remoteJid": chat_id, "fromMe": False, "id": ident}},
        }
        self.publish("message", sess, payload)
        return payload
