"""The scheduler: due, future and missed campaigns, one per WAHA session, recovery, and
`run(until_idle=True)` returning; on SQLite and PostgreSQL (the `backend` parameter)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest
from engine_helpers import fast_config, force, make_campaign, module_simulator, reset_simulator

from waha_tui.models import utcnow
from waha_tui.runner import RunnerPool
from waha_tui.scheduler import Scheduler
from waha_tui.service import CampaignService
from waha_tui.simulator import SimState, SimulatorServer
from waha_tui.status import CampaignStatus
from waha_tui.store import Store
from waha_tui.waha import WahaClient


@pytest.fixture(scope="module")
def module_server() -> Iterator[SimulatorServer]:
    yield from module_simulator()


@pytest.fixture
def sim_server(module_server: SimulatorServer) -> SimulatorServer:
    """Overrides conftest's per-test server: the module's one, reset."""
    return reset_simulator(module_server)


S = CampaignStatus


@pytest.fixture
async def service(db_target: str, sim_server: SimulatorServer) -> AsyncIterator[CampaignService]:
    store = Store(db_target)
    client = WahaClient(sim_server.url)
    svc = CampaignService(store, client, RunnerPool(store, client, config=fast_config()))
    yield svc
    await svc.pool.stop_all("test over", grace=5)
    await svc.aclose()


@pytest.fixture
def state(sim_server: SimulatorServer) -> SimState:
    for name in ("second", "third", "fourth"):
        sim_server.state.add_session(name, "WORKING")
    return sim_server.state


async def settle(service: CampaignService) -> None:
    for cid in list(service.pool.tasks):
        await asyncio.wait_for(service.pool.wait(cid), 10)


async def test_due_and_missed_campaigns_start_at_the_first_tick_future_ones_wait(
    service: CampaignService, state: SimState
) -> None:
    now = utcnow()
    store = service.store
    due = make_campaign(store, 2, scheduled_at=now - timedelta(seconds=1))
    missed = make_campaign(store, 2, session="second", scheduled_at=now - timedelta(days=2))
    future = make_campaign(store, 2, session="third", scheduled_at=now + timedelta(hours=1))
    paused = make_campaign(store, 2, session="fourth", scheduled_at=now - timedelta(days=1))
    store.transition(paused, S.PAUSED, pause_reason="by hand")

    started = await Scheduler(service).tick()
    assert started == [missed, due]  # oldest first
    await settle(service)
    assert store.get_campaign(due).status == S.COMPLETED
    assert store.get_campaign(missed).status == S.COMPLETED
    assert store.get_campaign(future).status == S.SCHEDULED
    assert store.get_campaign(paused).status == S.PAUSED
    assert {m.session for m in state.sent()} == {"default", "second"}
    assert await Scheduler(service).tick() == []

    force(store, future, scheduled_at=utcnow() - timedelta(seconds=1))  # its time has come
    assert await Scheduler(service).tick() == [future]
    await settle(service)
    assert store.get_campaign(future).status == S.COMPLETED


async def test_one_campaign_per_session_at_a_time(
    service: CampaignService, state: SimState
) -> None:
    store = service.store
    first = make_campaign(store, 2, scheduled_at=utcnow() - timedelta(minutes=2))
    second = make_campaign(store, 2, scheduled_at=utcnow() - timedelta(minutes=1))
    scheduler = Scheduler(service)
    assert await scheduler.tick() == [first]
    assert store.get_campaign(second).status == S.SCHEDULED
    await settle(service)
    assert await scheduler.tick() == [second]
    await settle(service)
    assert [m.chat_id for m in state.sent()][:2] == [r.chat_id for r in store.recipients(first)]


async def test_a_session_busy_in_another_process_is_skipped(
    service: CampaignService, state: SimState
) -> None:
    store = service.store
    elsewhere = make_campaign(store, 1)
    waiting = make_campaign(store, 1)
    store.claim(elsewhere, "another:1:x", 60)
    errors: list[tuple[int, str]] = []
    scheduler = Scheduler(service, on_error=lambda cid, msg: errors.append((cid, msg)))
    assert await scheduler.tick() == []
    assert await scheduler.tick() == []
    assert store.get_campaign(waiting).status == S.SCHEDULED
    assert errors == []  # the busy session is seen before trying: nothing to report
    assert state.sent() == []


async def test_a_tick_recovers_interrupted_campaigns_without_restarting_them(
    service: CampaignService, state: SimState
) -> None:
    store = service.store
    cid = make_campaign(store, 1)
    store.claim(cid, "dead:1:x", 60)
    force(store, cid, lease_until=utcnow() - timedelta(seconds=1))
    assert await Scheduler(service).tick() == []
    camp = store.get_campaign(cid)
    assert camp.status == S.PAUSED and "interrupted" in (camp.pause_reason or "")
    assert state.sent() == []


async def test_a_tick_restarts_an_interrupted_auto_resume_campaign(
    service: CampaignService, state: SimState
) -> None:
    store = service.store
    cid = make_campaign(store, 2, auto_resume=True)
    store.claim(cid, "dead:1:x", 60)
    force(store, cid, lease_until=utcnow() - timedelta(seconds=1))
    assert await Scheduler(service).tick() == [cid]  # recovered and claimed in one tick
    await settle(service)
    assert store.get_campaign(cid).status == S.COMPLETED
    assert len(state.sent()) == 2


async def test_a_campaign_claimed_elsewhere_in_between_is_passed_over_silently(
    service: CampaignService, state: SimState
) -> None:
    store = service.store
    cid = make_campaign(store, 1)
    other = Store(store.target)  # another runner, on another host
    listed = store.claimable_campaigns

    def then_claimed_elsewhere(now: object = None) -> list:
        found = listed()
        other.claim(cid, "another:1:x", 60)  # it wins the race after our look
        return found

    store.claimable_campaigns = then_claimed_elsewhere  # type: ignore[method-assign]
    errors: list[tuple[int, str]] = []
    try:
        assert await Scheduler(service, on_error=lambda c, m: errors.append((c, m))).tick() == []
    finally:
        other.close()
    assert errors == []
    assert store.get_campaign(cid).lease_owner == "another:1:x"
    assert state.sent() == []


async def test_run_until_idle_returns_when_everything_is_done(
    service: CampaignService, state: SimState
) -> None:
    store = service.store
    a = make_campaign(store, 3)
    b = make_campaign(store, 2)  # same session: only after a
    c = make_campaign(store, 2, session="second")
    later = make_campaign(store, 2, session="third", scheduled_at=utcnow() + timedelta(days=1))
    await asyncio.wait_for(Scheduler(service, interval=0.01).run(until_idle=True), 20)
    assert [store.get_campaign(x).status for x in (a, b, c, later)] == [
        S.COMPLETED,
        S.COMPLETED,
        S.COMPLETED,
        S.SCHEDULED,
    ]
    assert len(state.sent()) == 7
    assert service.pool.runs == {}


async def test_run_until_idle_with_nothing_due_returns_at_once(service: CampaignService) -> None:
    make_campaign(service.store, 1, scheduled_at=utcnow() + timedelta(days=1))
    await asyncio.wait_for(Scheduler(service, interval=5).run(until_idle=True), 1)


async def test_run_stops_when_asked(service: CampaignService) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(Scheduler(service, interval=0.01).run(stop=stop))
    await asyncio.sleep(0.05)
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, 1)


async def test_the_scheduler_survives_a_database_error_says_so_and_goes_on(
    service: CampaignService, state: SimState
) -> None:
    """Issue 12, item 6: one database error used to end the loop (exit 1 in `waha-tui
    run`, silence in the dashboard)."""
    store = service.store
    cid = make_campaign(store, 2, scheduled_at=utcnow() + timedelta(days=1))
    other = Store(store.target)  # another process breaks the database under our feet
    health: list[str | None] = []
    stop = asyncio.Event()
    scheduler = Scheduler(service, interval=0.01, max_backoff=0.05, on_health=health.append)
    try:
        with other.write() as conn:
            conn.exec_driver_sql("ALTER TABLE campaign RENAME TO campaign_away")
        task = asyncio.create_task(scheduler.run(stop=stop))
        for _ in range(200):
            if len(health) >= 3:
                break
            await asyncio.sleep(0.01)
        assert not task.done()  # still scheduling, with backoff
        assert len(health) >= 3 and all(h and "scheduling impaired" in h for h in health)
        assert scheduler.impaired and "campaign" in scheduler.impaired
        with other.write() as conn:
            conn.exec_driver_sql("ALTER TABLE campaign_away RENAME TO campaign")
        force(store, cid, scheduled_at=utcnow() - timedelta(seconds=1))
        for _ in range(500):
            if store.get_campaign(cid).status == S.COMPLETED:
                break
            await asyncio.sleep(0.01)
        assert store.get_campaign(cid).status == S.COMPLETED  # it went on by itself
        assert health[-1] is None and scheduler.impaired is None
        assert len(state.sent()) == 2
    finally:
        stop.set()
        other.close()
    await asyncio.wait_for(task, 2)
