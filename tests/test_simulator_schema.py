"""Every simulator answer against WAHA's own OpenAPI spec (2026.7.2, shared beside the repo).

The spec says OpenAPI 3.1, so its schemas are JSON Schema 2020-12, but NestJS Swagger still
writes two OpenAPI 3.0 habits into it, which are translated before validating:
- `required: true` inside a property (a boolean, where 2020-12 wants a list) is dropped;
- `nullable: true` is turned into "or null", which is what the generator meant.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from waha_tui.simulator import SimState, Simulator

SPEC_PATH = Path(__file__).resolve().parents[2] / "shared/waha/openapi-2026.7.2.json"
SPEC_URI = "urn:waha:openapi-2026.7.2"
CHAT = "491511234567@c.us"

# Fields WAHA documents as null although the spec's schema does not say nullable:
# `me` is null while a session is stopped or not paired, and `config.proxy` is null when no
# proxy is set (WAHA docs: how-to/sessions; /work/shared/waha/NOTES.md section 2).
DOCUMENTED_NULLS = [("SessionInfo", "me"), ("SessionConfig", "proxy")]
# Fields WAHA sends that the spec's schema does not list: SessionInfo's
# `"engine": {"engine": "NOWEB"}` (WAHA docs: how-to/sessions; NOTES.md section 2), and the
# lifecycle routes' SessionDTO, which WAHA answers with the re-read session info, `me` and
# `engine` included (real-2024.10.8.json: 08d_session_start, 18_session_stop).
DOCUMENTED_EXTRAS = {"SessionInfo": {"engine"}, "SessionDTO": {"me", "engine"}}


# -- the spec ------------------------------------------------------------------------------


@cache
def raw_spec() -> dict[str, Any]:
    if not SPEC_PATH.is_file():
        pytest.fail(
            f"WAHA's OpenAPI spec is missing: expected it at {SPEC_PATH} "
            "(the shared/ folder must sit beside the repository checkout)",
            pytrace=False,
        )
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


def to_json_schema(node: Any) -> Any:
    """Translate the spec's OpenAPI 3.0 leftovers into plain JSON Schema 2020-12."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {
        key: to_json_schema(value)
        for key, value in node.items()
        if not (key == "required" and isinstance(value, bool)) and key != "nullable"
    }
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def spec() -> dict[str, Any]:
    doc = copy.deepcopy(raw_spec())
    schemas = doc["components"]["schemas"]
    for component, field in DOCUMENTED_NULLS:
        schemas[component]["properties"][field]["nullable"] = True
    return to_json_schema(doc)


@cache
def registry() -> Registry:
    resource = Resource(contents=spec(), specification=DRAFT202012)
    return Registry().with_resource(uri=SPEC_URI, resource=resource)


def validate(instance: Any, schema: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(schema, registry=registry())
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
    )


def component(name: str) -> dict[str, Any]:
    assert name in spec()["components"]["schemas"], f"no component {name} in the spec"
    return {"$ref": f"{SPEC_URI}#/components/schemas/{name}"}


def response_schema(method: str, path: str, status: int) -> dict[str, Any] | None:
    """What the spec declares for this operation's answer (None: no JSON body declared)."""
    operation = spec()["paths"][path][method.lower()]
    responses = operation["responses"]
    assert str(status) in responses, f"{method} {path}: the spec declares {list(responses)}"
    content = responses[str(status)].get("content") or {}
    schema = (content.get("application/json") or {}).get("schema")
    if schema is None:
        return None
    # Resolve its refs inside the whole spec document.
    return {
        "$ref": f"{SPEC_URI}#/paths/{_pointer(path)}/{method.lower()}/responses/{status}"
        "/content/application~1json/schema"
    }


def _pointer(path: str) -> str:
    return path.replace("~", "~0").replace("/", "~1")


def declared_fields(name: str) -> set[str]:
    properties = spec()["components"]["schemas"][name].get("properties", {})
    return set(properties) | DOCUMENTED_EXTRAS.get(name, set())


# -- the simulator --------------------------------------------------------------------------


@pytest.fixture
def state() -> SimState:
    st = SimState(
        start_delay=60.0,  # STARTING stays STARTING for the test
        sessions={
            "default": "WORKING",
            "off": "STOPPED",
            "qr": "SCAN_QR_CODE",
            "failed": "FAILED",
        },
    )
    st.start("booting")
    return st


@pytest.fixture
async def http(state: SimState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=Simulator(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://waha.test") as client:
        yield client


async def check(
    http: httpx.AsyncClient,
    method: str,
    spec_path: str,
    url: str,
    *,
    status: int,
    component_name: str | None = None,
    **kwargs: Any,
) -> Any:
    """Call the simulator; check the status and the body against the spec's declared schema
    for that operation, and against the named component."""
    resp = await http.request(method, url, **kwargs)
    assert resp.status_code == status, f"{method} {url}: {resp.status_code} {resp.text}"
    declared = response_schema(method, spec_path, status)
    body = resp.json() if resp.content else None
    if declared is not None:
        validate(body, declared)
    if component_name is not None:
        validate(body, component(component_name))
        undeclared = set(body) - declared_fields(component_name)
        assert not undeclared, f"{component_name} has no fields {sorted(undeclared)}"
    return body


# -- the tests ------------------------------------------------------------------------------


def test_spec_is_found_and_is_openapi_31() -> None:
    assert raw_spec()["openapi"].startswith("3.1")
    assert len(raw_spec()["paths"]) > 100
    jsonschema.Draft202012Validator.check_schema(spec()["components"]["schemas"]["WAMessage"])


def test_the_validator_is_not_vacuous() -> None:
    """The translated spec still rejects what WAHA would never send."""
    good = {"name": "default", "status": "WORKING", "presence": {}, "timestamps": {}}
    validate(good, component("SessionInfo"))
    bad = [
        ({**good, "status": "ONLINE"}, "SessionInfo"),
        ({k: v for k, v in good.items() if k != "presence"}, "SessionInfo"),
        ({**good, "me": {"id": "1@c.us"}}, "SessionInfo"),  # me without pushName
        ({**good, "timestamps": {"activity": "yesterday"}}, "SessionInfo"),
        ({"name": "x"}, "SessionDTO"),
        ({"numberExists": "yes"}, "WANumberExistResult"),
        ({"id": 5}, "NewMessageIDResponse"),
        ({}, "QRCodeValue"),
        ({"worker": {"id": None}}, "WAHAEnvironment"),
        ({"id": "x", "ack": 9}, "WAMessage"),
    ]
    for instance, name in bad:
        with pytest.raises(AssertionError):
            validate(instance, component(name))
    # The operations' declared answers resolve and reject too.
    qr = response_schema("GET", "/api/{session}/auth/qr", 200)
    listed = response_schema("GET", "/api/sessions", 200)
    assert qr is not None and listed is not None
    validate({"value": "2@abc"}, qr)
    validate({"mimetype": "image/png", "data": "iVBO"}, qr)
    for instance, schema in [({"code": "x"}, qr), ([{"name": 1}], listed), ({}, listed)]:
        with pytest.raises(AssertionError):
            validate(instance, schema)
    # ... and nullable fields accept null.
    validate({**good, "timestamps": {"activity": None}, "me": None}, component("SessionInfo"))


async def test_ping(http: httpx.AsyncClient) -> None:
    await check(http, "GET", "/ping", "/ping", status=200, component_name="PingResponse")


async def test_server_version(http: httpx.AsyncClient) -> None:
    body = await check(
        http,
        "GET",
        "/api/server/version",
        "/api/server/version",
        status=200,
        component_name="WAHAEnvironment",
    )
    assert body["worker"] == {"id": None}


async def test_session_list_in_every_status(http: httpx.AsyncClient) -> None:
    body = await check(
        http, "GET", "/api/sessions", "/api/sessions", status=200, params={"all": "true"}
    )
    assert {s["status"] for s in body} == {
        "WORKING",
        "STOPPED",
        "SCAN_QR_CODE",
        "FAILED",
        "STARTING",
    }
    for item in body:
        validate(item, component("SessionInfo"))
        assert set(item) <= declared_fields("SessionInfo")


@pytest.mark.parametrize("name", ["default", "off", "qr", "failed", "booting"])
async def test_session_info(http: httpx.AsyncClient, name: str) -> None:
    body = await check(
        http,
        "GET",
        "/api/sessions/{session}",
        f"/api/sessions/{name}",
        status=200,
        component_name="SessionInfo",
    )
    assert (body["me"] is None) == (name != "default")


async def test_session_create(http: httpx.AsyncClient) -> None:
    await check(
        http,
        "POST",
        "/api/sessions",
        "/api/sessions",
        status=201,
        component_name="SessionDTO",
        json={"name": "created"},
    )


@pytest.mark.parametrize(
    ("action", "name"),
    [
        ("start", "off"),  # a running session's start is a 422 (19e_start_again)
        *[(a, n) for a in ("stop", "restart", "logout") for n in ("default", "off", "qr")],
    ],
)
async def test_session_actions(http: httpx.AsyncClient, action: str, name: str) -> None:
    await check(
        http,
        "POST",
        f"/api/sessions/{{session}}/{action}",
        f"/api/sessions/{name}/{action}",
        status=201,
        component_name="SessionDTO",
    )


async def test_send_text(http: httpx.AsyncClient) -> None:
    body = await check(
        http,
        "POST",
        "/api/sendText",
        "/api/sendText",
        status=201,
        component_name="WAMessage",
        json={"session": "default", "chatId": CHAT, "text": "hi"},
    )
    assert (body["ack"], body["ackName"]) == (0, "PENDING")


async def test_send_image(http: httpx.AsyncClient) -> None:
    await check(
        http,
        "POST",
        "/api/sendImage",
        "/api/sendImage",
        status=201,
        component_name="WAMessage",
        json={
            "session": "default",
            "chatId": CHAT,
            "caption": "c",
            "file": {"mimetype": "image/png", "filename": "a.png", "data": "iVBORw0KGgo="},
        },
    )


async def test_qr_raw_and_base64(http: httpx.AsyncClient) -> None:
    raw = await check(
        http,
        "GET",
        "/api/{session}/auth/qr",
        "/api/qr/auth/qr",
        status=200,
        component_name="QRCodeValue",
        params={"format": "raw"},
    )
    assert raw["value"]
    image = await check(
        http,
        "GET",
        "/api/{session}/auth/qr",
        "/api/qr/auth/qr",
        status=200,
        component_name="Base64File",
        params={"format": "image"},
        headers={"Accept": "application/json"},
    )
    assert image["mimetype"] == "image/png" and image["data"]
    png = await http.get("/api/qr/auth/qr", headers={"Accept": "image/png"})
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")


async def test_request_code(http: httpx.AsyncClient) -> None:
    body = await check(
        http,
        "POST",
        "/api/{session}/auth/request-code",
        "/api/qr/auth/request-code",
        status=201,
        json={"phoneNumber": "15551234567"},
    )
    assert set(body) == {"code"}


async def test_new_message_id(http: httpx.AsyncClient) -> None:
    await check(
        http,
        "GET",
        "/api/{session}/new-message-id",
        "/api/default/new-message-id",
        status=200,
        component_name="NewMessageIDResponse",
    )


@pytest.mark.parametrize("phone", ["491511234567", "0532030482"])
async def test_check_exists(http: httpx.AsyncClient, phone: str) -> None:
    body = await check(
        http,
        "GET",
        "/api/contacts/check-exists",
        "/api/contacts/check-exists",
        status=200,
        component_name="WANumberExistResult",
        params={"phone": phone, "session": "default"},
    )
    assert body["numberExists"] is (phone == "491511234567")


@pytest.mark.parametrize("path", ["/api/startTyping", "/api/stopTyping"])
async def test_typing(http: httpx.AsyncClient, path: str) -> None:
    await check(http, "POST", path, path, status=201, json={"session": "default", "chatId": CHAT})


# -- routes and faults added for the recording -------------------------------------------


@pytest.mark.parametrize("engine", ["NOWEB", "WEBJS"])
@pytest.mark.parametrize("tier", ["PLUS", "CORE"])
async def test_version_in_every_tier_and_engine(tier: str, engine: str) -> None:
    state = SimState(tier=tier, engine=engine)
    transport = httpx.ASGITransport(app=Simulator(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://waha.test") as client:
        for path in ("/api/server/version", "/api/version"):
            body = await check(
                client, "GET", path, path, status=200, component_name="WAHAEnvironment"
            )
            assert (body["tier"], body["engine"]) == (tier, engine)
        await check(
            client,
            "GET",
            "/api/server/status",
            "/api/server/status",
            status=200,
            component_name="ServerStatusResponse",
        )


async def test_me(http: httpx.AsyncClient, state: SimState) -> None:
    await check(
        http,
        "GET",
        "/api/sessions/{session}/me",
        "/api/sessions/default/me",
        status=200,
        component_name="MeInfo",
    )
    state.timelock("default", 1784477333)
    body = await check(
        http,
        "GET",
        "/api/sessions/{session}/me",
        "/api/sessions/default/me",
        status=200,
        component_name="MeInfo",
    )
    validate(body["reachoutTimelock"], component("ReachoutTimelockData"))
    # ... and inside SessionInfo.
    await check(
        http,
        "GET",
        "/api/sessions/{session}",
        "/api/sessions/default",
        status=200,
        component_name="SessionInfo",
    )
    # Not paired: `me` is null, which NestJS sends as an empty body (17c_me).
    resp = await http.get("/api/sessions/qr/me")
    assert (resp.status_code, resp.content) == (200, b"")


async def test_put_and_delete_session(http: httpx.AsyncClient) -> None:
    await check(
        http,
        "PUT",
        "/api/sessions/{session}",
        "/api/sessions/default",
        status=200,
        component_name="SessionDTO",
        json={"name": "default", "config": {}},
    )
    # The spec declares no body for DELETE's 200.
    assert response_schema("DELETE", "/api/sessions/{session}", 200) is None
    resp = await http.delete("/api/sessions/off")
    assert (resp.status_code, resp.content) == (200, b"")


@pytest.mark.parametrize("path", ["/api/startTyping", "/api/stopTyping"])
async def test_typing_declares_no_body(http: httpx.AsyncClient, path: str) -> None:
    """The spec declares no content for typing's 201; WAHA still sends `{"result": true}`
    (its controller's return value, NOTES.md section 1)."""
    assert response_schema("POST", path, 201) is None
    resp = await http.post(path, json={"session": "default", "chatId": CHAT})
    assert (resp.status_code, resp.json()) == (201, {"result": True})


async def test_send_shapes_against_wamessage(http: httpx.AsyncClient, state: SimState) -> None:
    """The "noweb" shape is the spec's WAMessage. The others are the engines' own formats,
    which WAHA documents as not following it (#760; empty body: #1083): the test pins that
    they really differ, so a client that needs WAMessage would notice."""
    payload = {"session": "default", "chatId": CHAT, "text": "hi"}
    state.send_shape("noweb")
    await check(
        http,
        "POST",
        "/api/sendText",
        "/api/sendText",
        status=201,
        component_name="WAMessage",
        json=payload,
    )
    for shape in ("baileys", "webjs"):
        state.send_shape(shape)
        resp = await http.post("/api/sendText", json=payload)
        assert resp.status_code == 201
        with pytest.raises(AssertionError):
            validate(resp.json(), component("WAMessage"))
    state.send_shape("empty")
    resp = await http.post("/api/sendText", json=payload)
    assert (resp.status_code, resp.content) == (201, b"")


async def test_fault_answers_are_not_in_the_spec(http: httpx.AsyncClient, state: SimState) -> None:
    """The spec declares only the success answers of these routes (and /health's 503), so
    the error bodies are checked against the recording in test_simulator.py instead."""
    for method, path in [
        ("POST", "/api/sendText"),
        ("POST", "/api/sendImage"),
        ("POST", "/api/startTyping"),
        ("GET", "/api/sessions/{session}"),
        ("GET", "/api/sessions/{session}/me"),
        ("GET", "/api/{session}/new-message-id"),
    ]:
        declared = spec()["paths"][path][method.lower()]["responses"]
        assert all(code.startswith("2") for code in declared), (method, path)
