"""`waha-tui doctor`: the simulator over a real socket, a WebSocket endpoint over a real
socket, a real SQLite file; and the answers recorded from the real WAHA Core 2024.10.8,
replayed (nothing of that version can run here)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_server import serve
from engine_helpers import closed_port, make_campaign, module_simulator, reset_simulator
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from typer.testing import CliRunner

from waha_tui.cli import app
from waha_tui.config import Settings
from waha_tui.doctor import Finding, diagnose, failed, probe_websocket
from waha_tui.models import SCHEMA_VERSION
from waha_tui.secret import Secret
from waha_tui.simulator import SimulatorServer
from waha_tui.store import Store

KEY = "doctor-Key-7319-never-shown"
RECORDING = Path(__file__).resolve().parents[2] / "shared" / "waha" / "real-2024.10.8.json"
EXCHANGES = {e["file"]: e for e in json.loads(RECORDING.read_text())["exchanges"]}


@pytest.fixture(scope="module")
def module_server() -> Iterator[SimulatorServer]:
    yield from module_simulator()


@pytest.fixture
def sim(module_server: SimulatorServer) -> SimulatorServer:
    server = reset_simulator(module_server)
    server.state.require_api_key(KEY)
    return server


# WAHA's /ws as its gateway answers (NOTES.md section 9): every handshake accepted, then
# the key refused with 1008 "Unauthorized" (the key is read from x-api-key), or, as Core
# 2024.10.8, parameters it does not serve closed with 4001 and a JSON reason.
WS_MODE = {"core_refuses": False}


async def _ws(websocket: WebSocket) -> None:
    await websocket.accept()
    if websocket.query_params.get("x-api-key") != KEY:
        await websocket.close(1008, "Unauthorized")
        return
    if WS_MODE["core_refuses"]:
        await websocket.close(4001, json.dumps({"error": "Only session=* is supported"}))
        return
    await websocket.receive_text()  # open until the doctor closes it


@pytest.fixture(scope="module")
def ws_url() -> Iterator[str]:
    with serve(Starlette(routes=[WebSocketRoute("/ws", _ws)])) as url:
        yield url


def probe_at(ws_base: str) -> Any:
    """The real probe, sent to the WebSocket endpoint instead of the simulator's host."""

    async def probe(url: str, key: Secret | None) -> tuple[str, int | None, str]:
        host = url.split("/ws", 1)[0]
        return await probe_websocket(url.replace(host, ws_base.replace("http", "ws")), key)

    return probe


def by_check(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings}


def doctor_cli(db: Path, url: str, key: str | None, *args: str) -> Any:
    env = {"WAHA_TUI_DB": str(db), "WAHA_URL": url, "WAHA_API_KEY": key, "WAHA_API_KEY_FILE": None}
    return CliRunner().invoke(app, ["doctor", *args], env=env)


async def test_all_ok(sim: SimulatorServer, tmp_path: Path, caplog: Any) -> None:
    """Everything against the simulator, its /ws included (the key in x-api-key)."""
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "campaigns.db"
    store = Store(db)
    make_campaign(store, 1)
    store.close()
    settings = Settings(db=str(db), waha_url=sim.url, api_key=Secret(KEY))
    findings = await diagnose(settings)
    assert [f.check for f in findings] == [
        "waha",
        "api key",
        "version",
        "message ids",
        "events",
        "check-exists",
        "session default",
        "database",
    ]
    assert [f.level for f in findings] == ["ok"] * 8, findings
    found = by_check(findings)
    assert found["version"].detail == "WAHA 2026.7.2, engine NOWEB, tier PLUS"
    assert "refuses requests without one" in found["api key"].detail
    assert found["session default"].detail == "WORKING as 15550000000@c.us"
    assert found["database"].detail.endswith(
        f"schema {SCHEMA_VERSION}, writable, 0 campaigns Running"
    )
    assert sim.state.lookups == [("default", "15550000000")]  # its own number: harmless
    assert found["events"].detail.startswith("the WebSocket ws://127.0.0.1:")
    assert not failed(findings)
    # websockets' handshake lines would carry the key: never in the log, even at debug.
    assert all(KEY not in r.getMessage() for r in caplog.records)


def test_all_ok_through_the_cli_exits_0(sim: SimulatorServer, tmp_path: Path) -> None:
    result = doctor_cli(tmp_path / "c.db", sim.url, KEY)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"ok    waha: WAHA answers at {sim.url}"
    # The events line depends on the simulator's /ws; a warning never fails the doctor.
    assert {line.split()[0] for line in lines} <= {"ok", "warn"}
    assert KEY not in result.stdout + result.stderr


async def test_the_websocket_refusals_are_worded(sim: SimulatorServer, ws_url: str) -> None:
    settings = Settings(db=":memory:", waha_url=sim.url, api_key=Secret(KEY))
    WS_MODE["core_refuses"] = True
    try:
        core = by_check(await diagnose(settings, websocket=probe_at(ws_url)))["events"]
    finally:
        WS_MODE["core_refuses"] = False
    assert core.level == "warn"
    assert core.detail == (
        "WAHA closed the WebSocket at once (4001: Only session=* is supported): it does not "
        "serve these events"
    )
    assert "waha-tui webhook" in core.fix
    # A key /ws refuses (a key scoped to other sessions, say): 1008 Unauthorized.
    wrong = await probe_at(ws_url)("ws://x/ws?session=*&events=*", Secret("not-the-key"))
    assert wrong == ("closed", 1008, "Unauthorized")


def test_waha_down(tmp_path: Path) -> None:
    result = doctor_cli(tmp_path / "c.db", f"http://127.0.0.1:{closed_port()}", KEY)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("fail  waha: WAHA at http://127.0.0.1:")
    assert "is unreachable (connection refused); start WAHA" in lines[0]
    assert lines[1].startswith("warn  database: ") and "does not exist yet" in lines[1]
    assert len(lines) == 2 and "Traceback" not in result.output


def test_key_wrong(sim: SimulatorServer, tmp_path: Path) -> None:
    result = doctor_cli(tmp_path / "c.db", sim.url, "wrong-key-4242", "--json")
    assert result.exit_code == 1
    found = {f["check"]: f for f in json.loads(result.stdout)}
    assert found["api key"] == {
        "check": "api key",
        "level": "fail",
        "detail": "WAHA refused the API key given (HTTP 401)",
        "fix": "check --api-key or WAHA_API_KEY",
    }
    assert "wrong-key-4242" not in result.stdout + result.stderr
    assert set(found) == {"waha", "api key", "database"}


def test_no_working_session(sim: SimulatorServer, ws_url: str, tmp_path: Path) -> None:
    sim.state.set_status("default", "STOPPED")
    settings = Settings(db=str(tmp_path / "c.db"), waha_url=sim.url, api_key=Secret(KEY))
    findings = asyncio.run(diagnose(settings, websocket=probe_at(ws_url)))
    found = by_check(findings)
    assert found["session default"] == Finding(
        "session default",
        "warn",
        "STOPPED: nothing is sent on it",
        "start it (and scan the QR code if it asks)",
    )
    assert found["sessions"].level == "fail"
    assert found["sessions"].detail == "no session is WORKING: nothing can be sent"
    assert found["check-exists"].detail == (
        "session 'default' cannot look numbers up now: session 'default' is STOPPED: start it "
        "(and scan the QR code if it asks), then resume"
    )
    assert failed(findings)
    result = doctor_cli(tmp_path / "c.db", sim.url, KEY)
    assert result.exit_code == 1
    assert "fail  sessions: no session is WORKING" in result.stdout


# -- the real WAHA Core 2024.10.8, replayed ----------------------------------------------


def recorded_waha() -> httpx.MockTransport:
    """Answers each route as the real server answered it, with its session STOPPED: the
    one place a mock is right (nothing of that version runs here)."""
    routes = {
        ("GET", "/ping"): "02_ping_key",
        ("GET", "/api/server/version"): "04_version_key",
        ("GET", "/api/default/new-message-id"): "16_new_message_id",
        ("GET", "/api/contacts/check-exists"): "18e_check_exists_stopped",
    }

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/sessions":
            # It does not enforce the key: the same answer with and without one.
            name = (
                "18f_sessions_all_stopped"
                if "x-api-key" in request.headers
                else "05_sessions_nokey"
            )
        else:
            name = routes[(request.method, request.url.path)]
        resp = EXCHANGES[name]["response"]
        return httpx.Response(
            resp["status"],
            content=json.dumps(resp["body"]).encode(),
            headers={"content-type": resp["content_type"]},
        )

    return httpx.MockTransport(handler)


async def test_the_answers_of_waha_2024_10_8_are_worded_right(tmp_path: Path) -> None:
    settings = Settings(db=str(tmp_path / "c.db"), waha_url="http://waha.test", api_key=Secret(KEY))

    async def core_ws(url: str, key: Secret | None) -> tuple[str, int | None, str]:
        return "open", None, ""  # Core 2024.10.8 serves session=* with events=*

    findings = await diagnose(settings, transport=recorded_waha(), websocket=core_ws)
    found = by_check(findings)
    assert found["version"].detail == "WAHA 2024.10.8, engine NOWEB, tier CORE"
    assert found["api key"].level == "warn"
    assert "also requests without any key" in found["api key"].detail
    assert found["message ids"].level == "warn"
    # Its 404 ("Cannot GET /api/default/new-message-id") on a STOPPED session cannot tell a
    # missing route from a stopped session; its version can.
    assert found["message ids"].detail == (
        "WAHA 2024.10.8 predates pre-generated ids (2026.4.3): without them a send WAHA does "
        "not confirm is marked unknown and never re-sent by itself"
    )
    assert found["check-exists"].level == "warn"
    assert "session 'default' is STOPPED: start it" in found["check-exists"].detail
    assert found["session default"].detail == "STOPPED: nothing is sent on it"
    assert found["sessions"].level == "fail"
    assert failed(findings)
    assert all(KEY not in f.detail + f.fix for f in findings)
