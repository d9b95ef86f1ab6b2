"""`waha-tui doctor`: what works and what does not, before a campaign finds out.

Each check is a Finding with a level (ok, warn, fail), what was found and what to do. A
`fail` is something waha-tui cannot send without (WAHA unreachable, the key refused, no
WORKING session, the database unusable); a `warn` works, worse (no pre-generated ids, no
event feed, a session not WORKING). What WAHA's answers mean is the error policy's
(runner/policy.py): the doctor words the same verdicts the runner would reach. The key
never appears in a finding.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx
import sqlalchemy as sa

from waha_tui.config import Settings
from waha_tui.errors import UserError
from waha_tui.models import SCHEMA_VERSION
from waha_tui.runner.policy import (
    Budget,
    Op,
    Pause,
    Proceed,
    after_session_check,
    decide,
    session_verdict,
)
from waha_tui.secret import Secret, hide
from waha_tui.status import CampaignStatus
from waha_tui.store import C, Store
from waha_tui.waha import (
    SessionInfo,
    Timeouts,
    Unauthorized,
    Unreachable,
    WahaClient,
    WahaError,
)
from waha_tui.waha.errors import CHECK_API_KEY, Refused
from waha_tui.waha.feed import ProtocolLog, events_url

log = logging.getLogger(__name__)

Level = Literal["ok", "warn", "fail"]
# Pre-generated message ids came with WAHA 2026.4.3 (NOWEB and GOWS; NOTES.md section 9).
IDS_SINCE = (2026, 4, 3)
# The WebSocket's close codes: the key refused (WAHA's WebSocketAuth: 1008, "Unauthorized"),
# parameters the server does not serve (Core 2024.10.8: only session=* with events=*).
WS_UNAUTHORIZED = 1008
WS_REFUSED = 4001
WS_SETTLE = 1.0  # seconds an accepted socket is watched for WAHA closing it at once
DOCTOR_TIMEOUTS = Timeouts(connect=5.0, read=15.0, write=5.0, pool=5.0)


@dataclass(frozen=True)
class Finding:
    check: str  # what was looked at: "waha", "api key", "session default", ...
    level: Level
    detail: str  # what was found
    fix: str = ""  # what to do ("" when nothing)

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def failed(findings: list[Finding]) -> bool:
    """Something waha-tui needs is missing: the doctor exits 1."""
    return any(f.level == "fail" for f in findings)


WsProbe = Callable[[str, Secret | None], Awaitable[tuple[str, int | None, str]]]


async def diagnose(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    websocket: WsProbe | None = None,
    timeouts: Timeouts = DOCTOR_TIMEOUTS,
) -> list[Finding]:
    """Every check, in order: WAHA, the key, its version, pre-generated ids, the events
    WebSocket, check-exists, each session, the database. `transport` replaces the network
    (a recording replayed); `websocket` the WebSocket probe (see `probe_websocket`)."""
    findings: list[Finding] = []
    secrets = [settings.api_key.reveal() if settings.api_key else None]
    try:
        client = WahaClient(
            settings.waha_url, settings.api_key, timeouts=timeouts, transport=transport
        )
    except UserError as exc:
        findings.append(
            Finding("waha", "fail", str(exc), "give --waha-url or WAHA_URL as http://host:port")
        )
    else:
        async with client:
            await _waha(
                client, settings, findings, transport, websocket or probe_websocket, timeouts
            )
    findings.extend(await asyncio.to_thread(_database, settings.db))
    return [
        Finding(f.check, f.level, hide(f.detail, secrets), hide(f.fix, secrets)) for f in findings
    ]


async def _waha(
    client: WahaClient,
    settings: Settings,
    out: list[Finding],
    transport: httpx.AsyncBaseTransport | None,
    websocket: WsProbe,
    timeouts: Timeouts,
) -> None:
    url = client.base_url
    # 1. Does the URL answer, and is it WAHA?
    version = await _version(client)
    if isinstance(version, Unreachable):
        out.append(
            Finding(
                "waha",
                "fail",
                str(version),
                "start WAHA, or point waha-tui at it with --waha-url or WAHA_URL",
            )
        )
        return
    if isinstance(version, Unauthorized):
        out.append(Finding("waha", "ok", f"WAHA answers at {url} (its version needs the key)"))
    elif isinstance(version, WahaError):
        out.append(
            Finding(
                "waha",
                "fail",
                f"{url} does not answer as WAHA: {version}",
                "check --waha-url or WAHA_URL: it must be WAHA's base URL",
            )
        )
        return
    else:
        out.append(Finding("waha", "ok", f"WAHA answers at {url}"))
    # 2. The key, on a route that needs one.
    try:
        sessions = await client.list_sessions()
    except Unauthorized as exc:
        given = "the API key given" if settings.api_key else "no API key (none was given)"
        out.append(
            Finding(
                "api key", "fail", f"WAHA refused {given} (HTTP {exc.status_code})", CHECK_API_KEY
            )
        )
        return
    except WahaError as exc:
        out.append(Finding("api key", "fail", f"listing the sessions failed: {exc}", "check WAHA"))
        return
    out.append(await _key(settings, url, transport, timeouts))
    # 3. Version and engine.
    if isinstance(version, dict):
        out.append(_version_finding(version))
    else:
        out.append(Finding("version", "warn", f"WAHA did not say its version: {version}"))
    working = [s for s in sessions if s.working]
    # The session the per-session checks ask about: a WORKING one, else the first.
    probe = working[0] if working else (sessions[0] if sessions else None)
    # 4. Pre-generated message ids.
    out.append(await _ids(client, probe, version if isinstance(version, dict) else None))
    # 5. The events WebSocket.
    out.append(await _events(url, settings.api_key, websocket))
    # 6. check-exists.
    out.append(await _check_exists(client, probe))
    # 7. Each session.
    for info in sessions:
        out.append(_session_finding(info))
    if not sessions:
        out.append(
            Finding(
                "sessions",
                "fail",
                "WAHA has no session",
                "create one and link a phone: `waha-tui`, then S (sessions), then n",
            )
        )
    elif not working:
        out.append(
            Finding(
                "sessions",
                "fail",
                "no session is WORKING: nothing can be sent",
                "start a session and link its phone: `waha-tui`, then S (sessions)",
            )
        )


async def _version(client: WahaClient) -> dict[str, Any] | WahaError:
    """GET /api/server/version, or the older /api/version when that route is missing."""
    try:
        return await client.server_version()
    except Refused as exc:
        if exc.status_code != 404:
            return exc
    except WahaError as exc:
        return exc
    try:
        return await client.server_version(path="/api/version")
    except WahaError as exc:
        return exc


def _version_finding(version: dict[str, Any]) -> Finding:
    number, engine, tier = (str(version.get(k) or "?") for k in ("version", "engine", "tier"))
    return Finding("version", "ok", f"WAHA {number}, engine {engine}, tier {tier}")


def _release(version: dict[str, Any] | None) -> tuple[int, ...] | None:
    """'2026.7.2' -> (2026, 7, 2); None when WAHA did not say one in that form."""
    found = re.match(r"^\s*(\d+)\.(\d+)\.(\d+)", str((version or {}).get("version") or ""))
    return tuple(int(g) for g in found.groups()) if found else None


async def _key(
    settings: Settings, url: str, transport: httpx.AsyncBaseTransport | None, timeouts: Timeouts
) -> Finding:
    """The key was accepted; does WAHA also serve anyone without one?"""
    if settings.api_key is None:
        return Finding(
            "api key",
            "warn",
            "no API key given, and WAHA serves requests without one: anyone who can reach it "
            "can send from its numbers",
            "set WAHA_API_KEY on the WAHA server, then give waha-tui --api-key-file",
        )
    try:
        async with WahaClient(url, None, timeouts=timeouts, transport=transport) as bare:
            await bare.list_sessions()
    except Unauthorized:
        return Finding("api key", "ok", "WAHA accepts the key, and refuses requests without one")
    except WahaError as exc:
        log.debug("asking WAHA without a key failed: %s", exc)
        return Finding("api key", "ok", "WAHA accepts the key")
    return Finding(
        "api key",
        "warn",
        "WAHA accepts the key, but also requests without any key: anyone who can reach it "
        "can send from its numbers",
        "enforce a key on the WAHA server (WAHA_API_KEY; older versions ignore it)",
    )


async def _ids(
    client: WahaClient, probe: SessionInfo | None, version: dict[str, Any] | None
) -> Finding:
    """Does WAHA hand out pre-generated message ids (a re-send WhatsApp dedupes)? Decided
    as the runner decides it (policy: Op.NEW_ID)."""
    without = (
        "without them a send WAHA does not confirm is marked unknown and never re-sent by itself"
    )
    release = _release(version)
    shown = (version or {}).get("version")
    if probe is None:
        return Finding("message ids", "warn", "not checked: WAHA has no session")
    try:
        await client.new_message_id(probe.name)
    except WahaError as exc:
        verdict = decide(Op.NEW_ID, exc, session=probe.name)
        if isinstance(verdict, Pause) and verdict.ask_session:
            verdict = after_session_check(Op.NEW_ID, verdict, exc, probe)
        if isinstance(verdict, Proceed) and verdict.no_ids:
            why = (
                f"WAHA {shown} has no new-message-id route (it came in 2026.4.3)"
                if release is not None and release < IDS_SINCE
                else f"{verdict.note} (HTTP {exc.status_code}: {exc.detail})"
            )
            return Finding(
                "message ids",
                "warn",
                f"{why}: {without}",
                "WAHA 2026.4.3 or later, engine NOWEB or GOWS",
            )
        if release is not None and release < IDS_SINCE:
            return Finding(
                "message ids",
                "warn",
                f"WAHA {shown} predates pre-generated ids (2026.4.3): {without}",
                "WAHA 2026.4.3 or later, engine NOWEB or GOWS",
            )
        reason = verdict.reason if isinstance(verdict, Pause) else str(exc)
        return Finding(
            "message ids",
            "warn",
            f"not known: {reason}",
            "run the doctor again once a session is WORKING",
        )
    return Finding(
        "message ids",
        "ok",
        f"session '{probe.name}' hands out pre-generated ids: a re-send is delivered once",
    )


async def _check_exists(client: WahaClient, probe: SessionInfo | None) -> Finding:
    """check-exists on a harmless number: the session's own."""
    if probe is None:
        return Finding("check-exists", "warn", "not checked: WAHA has no session")
    own = "".join(ch for ch in (probe.me_id or "").split("@", 1)[0] if ch.isdigit())
    number = own or "15550000000"
    try:
        exists, _chat = await client.check_exists(probe.name, number)
    except WahaError as exc:
        verdict = decide(Op.CHECK, exc, session=probe.name)
        if isinstance(verdict, Pause) and verdict.ask_session:
            verdict = after_session_check(Op.CHECK, verdict, exc, probe)
        reason = getattr(verdict, "reason", None) or str(exc)
        return Finding(
            "check-exists",
            "warn",
            f"session '{probe.name}' cannot look numbers up now: {reason}",
            "--check-numbers campaigns pause until it can",
        )
    said = "found" if exists else "not found (an account not linked yet?)"
    return Finding(
        "check-exists", "ok", f"answers on session '{probe.name}' (its own number: {said})"
    )


def _session_finding(info: SessionInfo) -> Finding:
    name = f"session {info.name}"
    if info.working:
        who = info.me_id or "an unknown number"
        if info.timelocked:
            ends = f" until {info.timelock_until:%Y-%m-%d %H:%M} UTC" if info.timelock_until else ""
            return Finding(
                name,
                "warn",
                f"WORKING as {who}, but WhatsApp's reach-out timelock is active{ends}: new "
                "contacts cannot be messaged (error 463)",
                "wait it out; every try extends it",
            )
        return Finding(name, "ok", f"WORKING as {who}")
    verdict = session_verdict(info.name, info.status, waited=0.0, budget=Budget())
    if isinstance(verdict, Pause):  # the runner's words: "...: start it (...), then resume"
        fix = verdict.reason.split(": ", 1)[-1].removesuffix(", then resume")
    else:  # starting or restarting: the runner waits for it
        fix = "it is starting or restarting by itself: wait, then run the doctor again"
    return Finding(name, "warn", f"{info.status}: nothing is sent on it", fix)


# -- the events WebSocket ---------------------------------------------------------------


async def probe_websocket(url: str, key: Secret | None) -> tuple[str, int | None, str]:
    """Open WAHA's /ws and close it: ("open", None, ""), ("closed", code, reason) when
    WAHA closes it at once, or ("refused", HTTP status or None, why) for the handshake.
    WAHA reads the key for /ws from the `x-api-key` parameter: it goes there (and in the
    header), and never into anything this returns."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

    target = url + (f"&x-api-key={quote(key.reveal(), safe='')}" if key else "")
    headers = {"X-Api-Key": key.reveal()} if key else None
    # websockets' debug lines print the handshake, key and all: the feed's redacting log.
    quiet = ProtocolLog(logging.getLogger(f"{__name__}.protocol"), [key.reveal()] if key else [])
    try:
        async with connect(
            target, additional_headers=headers, open_timeout=5, close_timeout=2, logger=quiet
        ) as ws:
            try:
                await asyncio.wait_for(ws.recv(), WS_SETTLE)
            except TimeoutError:
                return "open", None, ""
            except ConnectionClosed as closed:
                rcvd = closed.rcvd
                return "closed", rcvd.code if rcvd else None, rcvd.reason if rcvd else ""
            return "open", None, ""  # an event already: served
    except InvalidStatus as exc:
        return "refused", exc.response.status_code, f"HTTP {exc.response.status_code}"
    except InvalidHandshake as exc:
        return "refused", None, type(exc).__name__
    except (OSError, TimeoutError) as exc:
        return (
            "refused",
            None,
            exc.strerror if isinstance(exc, OSError) and exc.strerror else "no answer",
        )


async def _events(base_url: str, key: Secret | None, probe: WsProbe) -> Finding:
    url = events_url(base_url)
    shown = url  # holds no key: the probe adds it to its own copy
    feed_fix = (
        "until it does, acks and replies come only by webhook: configure WAHA to push to "
        "`waha-tui webhook` (README)"
    )
    try:
        outcome, code, why = await probe(url, key)
    except Exception as exc:  # the probe's own failure: worded, never raised
        log.debug("the WebSocket probe failed: %r", exc)
        return Finding("events", "warn", f"could not open {shown}: {type(exc).__name__}", feed_fix)
    if outcome == "open":
        return Finding(
            "events", "ok", f"the WebSocket {shown} is served: acks and replies arrive live"
        )
    if outcome == "closed" and code == WS_REFUSED:
        detail = _close_reason(why)
        return Finding(
            "events",
            "warn",
            f"WAHA closed the WebSocket at once (4001{detail}): it does not serve these events",
            feed_fix,
        )
    if (outcome == "closed" and code == WS_UNAUTHORIZED) or (outcome == "refused" and code == 401):
        return Finding(
            "events",
            "warn",
            "WAHA refused the API key on its WebSocket",
            f"{CHECK_API_KEY}; {feed_fix}",
        )
    if outcome == "closed":
        return Finding(
            "events",
            "warn",
            f"WAHA closed the WebSocket at once (code {code}{_close_reason(why)})",
            feed_fix,
        )
    return Finding("events", "warn", f"no WebSocket at {shown} ({why})", feed_fix)


def _close_reason(reason: str) -> str:
    """A close reason, WAHA's JSON `{"error": ...}` unwrapped: ": <words>" or ""."""
    text = reason
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        text = str(json.loads(reason).get("error") or reason)
    return f": {' '.join(text.split())[:200]}" if text.strip() else ""


# -- the database -------------------------------------------------------------------------


def _database(target: str) -> list[Finding]:
    where = Path(target) if "://" not in target else None
    if where is not None and not where.exists():
        return [
            Finding(
                "database",
                "warn",
                f"{target} does not exist yet: waha-tui creates it when first used",
            )
        ]
    try:
        store = Store(target)
    except UserError as exc:
        return [Finding("database", "fail", str(exc), "check --db or WAHA_TUI_DB")]
    try:
        with store.read() as conn:
            running = conn.execute(
                sa.select(sa.func.count())
                .select_from(C)
                .where(C.c.status == CampaignStatus.RUNNING)
            ).scalar_one()
        try:
            with store.write() as conn:
                # A write that changes nothing: the lock and the permission, proven.
                conn.exec_driver_sql("UPDATE meta SET value = value WHERE key = 'schema_version'")
        except UserError as exc:
            return [
                Finding(
                    "database",
                    "fail",
                    f"opens, but cannot be written: {exc}",
                    "check the file's permissions and its folder's",
                )
            ]
    except UserError as exc:
        return [Finding("database", "fail", str(exc), "check --db or WAHA_TUI_DB")]
    finally:
        store.close()
    count = f"{running} campaign{'' if running == 1 else 's'} Running"
    return [
        Finding("database", "ok", f"{store.location}: schema {SCHEMA_VERSION}, writable, {count}")
    ]
