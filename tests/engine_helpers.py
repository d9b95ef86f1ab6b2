"""Shared pieces of the campaign-engine tests: a fake clock, fast runner settings, and
campaigns written straight into a real store."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import socket
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from pg_helpers import libpq
from sqlalchemy.engine import make_url

from waha_tui import events as ev
from waha_tui.models import Campaign, utcnow
from waha_tui.runner import Clock, RunnerConfig, RunnerPool
from waha_tui.simulator import SimState, Simulator, SimulatorServer
from waha_tui.status import CampaignStatus
from waha_tui.store import C, NewRecipient, R, Store
from waha_tui.waha import WahaClient

S = CampaignStatus

# A 1x1 transparent PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


class FakeClock(Clock):
    """Records every requested wait and returns at once, moving its own time forward.

    `on_wait(seconds)` runs inside each wait, so a test can act "during" a wait.
    """

    def __init__(
        self, on_wait: Callable[[float], None] | None = None, *, wall: datetime | None = None
    ) -> None:
        self.now = 1000.0
        self.waits: list[float] = []
        self.on_wait = on_wait
        # The wall clock (send windows and caps read it) moves with the fake time from `wall`.
        self.start = wall or utcnow()

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return self.start + timedelta(seconds=self.now - 1000.0)

    async def wait(self, seconds: float, wake: asyncio.Event) -> bool:
        self.waits.append(seconds)
        if self.on_wait:
            self.on_wait(seconds)
        await asyncio.sleep(0)
        if wake.is_set():
            return True
        self.now += seconds
        return False


def fast_config(clock: Clock | None = None, **overrides: Any) -> RunnerConfig:
    """Tiny retries, one wait per requested delay (poll_interval above any delay used)."""
    values: dict[str, Any] = {
        "lease_seconds": 30.0,
        "unreachable_backoff": (0.25, 0.5),
        "ambiguous_retries": (0.125,),
        "session_check_interval": 0.0,
        "poll_interval": 10_000.0,
        "rng": random.Random(7),
        "clock": clock or FakeClock(),
    }
    values.update(overrides)
    return RunnerConfig(**values)


def phone(i: int) -> str:
    return f"4915100000{i:02d}"


def people(n: int, *, names: Sequence[str | None] | None = None, **columns: Sequence[str]):
    """n recipients; `columns` are CSV variables given per recipient."""
    out = []
    for i in range(n):
        name = names[i] if names is not None else f"P{i}"
        variables = {key: values[i] for key, values in columns.items()}
        out.append(NewRecipient(phone(i), f"{phone(i)}@c.us", name, variables))
    return out


def make_campaign(
    store: Store,
    n: int = 3,
    *,
    text: str = "Hi {name} #{num}",
    recipients: Sequence[NewRecipient] | None = None,
    **fields: Any,
) -> int:
    """A Scheduled campaign, due now, with no delay between messages unless asked."""
    if recipients is None:
        recipients = people(n, num=[str(i) for i in range(n)]) if "{num}" in text else people(n)
    values: dict[str, Any] = {
        "name": "test",
        "template_text": text,
        "default_name": "friend",
        "scheduled_at": utcnow() - timedelta(seconds=1),
        "delay_min": 0.0,
        "delay_max": 0.0,
    }
    values.update(fields)
    return store.create_campaign(Campaign(**values), recipients)


def force(store: Store, campaign_id: int, **values: Any) -> None:
    """Write campaign columns directly, as another process or an old crash would leave them."""
    with store.write() as conn:
        conn.execute(sa.update(C).where(C.c.id == campaign_id).values(**values))


def force_recipient(store: Store, campaign_id: int, position: int, **values: Any) -> None:
    with store.write() as conn:
        conn.execute(
            sa.update(R)
            .where(R.c.campaign_id == campaign_id, R.c.position == position)
            .values(**values)
        )


def recipient_counts(store: Store, campaign_id: int) -> dict[str, int]:
    """How many of a campaign's recipients are in each status, straight from the table."""
    with store.read() as conn:
        rows = conn.execute(
            sa.select(R.c.status, sa.func.count())
            .where(R.c.campaign_id == campaign_id)
            .group_by(R.c.status)
        ).all()
    return {status: count for status, count in rows}


TABLES = ("campaign", "recipient", "contact_list", "contact", "template")


def snapshot(where: Path | str | Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the campaign tables, straight from the database (sqlite3 or psycopg,
    not the store's code), to prove nothing changed."""
    target = where.target if isinstance(where, Store) else str(where)
    if "://" not in target:
        with sqlite3.connect(target) as conn:
            return {
                table: conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
                for table in TABLES
            }
    with psycopg.connect(libpq(make_url(target))) as pg:
        return {
            table: pg.execute(f"SELECT * FROM {table} ORDER BY id").fetchall() for table in TABLES
        }


def raw_rows(db: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Rows straight from the database at `db` (a path or a URL), through sqlite3 or
    psycopg rather than the store's code. Parameters are named, `:name`."""
    if "://" not in db:
        with contextlib.closing(sqlite3.connect(db)) as con:
            return con.execute(sql, params).fetchall()
    with psycopg.connect(libpq(make_url(db))) as pg:
        return pg.execute(re.sub(r":(\w+)", r"%(\1)s", sql), params).fetchall()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def texts(messages: Sequence[Any]) -> list[tuple[str, str]]:
    return [(m.chat_id, m.text) for m in messages]


class Recorder:
    """An EventBus sink that keeps every event."""

    def __init__(self) -> None:
        self.events: list[ev.CampaignEvent] = []

    def __call__(self, event: ev.CampaignEvent) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


async def run_to_end(
    store: Store, client: WahaClient, campaign_id: int, config: RunnerConfig | None = None
) -> tuple[ev.Ended, RunnerPool]:
    pool = RunnerPool(store, client, config=config or fast_config())
    await pool.start(campaign_id)
    end = await asyncio.wait_for(pool.wait(campaign_id), 20)
    assert end is not None
    return end, pool


def module_simulator() -> Iterator[SimulatorServer]:
    """One simulator per test module (starting and stopping uvicorn costs ~0.2 s a test)."""
    with SimulatorServer(Simulator(SimState(start_delay=0.05))) as server:
        yield server


def reset_simulator(server: SimulatorServer) -> SimulatorServer:
    """Back to a fresh SimState's defaults: one WORKING 'default' session, no faults."""
    state = server.state
    with state.lock:
        state.reset()
        state.api_key = None
        state.message_ids = True
        state.tier, state.engine = "PLUS", "NOWEB"
        state.sessions.clear()
        state.add_session("default", "WORKING")
    return server
