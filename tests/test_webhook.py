"""The webhook receiver on a real uvicorn server on loopback, posted to over a real socket:
WAHA's signature (HMAC-SHA512 of the raw body), its request ids, its envelopes."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from asgi_server import serve
from typer.testing import CliRunner

from waha_tui.cli import app
from waha_tui.secret import Secret
from waha_tui.waha.envelope import Ack, AckEvent, MessageEvent, WahaEvent
from waha_tui.waha.webhook import BatchSink, RecentIds, create_app, signature

KEY = "hook-Secret-5521-never-logged"
ACK = {
    "id": "evt_01JABCDEF",
    "timestamp": 1767225600000,
    "event": "message.ack",
    "session": "default",
    "payload": {
        "id": "true_4915100000001@c.us_3EB0C767D097B7C1D2E6",
        "from": "15550000000@c.us",
        "to": "4915100000001@c.us",
        "fromMe": True,
        "ack": 3,
        "ackName": "READ",
    },
    "engine": "NOWEB",
}


class Recording:
    """The sink: every list of events handed on, from the server's thread."""

    def __init__(self) -> None:
        self.got: list[list[WahaEvent]] = []
        self.lock = threading.Lock()

    async def __call__(self, events: list[WahaEvent]) -> None:
        with self.lock:
            self.got.append(events)


@pytest.fixture
def sink() -> Recording:
    return Recording()


@pytest.fixture
def url(sink: Recording) -> Iterator[str]:
    with serve(create_app(Secret(KEY), sink)) as base:
        yield base


def signed(body: bytes, key: str = KEY, **headers: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-webhook-hmac": signature(key.encode(), body),
        "x-webhook-hmac-algorithm": "sha512",
        **headers,
    }


def test_wahas_test_vector() -> None:
    # NOTES.md section 6, from WAHA's docs: this body and key give 208f8a55…3fa89.
    body = b'{"event":"message","session":"default","engine":"WEBJS"}'
    digest = signature(b"my-secret-key", body)
    assert digest.startswith("208f8a55") and digest.endswith("3fa89")
    assert len(digest) == 128  # SHA-512, hex


def test_the_test_vector_is_accepted_by_the_receiver(sink: Recording) -> None:
    body = b'{"event":"message","session":"default","engine":"WEBJS"}'
    with serve(create_app(Secret("my-secret-key"), sink)) as base:
        answer = httpx.post(base, content=body, headers=signed(body, "my-secret-key"))
    assert answer.status_code == 200
    assert sink.got == []  # no payload: nothing to hand on


def test_a_signed_event_is_handed_on(url: str, sink: Recording) -> None:
    body = json.dumps(ACK).encode()
    for path in ("/", "/webhook"):
        answer = httpx.post(url + path, content=body, headers=signed(body))
        assert answer.status_code == 200, answer.text
    [[first], [second]] = sink.got
    assert first == second
    assert isinstance(first, AckEvent)
    assert (first.session, first.wa_id, first.ack, first.chat_id) == (
        "default",
        "3EB0C767D097B7C1D2E6",
        Ack.READ,
        "4915100000001@c.us",
    )


@pytest.mark.parametrize(
    ("case", "headers"),
    [
        ("missing", {"content-type": "application/json"}),
        ("wrong key", None),
        ("other algorithm", {"x-webhook-hmac-algorithm": "sha256"}),
        ("another body's", {"x-webhook-hmac": signature(KEY.encode(), b"{}")}),
    ],
)
def test_a_bad_or_missing_signature_is_refused_and_logged(
    url: str, sink: Recording, caplog: pytest.LogCaptureFixture, case: str, headers: dict | None
) -> None:
    body = json.dumps(ACK).encode()
    sent = signed(body, "not-" + KEY) if headers is None else {**signed(body), **headers}
    if case == "missing":
        sent = headers or {}
    with caplog.at_level(logging.WARNING, logger="waha_tui.waha.webhook"):
        answer = httpx.post(url, content=body, headers=sent)
    assert answer.status_code == 401
    assert sink.got == []
    lines = [r.getMessage() for r in caplog.records if r.name == "waha_tui.waha.webhook"]
    assert len(lines) == 1 and lines[0].startswith("webhook from 127.0.0.1 refused: ")
    text = caplog.text
    assert KEY not in text and "3EB0C767D097B7C1D2E6" not in text  # no key, no body


def test_a_repeated_request_id_is_answered_and_not_handed_on_again(
    url: str, sink: Recording
) -> None:
    body = json.dumps(ACK).encode()
    first = httpx.post(url, content=body, headers=signed(body, **{"x-webhook-request-id": "r1"}))
    again = httpx.post(url, content=body, headers=signed(body, **{"x-webhook-request-id": "r1"}))
    other = httpx.post(url, content=body, headers=signed(body, **{"x-webhook-request-id": "r2"}))
    assert [a.status_code for a in (first, again, other)] == [200, 200, 200]
    assert again.json() == {"ok": True, "duplicate": True}
    assert len(sink.got) == 2  # r1 once, r2 once


def test_a_request_whose_sink_failed_is_not_remembered() -> None:
    calls: list[int] = []

    async def flaky(events: list[WahaEvent]) -> None:
        calls.append(len(events))
        if len(calls) == 1:
            raise OSError("database gone")

    body = json.dumps(ACK).encode()
    headers = signed(body, **{"x-webhook-request-id": "r1"})
    with serve(create_app(Secret(KEY), flaky)) as base:
        assert httpx.post(base, content=body, headers=headers).status_code == 500
        assert httpx.post(base, content=body, headers=headers).status_code == 200  # WAHA's retry
    assert calls == [1, 1]


def test_the_memory_of_request_ids_is_bounded() -> None:
    recent = RecentIds(3)
    for rid in ("a", "b", "c", "d"):
        recent.add(rid)
    assert "a" not in recent and all(r in recent for r in ("b", "c", "d"))


async def test_the_batch_sink_writes_requests_arriving_together_once() -> None:
    writes: list[list[WahaEvent]] = []
    sink = BatchSink(writes.append, wait=0.05)
    message = MessageEvent("default", "X1", "4915100000001@c.us", "STOP", datetime.now(UTC))
    await asyncio.gather(sink([message]), sink([message, message]))
    assert writes == [[message, message, message]]


# -- the command -------------------------------------------------------------------------


def test_the_command_needs_the_key_from_a_file_or_the_environment(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"WAHA_TUI_DB": str(tmp_path / "c.db"), "WAHA_TUI_WEBHOOK_HMAC_KEY": None}
    result = runner.invoke(app, ["webhook"], env=env)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: give WAHA's webhook HMAC key: --hmac-key-file FILE or WAHA_TUI_WEBHOOK_HMAC_KEY "
        "(unsigned webhooks are never taken)"
    )
    empty = tmp_path / "key"
    empty.write_text("\n")
    result = runner.invoke(app, ["webhook", "--hmac-key-file", str(empty)], env=env)
    assert result.exit_code == 1 and f"--hmac-key-file {empty} is empty" in result.stderr
    result = runner.invoke(app, ["webhook", "--listen", "localhost"], env=env)
    assert result.exit_code == 2
    assert "--listen 'localhost' is not HOST:PORT" in result.stderr
    assert "Traceback" not in result.output
