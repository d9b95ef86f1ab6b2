"""The listener end to end: the runner sends through the simulator over a real socket,
WAHA's events come back over its /ws, and the database learns what happened after the
sends (delivered, read, replied, opted out) while nothing else is going on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from engine_helpers import fast_config, make_campaign, module_simulator, reset_simulator

from waha_tui.delivery import Applied
from waha_tui.listener import Listener
from waha_tui.runner import RunnerPool
from waha_tui.simulator import SimulatorServer
from waha_tui.status import RecipientStatus
from waha_tui.store import Store
from waha_tui.waha import Backoff, FeedState, WahaClient

RS = RecipientStatus
FAST = {"server": 0.005, "device": 0.01, "read": 0.02, "read_share": 1}


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[SimulatorServer]:
    yield from module_simulator()


@pytest.fixture
def sim_server(shared_sim: SimulatorServer) -> SimulatorServer:
    return reset_simulator(shared_sim)


async def until(check: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the condition never came true")
        await asyncio.sleep(0.02)


class Heard:
    def __init__(self) -> None:
        self.applied: list[Applied] = []
        self.states: list[FeedState] = []


@pytest.fixture
async def listening(
    tmp_path: object, sim_server: SimulatorServer
) -> AsyncIterator[tuple[Store, Listener, Heard]]:
    store = Store(f"{tmp_path}/campaigns.db")
    heard = Heard()
    listener = Listener(
        store,
        sim_server.url,
        None,
        on_applied=heard.applied.append,
        on_state=heard.states.append,
    )
    listener.start()
    await until(lambda: listener.state.phase == "live")
    yield store, listener, heard
    await listener.aclose()
    store.close()


async def run_campaign(store: Store, sim_server: SimulatorServer, n: int) -> int:
    cid = make_campaign(store, n)
    client = WahaClient(sim_server.url)
    try:
        pool = RunnerPool(store, client, config=fast_config())
        await pool.start(cid)
        await asyncio.wait_for(pool.wait(cid), 20)
    finally:
        await client.aclose()
    return cid


async def test_acks_and_replies_reach_the_database_after_the_run_ended(
    listening: tuple[Store, Listener, Heard], sim_server: SimulatorServer
) -> None:
    store, listener, heard = listening
    async with httpx.AsyncClient(base_url=sim_server.url) as http:
        assert (await http.post("/_sim/acks", json=FAST)).status_code < 300
    cid = await run_campaign(store, sim_server, 4)
    await until(lambda: store.get_campaign(cid).read == 4)
    camp = store.get_campaign(cid)
    assert (camp.sent, camp.delivered, camp.read, camp.replied) == (4, 4, 4, 0)
    first, second = store.recipients(cid)[:2]
    # Someone answers; another asks never to be messaged again.
    sim_server.sim.reply("default", first.chat_id, "Thanks, see you Friday")
    sim_server.sim.reply("default", second.chat_id, "  stop ")
    await until(lambda: store.get_campaign(cid).replied == 2)
    first, second = store.recipients(cid)[:2]
    assert first.reply_text == "Thanks, see you Friday" and first.replied_at is not None
    assert store.opted_out([first.phone, second.phone]) == {second.phone}
    await until(lambda: any(a.opted_out for a in heard.applied))
    said = [o for a in heard.applied for o in a.opted_out]
    assert [(o.phone, o.campaign_id) for o in said] == [(second.phone, cid)]
    assert listener.written >= 4 * 3 + 2


async def test_events_that_arrive_while_the_database_is_busy_are_written_later(
    listening: tuple[Store, Listener, Heard], sim_server: SimulatorServer
) -> None:
    """Another process holds the write lock longer than a write waits: the batch is kept,
    and written once the lock is free; nothing is lost."""
    store, listener, _ = listening
    cid = await run_campaign(store, sim_server, 2)
    other = Store(store.location, busy_timeout=0.05)
    blocker = Store(store.location)
    listener.store = other
    gate = blocker.write()
    gate.__enter__()  # BEGIN IMMEDIATE: every other writer waits
    try:
        for r in store.recipients(cid):
            sim_server.sim.reply("default", r.chat_id, "ok")
        await asyncio.sleep(0.5)  # the listener tried, and waits for the lock
        assert store.get_campaign(cid).replied == 0
    finally:
        gate.__exit__(None, None, None)
    await until(lambda: store.get_campaign(cid).replied == 2)
    other.close()
    blocker.close()


async def test_a_feed_that_cannot_connect_says_so_and_nothing_is_written(tmp_path: object) -> None:
    store = Store(f"{tmp_path}/campaigns.db")
    states: list[FeedState] = []
    listener = Listener(
        store,
        "http://127.0.0.1:9",
        None,
        on_state=states.append,
        backoff=Backoff(initial=0.01, cap=0.05),
    )
    listener.start()
    await until(lambda: any(s.phase == "down" for s in states))
    down = next(s for s in states if s.phase == "down")
    assert down.line().startswith("events: down") and "refused" in down.line()
    assert await listener.flag_unconfirmed() == 0  # never while the feed is down
    await listener.aclose()
    assert listener.written == 0
    store.close()
