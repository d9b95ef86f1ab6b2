"""One heartbeat per process: many runs waiting in long delays renew their leases in one
write transaction per heartbeat period in all, and still see a pause set elsewhere within
poll_interval. Real time, the simulator on a real socket, both database backends."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable

from engine_helpers import fast_config, force, make_campaign
from sqlalchemy import event

from waha_tui import events as ev
from waha_tui.models import utcnow
from waha_tui.runner import Clock, RunnerPool
from waha_tui.simulator import SimulatorServer
from waha_tui.status import CampaignStatus
from waha_tui.store import Store
from waha_tui.waha import WahaClient

S = CampaignStatus
RUNS = 50
LEASE = 0.6  # the heartbeat renews every third of it: 0.2 s
POLL = 0.05  # how often it reads the runs' campaigns


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_fifty_waiting_runs_share_one_heartbeat_and_still_see_a_pause(
    store: Store, client: WahaClient, sim_server: SimulatorServer
) -> None:
    state = sim_server.state
    cids = []
    for i in range(RUNS):  # one campaign per session: a session sends one at a time
        state.set_status(f"s{i}", "WORKING")
        cids.append(make_campaign(store, 2, session=f"s{i}", delay_min=60.0, delay_max=60.0))
    pool = RunnerPool(
        store, client, config=fast_config(clock=Clock(), lease_seconds=LEASE, poll_interval=POLL)
    )
    for cid in cids:
        await pool.start(cid)

    def all_waiting() -> bool:
        camps = [store.get_campaign(cid) for cid in cids]
        return all(c.sent == 1 and c.next_send_at is not None for c in camps)

    await until(all_waiting, 30, "every run sends its first message and waits")
    await asyncio.sleep(0.3)  # what was written behind the first sends is written
    writes: collections.Counter[str] = collections.Counter()
    event.listen(store.engine, "begin", lambda _conn: writes.update(["write"]))
    before = {cid: store.get_campaign(cid).lease_until for cid in cids}
    began = time.monotonic()
    await asyncio.sleep(1.2)  # six heartbeat periods, 24 polls
    elapsed = time.monotonic() - began
    periods = elapsed / pool.config.heartbeat_interval
    # One renewal per period for all 50 (a run writing its own each poll: 1,200).
    assert 1 <= writes["write"] <= periods + 2, (writes, periods)
    after = {cid: store.get_campaign(cid).lease_until for cid in cids}
    assert all(after[cid] > before[cid] for cid in cids)  # every lease was renewed
    # Longer than a lease: another runner recovers none of them (their leases are alive).
    await asyncio.sleep(LEASE)
    other = Store(store.target)  # another process: its own connections, no runner
    try:
        assert other.recover_interrupted() == []
        # A pause from there is still seen within a poll or so, as when each run polled.
        paused = cids[7]
        began = time.monotonic()
        other.transition(paused, S.PAUSED, pause_reason="paused from the command line")
    finally:
        other.close()
    end = await asyncio.wait_for(pool.wait(paused), 5)
    assert time.monotonic() - began < 1.5  # polled every 0.05 s, not after the 60 s wait
    assert isinstance(end, ev.Paused)
    camp = store.get_campaign(paused)
    assert (camp.status, camp.pause_reason, camp.next_index) == (
        S.PAUSED,
        "paused from the command line",
        1,
    )
    assert len(state.sent("s7")) == 1
    # The others wait on, under this process's lease.
    assert sorted(pool.runs) == sorted(set(cids) - {paused})
    assert sorted(pool.leases.members) == sorted(set(cids) - {paused})
    await pool.stop_all("test over")
    assert {store.get_campaign(cid).status for cid in cids} == {S.PAUSED}
    assert len(state.sent()) == RUNS


async def test_a_lost_lease_stops_only_its_run(
    store: Store, client: WahaClient, sim_server: SimulatorServer
) -> None:
    # Another host took one campaign (its lease lapsed there, say): the heartbeat's next
    # read ends that run without touching the campaign; the others go on.
    state = sim_server.state
    cids = []
    for i in range(3):
        state.set_status(f"s{i}", "WORKING")
        cids.append(make_campaign(store, 2, session=f"s{i}", delay_min=60.0, delay_max=60.0))
    pool = RunnerPool(
        store, client, config=fast_config(clock=Clock(), lease_seconds=LEASE, poll_interval=POLL)
    )
    for cid in cids:
        await pool.start(cid)
    await until(lambda: len(state.sent()) == 3, 10, "three first messages")
    taken = cids[1]
    force(store, taken, lease_owner="other-host:1:x", lease_until=utcnow())
    end = await asyncio.wait_for(pool.wait(taken), 5)
    assert isinstance(end, ev.Paused) and end.reason == "taken over by another runner"
    camp = store.get_campaign(taken)
    assert (camp.status, camp.lease_owner) == (S.RUNNING, "other-host:1:x")  # untouched
    assert sorted(pool.runs) == [cids[0], cids[2]]
    await pool.stop_all("test over")
    assert len(state.sent()) == 3
