"""WAHA faults in the middle of a campaign: 500 bursts, latency, hangs beyond the client
timeout, and a session flapping WORKING/STARTING. In the end every recipient is delivered
at most once, and the counters equal the per-recipient truth."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from engine_helpers import (
    FakeClock,
    fast_config,
    make_campaign,
    module_simulator,
    recipient_counts,
    reset_simulator,
)

from waha_tui import events as ev
from waha_tui.runner import RunnerPool
from waha_tui.service import CampaignService
from waha_tui.simulator import SimulatorServer
from waha_tui.status import CampaignStatus, RecipientStatus
from waha_tui.store import Store
from waha_tui.waha import Timeouts, WahaClient

S = CampaignStatus
RS = RecipientStatus


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[SimulatorServer]:
    yield from module_simulator()


@pytest.fixture
def sim_server(shared_sim: SimulatorServer) -> SimulatorServer:
    return reset_simulator(shared_sim)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "campaigns.db")
    yield s
    s.close()


@pytest.fixture
async def client(sim_server: SimulatorServer) -> AsyncIterator[WahaClient]:
    c = WahaClient(sim_server.url, timeouts=Timeouts(connect=2, read=0.3, write=2, pool=2))
    yield c
    await c.aclose()


def assert_truth(store: Store, sim_server: SimulatorServer, cid: int, total: int) -> None:
    delivered = collections.Counter(m.chat_id for m in sim_server.state.sent())
    assert not delivered or max(delivered.values()) == 1
    camp = store.get_campaign(cid)
    counts = recipient_counts(store, cid)
    assert sum(counts.values()) == total
    assert (camp.sent, camp.failed, camp.unknown) == (
        counts.get(RS.SENT, 0),
        counts.get(RS.FAILED, 0),
        counts.get(RS.UNKNOWN, 0),
    )
    sent_ids = {r.message_id for r in store.recipients(cid, status=RS.SENT)}
    assert sent_ids <= {m.id for m in sim_server.state.sent()}


async def run(store: Store, client: WahaClient, cid: int, clock: FakeClock | None = None):
    pool = RunnerPool(store, client, config=fast_config(clock))
    await pool.start(cid)
    return await asyncio.wait_for(pool.wait(cid), 30)


async def test_a_burst_of_account_500s_pauses_with_none_failed_and_resume_completes(
    store: Store, client: WahaClient, sim_server: SimulatorServer
) -> None:
    """ "Connection Closed" is the account's trouble, not the recipients': it used to fail
    them one by one."""
    cid = make_campaign(store, 12, delay_min=1.0, delay_max=1.0)  # fake waits: instant
    fired = []

    def burst(_seconds: float) -> None:
        if len(sim_server.state.sent()) == 4 and not fired:
            fired.append(True)
            sim_server.state.fail_next_sends(3, "Connection Closed")

    end = await run(store, client, cid, FakeClock(on_wait=burst))
    assert isinstance(end, ev.Paused) and "Connection Closed" in end.reason
    camp = store.get_campaign(cid)
    assert (camp.status, camp.sent, camp.failed, camp.next_index) == (S.PAUSED, 4, 0, 4)
    assert store.recipients(cid, status=RS.FAILED) == []
    sim_server.state.clear_faults()
    end = await run(store, client, cid)
    camp = store.get_campaign(cid)
    assert (camp.status, camp.sent, camp.failed) == (S.COMPLETED, 12, 0)
    assert_truth(store, sim_server, cid, 12)


async def test_latency_slows_but_loses_nothing(
    store: Store, client: WahaClient, sim_server: SimulatorServer
) -> None:
    cid = make_campaign(store, 6)
    sim_server.state.set_latency(0.05)
    await run(store, client, cid)
    assert store.get_campaign(cid).status == S.COMPLETED
    assert len(sim_server.state.sent()) == 6
    assert_truth(store, sim_server, cid, 6)


async def test_a_hang_beyond_the_timeout_is_retried_with_the_same_id_and_delivered_once(
    store: Store, client: WahaClient, sim_server: SimulatorServer
) -> None:
    cid = make_campaign(store, 4)
    sim_server.state.set_hang(0.8)  # the client gives up after 0.3 s; WAHA still sends it

    async def heal() -> None:
        await asyncio.sleep(0.5)
        sim_server.state.set_hang(0)

    healer = asyncio.create_task(heal())
    await run(store, client, cid)
    await healer
    await asyncio.sleep(0.9)  # let the hung requests finish on the server side
    camp = store.get_campaign(cid)
    if camp.status == S.PAUSED:  # WAHA never confirmed it: resume re-sends the same id
        assert "re-sent with the same id" in (camp.pause_reason or "")
        service = CampaignService(store, client, RunnerPool(store, client, config=fast_config()))
        await service.resume(cid)
        await asyncio.wait_for(service.pool.wait(cid), 30)
        camp = store.get_campaign(cid)
    assert camp.status == S.COMPLETED
    assert camp.sent == 4
    assert len(sim_server.state.sent()) == 4  # the repeat carried the same id: deduped
    assert_truth(store, sim_server, cid, 4)


async def test_a_hang_without_message_ids_becomes_unknown_never_repeated(
    store: Store, client: WahaClient, sim_server: SimulatorServer
) -> None:
    sim_server.state.message_ids = False
    cid = make_campaign(store, 3)
    sim_server.state.set_hang(0.8)

    async def heal() -> None:
        await asyncio.sleep(0.4)
        sim_server.state.set_hang(0)

    healer = asyncio.create_task(heal())
    await run(store, client, cid)
    await healer
    await asyncio.sleep(0.9)
    camp = store.get_campaign(cid)
    assert camp.status == S.COMPLETED
    assert camp.unknown >= 1
    assert_truth(store, sim_server, cid, 3)


async def test_a_session_flapping_working_starting_pauses_and_resumes_without_duplicates(
    store: Store, client: WahaClient, sim_server: SimulatorServer
) -> None:
    cid = make_campaign(store, 10, delay_min=1.0, delay_max=1.0)
    flips = iter([3, 6])  # after these many deliveries the session drops to STARTING
    target = next(flips)

    def flap(_seconds: float) -> None:
        nonlocal target
        if target and len(sim_server.state.sent()) >= target:
            sim_server.state.set_status("default", "STARTING")
            target = next(flips, 0)

    service = CampaignService(
        store, client, RunnerPool(store, client, config=fast_config(FakeClock(flap)))
    )
    pauses = 0
    for _ in range(5):
        await service.pool.start(cid) if store.get_campaign(cid).status == S.SCHEDULED else (
            await service.resume(cid)
        )
        await asyncio.wait_for(service.pool.wait(cid), 30)
        camp = store.get_campaign(cid)
        if camp.status == S.COMPLETED:
            break
        pauses += 1
        assert camp.status == S.PAUSED
        assert "STARTING" in (camp.pause_reason or "")
        assert camp.next_index == len(sim_server.state.sent())
        sim_server.state.set_status("default", "WORKING")
    assert pauses == 2
    assert [m.chat_id for m in sim_server.state.sent()] == [
        f"4915100000{i:02d}@c.us" for i in range(10)
    ]
    assert_truth(store, sim_server, cid, 10)
