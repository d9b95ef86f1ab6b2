"""A campaign's history (the campaign_event table): each change of its state recorded with
who made it, in the transaction of the change, with its one log line; on SQLite and on
PostgreSQL (the `backend` parameter), against the simulator on a real socket."""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from engine_helpers import (
    FakeClock,
    fast_config,
    force,
    make_campaign,
    module_simulator,
    phone,
    reset_simulator,
)

from waha_tui import events as ev
from waha_tui.history import Entry, Kind, record
from waha_tui.models import CampaignEventRow, utcnow
from waha_tui.runner import RunnerPool
from waha_tui.service import CampaignDraft, CampaignService
from waha_tui.simulator import SimState, SimulatorServer
from waha_tui.status import CampaignStatus, TransitionError
from waha_tui.store import C, ClaimLost, E, Store
from waha_tui.waha import WahaClient

S = CampaignStatus
ME = (pwd.getpwuid(os.geteuid()).pw_name, socket.gethostname())


@pytest.fixture(scope="module")
def module_server() -> Iterator[SimulatorServer]:
    yield from module_simulator()


@pytest.fixture
def sim_server(module_server: SimulatorServer) -> SimulatorServer:
    """Overrides conftest's per-test server: the module's one, reset."""
    return reset_simulator(module_server)


@pytest.fixture
async def service(store: Store, sim_server: SimulatorServer) -> AsyncIterator[CampaignService]:
    client = WahaClient(sim_server.url)
    svc = CampaignService(store, client, RunnerPool(store, client, config=fast_config()))
    yield svc
    await svc.pool.stop_all("test over", grace=5)
    await svc.client.aclose()


def told(caplog: pytest.LogCaptureFixture, cid: int) -> list[tuple[int, str]]:
    """The history's log lines about one campaign: (level, message)."""
    return [
        (r.levelno, r.getMessage())
        for r in caplog.records
        if r.name == "waha_tui.history" and r.getMessage().startswith(f"campaign {cid}: ")
    ]


def line(cid: int, e: CampaignEventRow) -> str:
    return f"campaign {cid}: {e.kind}: {e.detail}" if e.detail else f"campaign {cid}: {e.kind}"


async def ended(service: CampaignService, cid: int) -> ev.Ended:
    end = await asyncio.wait_for(service.wait(cid), 20)
    assert end is not None
    return end


async def test_a_campaigns_life_is_recorded_with_who_did_each_step(
    service: CampaignService, state: SimState, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="waha_tui.history")
    csv = tmp_path / "four.csv"
    csv.write_text("phone,name\n" + "".join(f"{phone(i)},P{i}\n" for i in range(4)))
    draft = CampaignDraft(name="Life", message="Hi {name}", contacts_file=str(csv), delay="0-0")
    cid = await service.create_campaign(draft)
    await service.pause(cid)  # before it ever ran
    state.stop_after("default", 1)  # the phone drops after the first message
    await service.resume(cid)
    assert isinstance(await ended(service, cid), ev.Paused)
    state.set_status("default", "WORKING")
    state.fail_chat(f"{phone(3)}@c.us")
    await service.resume(cid)
    assert isinstance(await ended(service, cid), ev.Completed)
    await service.retry(cid, unknown=False, failed=True)
    await service.resume(cid, start=False)  # left to `waha-tui run`
    await service.cancel(cid)

    events = await service.campaign_events(cid)
    assert [(e.kind, e.detail) for e in events] == [
        ("created", "4 recipients from four.csv, on session 'default'"),
        ("paused", "paused by the operator"),
        ("resumed", "on session 'default', from recipient 1 of 4"),
        (
            "paused",
            "session 'default' is STOPPED: start it (and scan the QR code if it asks), then resume",
        ),
        ("resumed", "on session 'default', from recipient 2 of 4"),
        ("completed", "3 sent, 1 failed of 4"),
        ("retried", "1 failed queued again, from Completed; resume to send"),
        ("resumed", "scheduled again, to be sent by `waha-tui run` or a dashboard"),
        ("cancelled", "cancelled by the operator"),
    ]
    assert {(e.os_user, e.host, e.pid) for e in events} == {(*ME, os.getpid())}
    times = [e.at for e in events]
    assert all(t is not None and t.tzinfo is not None for t in times)
    assert times == sorted(times)  # type: ignore[type-var]
    assert (await service.campaign(cid)).created_by == f"{ME[0]}@{ME[1]}"
    # One log line per entry, saying the same thing, a pause as a warning.
    assert told(caplog, cid) == [
        (logging.WARNING if e.kind == "paused" else logging.INFO, line(cid, e)) for e in events
    ]


async def test_a_wait_and_its_end_and_a_lapsed_run_taken_over(
    store: Store, sim_server: SimulatorServer, state: SimState, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="waha_tui.history")
    cid = make_campaign(store, 4)
    config = fast_config(FakeClock(), session_check_interval=1e9, session_grace=10, session_poll=2)
    async with WahaClient(sim_server.url) as client:
        pool = RunnerPool(store, client, config=config)
        state.stop_after("default", 2, status="STARTING")  # a restart that never ends
        await pool.start(cid)
        assert isinstance(await pool.wait(cid), ev.Paused)
    kinds = [(e.kind, e.detail) for e in store.events(cid)]
    assert kinds[1:] == [
        ("claimed", "on session 'default', from recipient 1 of 4"),
        ("waiting", "waiting for session 'default' (STARTING)"),
        (
            "paused",
            "session 'default' stayed STARTING for 10 s, not WORKING: check it, then resume",
        ),
    ]
    info, warning = logging.INFO, logging.WARNING
    assert [level for level, _ in told(caplog, cid)] == [info, info, warning, warning]

    # Runs whose process died: found by whoever looks next, each with the runner it had.
    manual = make_campaign(store, 1, session="a")
    auto = make_campaign(store, 1, session="b", auto_resume=True)
    for other in (manual, auto):
        store.claim(other, "dead-host:4242:abcd", 30)
        force(store, other, lease_until=utcnow() - timedelta(seconds=5))
    assert store.recover_interrupted() == [manual, auto]
    gone = "interrupted: the process running it stopped (its runner: dead-host:4242:abcd)"
    assert [(e.kind, e.detail) for e in store.events(manual)][-1] == ("paused", gone)
    assert [(e.kind, e.detail) for e in store.events(auto)][-1] == (
        "scheduled",
        f"{gone}; auto-resume: the next free runner takes it over",
    )
    # A takeover is a warning, whichever way it goes.
    assert told(caplog, manual)[-1][0] == told(caplog, auto)[-1][0] == logging.WARNING


def test_no_entry_and_no_line_without_the_change(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="waha_tui.history")
    cid = make_campaign(store, 2)
    store.claim(cid, "runner-a", 30)
    before, lines = store.events(cid), told(caplog, cid)
    with pytest.raises(ClaimLost):
        store.claim(cid, "runner-b", 30)  # refused: its lease is live
    with pytest.raises(TransitionError):
        store.transition(cid, S.SCHEDULED)  # Running cannot become Scheduled
    store.set_waiting(cid, "runner-b", "waiting for nothing")  # not its owner: nothing changes
    # A run that lost its campaign ends without a word: the campaign is not its to end.
    force(store, cid, lease_owner="runner-c")
    assert store.finish(cid, "runner-a", S.COMPLETED).status == S.RUNNING
    # An entry whose transaction rolls back is neither kept nor told.
    with pytest.raises(RuntimeError), store.write() as conn:
        record(conn, cid, Entry(Kind.PAUSED, "never happened"))
        raise RuntimeError("the change failed")
    assert store.events(cid) == before
    assert told(caplog, cid) == lines


def test_deleting_a_campaign_deletes_its_history(store: Store) -> None:
    # Campaigns cannot be deleted from the CLI or the dashboard yet: this is the database's
    # own rule (ON DELETE CASCADE; SQLite with its foreign keys on), ready for when they can.
    doomed = make_campaign(store, 2)
    kept = make_campaign(store, 2)
    store.claim(doomed, "me", 30)
    assert len(store.events(doomed)) == 2
    with store.write() as conn:
        conn.execute(sa.delete(C).where(C.c.id == doomed))
    with store.read() as conn:
        left = conn.execute(sa.select(E.c.campaign_id)).scalars().all()
    assert left == [kept]


def test_the_entries_of_another_process_name_it(
    db_target: str, sim_server: SimulatorServer
) -> None:
    store = Store(db_target)
    cid = make_campaign(store, 2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAHA_")}
    env.update(WAHA_URL=sim_server.url, WAHA_TUI_DB=db_target)
    proc = subprocess.Popen(
        [sys.executable, "-m", "waha_tui", "run", "--until-idle"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    events = store.events(cid)
    store.close()
    assert [(e.kind, e.pid) for e in events] == [
        ("created", os.getpid()),
        ("claimed", proc.pid),
        ("completed", proc.pid),
    ]
    assert {(e.os_user, e.host) for e in events} == {ME}
