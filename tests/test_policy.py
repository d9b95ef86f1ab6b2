"""The error policy over every exchange recorded from the real WAHA server.

Each exchange of ../shared/waha/real-2024.10.8.json is replayed to the real WahaClient
through an httpx transport that answers exactly what the server answered (status,
content type, body; a timeout for the one it never answered). The client's error class,
and for the calls the runner makes the policy's verdict, must be what this table says:
a change in classification or policy shows up here exchange by exchange.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine_helpers import module_simulator, reset_simulator

from waha_tui.runner.policy import (
    Budget,
    FailRecipient,
    Kind,
    Op,
    Pause,
    Proceed,
    Retry,
    Unknown,
    Verdict,
    after_session_check,
    decide,
)
from waha_tui.simulator import SimulatorServer
from waha_tui.waha import Timeouts, WahaClient
from waha_tui.waha.client import SessionInfo
from waha_tui.waha.errors import (
    NoAnswer,
    Refused,
    ServerError,
    SessionMissing,
    SessionNotWorking,
    SessionUnavailable,
    WahaError,
)

RECORDING = Path(__file__).resolve().parents[2] / "shared" / "waha" / "real-2024.10.8.json"
EXCHANGES: list[dict[str, Any]] = json.loads(RECORDING.read_text())["exchanges"]
BY_FILE = {e["file"]: e for e in EXCHANGES}


def replay(exchange: dict[str, Any]) -> httpx.MockTransport:
    """Answers any request as the real server answered this one, after checking that the
    client asked for the same route."""
    rec, resp = exchange["request"], exchange["response"]

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == rec["method"]
        assert request.url.path == rec["path"].split("?", 1)[0]
        if resp["status"] == 0:
            raise httpx.ReadTimeout("no answer", request=request)
        body = resp["body"]
        content = b"" if body is None else json.dumps(body).encode()
        return httpx.Response(
            resp["status"], content=content, headers={"content-type": resp["content_type"]}
        )

    return httpx.MockTransport(handler)


def session_of(exchange: dict[str, Any]) -> str:
    rec = exchange["request"]
    if isinstance(rec.get("json"), dict) and rec["json"].get("session"):
        return str(rec["json"]["session"])
    found = (
        re.search(r"[?&]session=([^&]+)", rec["path"])
        or re.match(r"/api/sessions/([^/?]+)", rec["path"])
        or re.match(r"/api/([^/?]+)/", rec["path"])
    )
    return found.group(1) if found else "default"


Call = Callable[[WahaClient, str], Awaitable[Any]]
PHONE, CHAT = "4915100000001", "4915100000001@c.us"

# Route -> (the client's call that makes that request, the runner's op for it or None).
ROUTES: list[tuple[str, Call, Op | None]] = [
    ("GET /ping", lambda c, s: c.ping(), None),
    ("GET /api/server/version", lambda c, s: c.server_version(), None),
    ("GET /api/sessions", lambda c, s: c.list_sessions(), None),
    ("POST /api/sessions", lambda c, s: c.create_session(s), None),
    ("POST /api/sessions/[^/]+/start", lambda c, s: c.start_session(s), None),
    ("POST /api/sessions/[^/]+/stop", lambda c, s: c.stop_session(s), None),
    ("GET /api/sessions/[^/]+", lambda c, s: c.get_session(s), Op.SESSION),
    ("GET /api/[^/]+/auth/qr", lambda c, s: c.get_qr_value(s), None),
    ("POST /api/[^/]+/auth/request-code", lambda c, s: c.request_pairing_code(s, PHONE), None),
    ("POST /api/sendText", lambda c, s: c.send_text(s, CHAT, "hi"), Op.SEND),
    (
        "POST /api/sendImage",
        lambda c, s: c.send_image(s, CHAT, caption="", data=b"x", mimetype="image/png"),
        Op.SEND,
    ),
    ("POST /api/startTyping", lambda c, s: c.start_typing(s, CHAT), Op.TYPING),
    ("POST /api/stopTyping", lambda c, s: c.stop_typing(s, CHAT), Op.TYPING),
    ("GET /api/[^/]+/new-message-id", lambda c, s: c.new_message_id(s), Op.NEW_ID),
    ("GET /api/contacts/check-exists", lambda c, s: c.check_exists(s, PHONE), Op.CHECK),
]
# Answers waha-tui never asks for (the recording covers more of WAHA than we use).
NOT_CALLED = {
    "07b_health_key",
    "07c_server_status",
    "04b_apiversion_key",
    "17c_me",
    "17d_screenshot",
    "36b_webjs_screenshot",
    "19j_put_session",
}


def route_of(exchange: dict[str, Any]) -> tuple[Call, Op | None]:
    rec = exchange["request"]
    line = f"{rec['method']} {rec['path'].split('?', 1)[0]}"
    for pattern, call, op in ROUTES:
        if re.fullmatch(pattern, line):
            return call, op
    raise LookupError(line)


@dataclass(frozen=True)
class Expect:
    error: type[WahaError]
    # The runner's verdict for a send without an id (and, for sendText, with one); for a
    # session check, id fetch or typing call, the verdict for that op.
    verdict: type | None = None
    words: str = ""  # a phrase the verdict's reason (or the error's message) must carry
    kind: Kind | None = None  # for a Retry
    # The session's status GET /api/sessions/{s} gives afterwards, for verdicts that ask.
    then: str | None = None


STILL_STARTING = Expect(
    SessionNotWorking, Retry, "waiting for session 'default' (STARTING)", Kind.SESSION
)
CORE_ONLY = Expect(Refused, Pause, "WAHA will not send on session 'nosuch': WAHA Core support only")
STOPPED = Expect(
    SessionUnavailable, Pause, "session 'default' is STOPPED: start it", then="STOPPED"
)

ERRORS: dict[str, Expect] = {
    "08_sessions_create": Expect(Refused, words="already exists"),
    "08b_sessions_create_other": Expect(Refused, words="Core support only 'default'"),
    "08c_session_get_unknown": Expect(SessionMissing, Pause, "WAHA has no session named 'second'"),
    "10_qr_default": Expect(SessionNotWorking, words="is STARTING, not SCAN_QR_CODE"),
    "11_qr_json": Expect(SessionNotWorking, words="is STARTING, not SCAN_QR_CODE"),
    "12_qr_raw": Expect(SessionNotWorking, words="is STARTING, not SCAN_QR_CODE"),
    "12b_qr_image_json": Expect(SessionNotWorking, words="is STARTING, not SCAN_QR_CODE"),
    "13_request_code": Expect(NoAnswer, words="requesting a pairing code for session 'default'"),
    "14_sendText_starting": STILL_STARTING,
    "15_sendText_unknown": CORE_ONLY,
    # Without a session field WAHA takes `default`'s name for it: the same 422 as above;
    # our client always names the session, so the verdict names the one it asked for.
    "15b_sendText_nosessionfield": Expect(
        Refused, Pause, "WAHA will not send on session 'default'"
    ),
    "15c_sendText_badbody": STILL_STARTING,  # WAHA checks the session before the body
    # 2024.10.8 has no such route: asked once while the session works, remembered.
    "16_new_message_id": Expect(
        SessionUnavailable, Proceed, "hands out no message ids", then="WORKING"
    ),
    # A number check before a first message is decided as a send is.
    "17_check_exists": STILL_STARTING,
    "17b_check_exists_unknown": CORE_ONLY,
    "18c_sendText_stopped": STOPPED,
    "18d_qr_stopped": Expect(SessionUnavailable, words="not available"),
    "18e_check_exists_stopped": STOPPED,
    "18h_request_code_stopped": Expect(SessionUnavailable, words="not available"),
    "19_create_start_true": Expect(Refused, words="already exists"),
    "19b_sendImage_stopped": STOPPED,
    "19c_startTyping_stopped": Expect(SessionUnavailable, Proceed, "typing skipped"),
    "19e_start_again": Expect(Refused, words="already started"),
    "19f_sendImage_starting": STILL_STARTING,
    "19g_startTyping_starting": Expect(SessionNotWorking, Proceed, "typing skipped"),
    "19h_stopTyping_starting": Expect(SessionNotWorking, Proceed, "typing skipped"),
    "33b_webjs_qr": Expect(SessionNotWorking, words="is FAILED, not SCAN_QR_CODE"),
    "33c_webjs_qr_json": Expect(SessionNotWorking, words="is FAILED, not SCAN_QR_CODE"),
    "33d_webjs_qr_raw": Expect(SessionNotWorking, words="is FAILED, not SCAN_QR_CODE"),
    "34_webjs_request_code": Expect(ServerError, words="Evaluation failed"),
    # WEBJS restarting: FAILED comes back by itself, so it is waited for, like STARTING.
    "35_webjs_sendText": Expect(
        SessionNotWorking, Retry, "waiting for session 'default' (FAILED)", Kind.SESSION
    ),
    "35b_webjs_sendText_unknown": CORE_ONLY,
    "36_webjs_check_exists": Expect(
        SessionNotWorking, Retry, "waiting for session 'default' (FAILED)", Kind.SESSION
    ),
    "40e_fresh_sendText": STILL_STARTING,
}


def test_the_table_covers_every_recorded_exchange() -> None:
    failing = {e["file"] for e in EXCHANGES if not 200 <= e["response"]["status"] < 300}
    assert failing - NOT_CALLED == set(ERRORS)
    for e in EXCHANGES:
        if e["file"] not in NOT_CALLED:
            route_of(e)  # every other exchange is a call waha-tui makes


@pytest.mark.parametrize(
    "name",
    [e["file"] for e in EXCHANGES if e["file"] not in NOT_CALLED and e["file"] not in ERRORS],
)
async def test_a_recorded_success_is_read_without_error(name: str) -> None:
    exchange = BY_FILE[name]
    call, _ = route_of(exchange)
    async with WahaClient("http://waha.test", transport=replay(exchange)) as client:
        result = await call(client, session_of(exchange))
    if isinstance(result, SessionInfo):
        assert result.status == exchange["response"]["body"]["status"]


def verdict_for(op: Op, error: WahaError, session: str, expect: Expect) -> Verdict:
    verdict = decide(op, error, session=session, budget=Budget())
    if isinstance(verdict, Pause) and verdict.ask_session:
        info = SessionInfo(name=session, status=expect.then) if expect.then else None
        verdict = after_session_check(op, verdict, error, info, budget=Budget())
    return verdict


@pytest.mark.parametrize("name", sorted(ERRORS))
async def test_a_recorded_error_is_classified_and_decided_as_the_table_says(name: str) -> None:
    exchange, expect = BY_FILE[name], ERRORS[name]
    call, op = route_of(exchange)
    session = session_of(exchange)
    async with WahaClient("http://waha.test", transport=replay(exchange)) as client:
        with pytest.raises(WahaError) as info:
            await call(client, session)
    error = info.value
    assert type(error) is expect.error
    assert "may have been" not in str(error)  # no recorded call here was a lost send
    if op is None:
        assert expect.verdict is None
        assert expect.words in str(error)
        return
    ops = [op, Op.SEND_WITH_ID] if exchange["request"]["path"] == "/api/sendText" else [op]
    for each in ops:
        verdict = verdict_for(each, error, session, expect)
        assert type(verdict) is expect.verdict, (each, verdict)
        assert not isinstance(verdict, FailRecipient | Unknown)  # none is the recipient's
        text = getattr(verdict, "reason", None) or getattr(verdict, "note", "")
        assert expect.words in text, (each, text)
        if isinstance(verdict, Retry):
            assert verdict.kind == expect.kind


# -- every simulator fault, through the real client on a real socket ------------------------

SIM_FAULTS: dict[str, tuple[Callable[[Any], None], str, dict[Op, tuple[type, str]]]] = {
    # name: (set the fault, the call, {op: (verdict, words in its reason)})
    "fail_chat (one bad recipient)": (
        lambda s: s.fail_chat(CHAT),
        "send",
        {Op.SEND: (FailRecipient, "HTTP 400"), Op.SEND_WITH_ID: (FailRecipient, "HTTP 400")},
    ),
    "fail_chat status=500": (
        lambda s: s.fail_chat(CHAT, status=500),
        "send",
        {Op.SEND: (Pause, "Connection Closed")},
    ),
    "fail_next 463": (
        lambda s: s.fail_next_sends(1, "2 UNKNOWN: server returned error 463"),
        "send",
        {Op.SEND: (Pause, "reach-out timelock"), Op.SEND_WITH_ID: (Pause, "error 463")},
    ),
    "fail_next Connection Closed": (
        lambda s: s.fail_next_sends(1, "Connection Closed"),
        "send",
        {Op.SEND: (Pause, "closed the connection")},
    ),
    "fail_next rate-overlimit": (
        lambda s: s.fail_next_sends(1, "rate-overlimit", data=429),
        "send",
        {Op.SEND: (Pause, "rate limit")},
    ),
    "timelock": (
        lambda s: s.timelock("default", 4102444800),  # 2100-01-01
        "send",
        {Op.SEND: (Pause, "ends 2100-01-01 00:00 UTC")},
    ),
    "proxy 413 before WAHA": (
        lambda s: s.proxy_error(413, after_record=False),
        "send",
        {Op.SEND: (Pause, "too large")},
    ),
    "proxy 502 after the send": (
        lambda s: s.proxy_error(502, after_record=True),
        "send",
        {Op.SEND: (Unknown, "HTTP 502"), Op.SEND_WITH_ID: (Retry, "HTTP 502")},
    ),
    "proxy 504 before WAHA": (
        lambda s: s.proxy_error(504, after_record=False),
        "send",
        {Op.SEND: (Unknown, "HTTP 504"), Op.SEND_WITH_ID: (Retry, "HTTP 504")},
    ),
    "hang past the timeout": (
        lambda s: s.set_hang(1.0),
        "send",
        {Op.SEND: (Unknown, "may have been sent"), Op.SEND_WITH_ID: (Retry, "no answer")},
    ),
    "drop after recording": (
        lambda s: s.drop_after_record(1),
        "send",
        {Op.SEND: (Unknown, "connection to WAHA was lost (")},
    ),
    "api key rotated": (
        lambda s: s.require_api_key("rotated"),
        "send",
        {Op.SEND: (Pause, "WAHA_API_KEY"), Op.SESSION: (Pause, "WAHA_API_KEY")},
    ),
    "session STOPPED": (
        lambda s: s.set_status("default", "STOPPED"),
        "send",
        {Op.SEND: (Pause, "is STOPPED: start it"), Op.TYPING: (Proceed, "typing skipped")},
    ),
    "session STARTING (status wait)": (
        lambda s: (s.set_status("default", "STARTING"), s.status_wait(0.2, 0.05)),
        "send",
        {Op.SEND: (Retry, "waiting for session 'default' (STARTING)")},
    ),
    "session FAILED": (
        lambda s: s.set_status("default", "FAILED"),
        "send",
        {Op.SEND: (Retry, "waiting for session 'default' (FAILED)")},
    ),
    "session SCAN_QR_CODE": (
        lambda s: s.set_status("default", "SCAN_QR_CODE"),
        "send",
        {Op.SEND: (Pause, "scan the QR code")},
    ),
    "Core tier, another session": (
        lambda s: setattr(s, "tier", "CORE"),
        "send sales",
        {Op.SEND: (Pause, "will not send on session 'sales'")},
    ),
    "Core tier, asking for another session": (
        lambda s: setattr(s, "tier", "CORE"),
        "session sales",
        {Op.SESSION: (Pause, "no session named 'sales'")},
    ),
    "a missing session": (lambda s: None, "session nosuch", {Op.SESSION: (Pause, "create it")}),
    "check-exists rate-overlimit": (
        lambda s: s.fail_next_checks(1),
        "check",
        {Op.CHECK: (Pause, "rate limit")},
    ),
    "check-exists on a STOPPED session": (
        lambda s: s.set_status("default", "STOPPED"),
        "check",
        {Op.CHECK: (Pause, "is STOPPED: start it")},
    ),
    "WEBJS: no pre-generated ids": (
        lambda s: setattr(s, "engine", "WEBJS"),
        "newid",
        {Op.NEW_ID: (Proceed, "hands out no message ids")},
    ),
    "a server before 2026.4.3: no id route": (
        lambda s: setattr(s, "message_ids", False),
        "newid",
        {Op.NEW_ID: (Proceed, "hands out no message ids")},
    ),
}


@pytest.fixture(scope="module")
def fault_server() -> Iterator[SimulatorServer]:
    yield from module_simulator()


@pytest.mark.parametrize("name", sorted(SIM_FAULTS))
async def test_every_simulator_fault_gets_its_verdict(
    name: str, fault_server: SimulatorServer
) -> None:
    state = reset_simulator(fault_server).state
    inject, call, expected = SIM_FAULTS[name]
    inject(state)
    timeouts = Timeouts(connect=1.0, read=0.6, write=1.0, pool=1.0)
    async with WahaClient(fault_server.url, timeouts=timeouts) as client:
        what, _, session = call.partition(" ")
        session = session or "default"
        run: Callable[[], Awaitable[Any]] = {
            "send": lambda: client.send_text(session, CHAT, "hi"),
            "session": lambda: client.get_session(session),
            "newid": lambda: client.new_message_id(session),
            "check": lambda: client.check_exists(session, PHONE),
        }[what]
        with pytest.raises(WahaError) as info:
            await run()
        error = info.value
        for op, (kind, words) in expected.items():
            verdict = decide(op, error, session=session, budget=Budget())
            if isinstance(verdict, Pause) and verdict.ask_session:
                # As the runner does: ask WAHA for the session; if that fails too, the
                # first verdict stands.
                try:
                    about: SessionInfo | None = await client.get_session(session)
                except SessionMissing:
                    about = None
                except WahaError:
                    about = SessionInfo(session, "UNKNOWN")
                    verdict = Pause(verdict.reason)
                if verdict.ask_session:
                    verdict = after_session_check(op, verdict, error, about, budget=Budget())
            assert type(verdict) is kind, (op, verdict)
            text = getattr(verdict, "reason", None) or getattr(verdict, "note", "")
            assert words in text, (op, text)
    state.reset()


def test_an_unanswered_number_check_is_asked_again_then_pauses() -> None:
    # A check sends nothing: repeating it is safe, and it never makes a recipient unknown.
    lost = NoAnswer("WAHA gave no answer within 30 s for GET /api/contacts/check-exists")
    first = decide(Op.CHECK, lost, session="default", budget=Budget(ambiguous=(1.0,)))
    assert isinstance(first, Retry) and first.kind == Kind.AMBIGUOUS
    assert first.maybe_sent is False
    spent = decide(
        Op.CHECK,
        lost,
        session="default",
        tries={Kind.AMBIGUOUS: 1},
        budget=Budget(ambiguous=(1.0,)),
    )
    assert isinstance(spent, Pause)
    assert spent.reason.startswith("WAHA did not answer a number check (")
    refused = Refused("WAHA refused", status_code=400, detail="phone is invalid")
    assert isinstance(decide(Op.CHECK, refused, session="default"), FailRecipient)
