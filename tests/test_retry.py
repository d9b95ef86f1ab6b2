"""The operator's decision on unknown and failed recipients: `campaign retry` and `u`/`f`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from engine_helpers import (
    FakeClock,
    fast_config,
    make_campaign,
    module_simulator,
    recipient_counts,
    reset_simulator,
    run_to_end,
    snapshot,
)
from typer.testing import CliRunner

from tests.tui_helpers import Rig
from waha_tui import cli
from waha_tui.runner import RunnerPool
from waha_tui.service import CampaignService
from waha_tui.simulator import SimulatorServer
from waha_tui.status import CampaignStatus, RecipientStatus
from waha_tui.store import Store, StoreError
from waha_tui.tui.screens.confirm import ConfirmationModal
from waha_tui.tui.screens.details import DetailsScreen
from waha_tui.waha import WahaClient

S = CampaignStatus
RS = RecipientStatus


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[SimulatorServer]:
    yield from module_simulator()


@pytest.fixture
def sim_server(shared_sim: SimulatorServer) -> SimulatorServer:
    return reset_simulator(shared_sim)


def truth(store: Store, cid: int) -> None:
    """The counters equal the per-recipient statuses."""
    camp = store.get_campaign(cid)
    counts = recipient_counts(store, cid)
    assert (camp.sent, camp.failed, camp.unknown) == (
        counts.get(RS.SENT, 0),
        counts.get(RS.FAILED, 0),
        counts.get(RS.UNKNOWN, 0),
    )


async def test_retry_failed_sends_only_those_again_and_counters_stay_true(
    store: Store, client: WahaClient, sim_server: SimulatorServer
) -> None:
    cid = make_campaign(store, 6)
    sim_server.state.fail_chat("491510000002@c.us")
    sim_server.state.fail_chat("491510000004@c.us")
    await run_to_end(store, client, cid)
    assert store.get_campaign(cid).status == S.COMPLETED
    assert store.get_campaign(cid).failed == 2
    truth(store, cid)

    sim_server.state.clear_faults()
    service = CampaignService(store, client, RunnerPool(store, client, config=fast_config()))
    assert await service.retry(cid, unknown=False, failed=True) == 2
    camp = store.get_campaign(cid)
    assert (camp.status, camp.failed, camp.next_index) == (S.PAUSED, 0, 2)
    assert "2 recipients queued for retry" in (camp.pause_reason or "")
    assert [r.position for r in store.recipients(cid, status=RS.PENDING)] == [2, 4]
    truth(store, cid)

    before = len(sim_server.state.sent())
    await service.resume(cid)
    await service.pool.wait(cid)
    camp = store.get_campaign(cid)
    assert (camp.status, camp.sent, camp.failed, camp.next_index) == (S.COMPLETED, 6, 0, 6)
    again = [m.chat_id for m in sim_server.state.sent()[before:]]
    assert again == ["491510000002@c.us", "491510000004@c.us"]
    truth(store, cid)


async def test_settled_recipients_before_next_index_cost_no_wait(
    store: Store, client: WahaClient, sim_server: SimulatorServer
) -> None:
    cid = make_campaign(store, 5, delay_min=30.0, delay_max=30.0)
    sim_server.state.set_status("default", "WORKING")
    sim_server.state.fail_chat("491510000000@c.us")
    clock = FakeClock()
    await run_to_end(store, client, cid, fast_config(clock))
    assert len(clock.waits) == 4  # between five messages
    sim_server.state.clear_faults()
    await CampaignService(store, client).retry(cid, unknown=False, failed=True)
    clock2 = FakeClock()
    await run_to_end(store, client, cid, fast_config(clock2))
    assert store.get_campaign(cid).status == S.COMPLETED
    assert clock2.waits == []  # one message to send, four settled ones skipped without waiting


@pytest.mark.parametrize("status", [S.RUNNING, S.SCHEDULED, S.CANCELLED])
def test_retry_refused_while_it_runs_or_is_cancelled(store: Store, status: CampaignStatus) -> None:
    from engine_helpers import force, force_recipient

    cid = make_campaign(store, 3)
    force_recipient(store, cid, 0, status=RS.FAILED, error="x")
    force(store, cid, status=status, failed=1, next_index=1)
    before = snapshot(store)
    with pytest.raises(StoreError, match=f"campaign {cid} is {status}"):
        store.retry_recipients(cid, [RS.FAILED])
    assert snapshot(store) == before


def test_retry_with_nothing_to_retry_is_a_clear_error(store: Store) -> None:
    from engine_helpers import force

    cid = make_campaign(store, 2)
    force(store, cid, status=S.COMPLETED, sent=2, next_index=2)
    with pytest.raises(StoreError, match="has no unknown recipients"):
        store.retry_recipients(cid, [RS.UNKNOWN])
    assert store.get_campaign(cid).status == S.COMPLETED


def test_cli_retry(db_target: str, sim_server: SimulatorServer) -> None:
    from engine_helpers import force, force_recipient

    db = db_target
    store = Store(db)
    cid = make_campaign(store, 3)
    force_recipient(store, cid, 1, status=RS.UNKNOWN, error="no answer")
    force_recipient(store, cid, 0, status=RS.SENT)
    force_recipient(store, cid, 2, status=RS.SENT)
    force(store, cid, status=S.COMPLETED, sent=2, unknown=1, next_index=3)
    store.close()
    runner = CliRunner()
    base = ["--db", str(db), "--waha-url", sim_server.url, "campaign"]
    none = runner.invoke(cli.app, [*base, "retry", str(cid)])
    assert none.exit_code == 1
    assert "--unknown, --failed, --unconfirmed or several" in none.output
    ok = runner.invoke(cli.app, [*base, "retry", str(cid), "--unknown"])
    assert ok.exit_code == 0, ok.output
    assert "1 recipient queued for retry" in ok.output
    resumed = runner.invoke(cli.app, [*base, "resume", str(cid)])
    assert resumed.exit_code == 0, resumed.output
    assert [m.chat_id for m in sim_server.state.sent()] == ["491510000001@c.us"]
    again = runner.invoke(cli.app, [*base, "retry", str(cid), "--unknown"])
    assert again.exit_code == 1
    assert "has no unknown recipients" in again.output


async def test_details_u_asks_then_queues_unknown_recipients(rig: Rig) -> None:
    from engine_helpers import force_recipient

    cid = rig.add("Unsure", 4, status=S.COMPLETED, done=4)
    force_recipient(rig.store, cid, 2, status=RS.UNKNOWN, message_id=None, error="timeout")
    rig.force(cid, sent=3, unknown=1)
    async with rig.app().run_test(size=(120, 30)) as pilot:
        await pilot.pause(0.3)
        await pilot.press("enter")
        deadline = time.monotonic() + 5
        while not (isinstance(pilot.app.screen, DetailsScreen) and pilot.app.screen.campaign):
            assert time.monotonic() < deadline
            await pilot.pause(0.05)
        screen = pilot.app.screen
        assert screen.check_action("retry", ("unknown",)) is True
        assert screen.check_action("retry", ("failed",)) is False  # none failed: not offered
        await pilot.press("f")
        await pilot.pause(0.2)
        assert isinstance(pilot.app.screen, DetailsScreen)  # nothing asked
        await pilot.press("u")
        await pilot.pause(0.2)
        assert isinstance(pilot.app.screen, ConfirmationModal)
        await pilot.press("y")
        deadline = time.monotonic() + 5
        while rig.store.get_campaign(cid).status != S.PAUSED:
            assert time.monotonic() < deadline
            await pilot.pause(0.05)
    camp = rig.store.get_campaign(cid)
    assert (camp.unknown, camp.next_index) == (0, 2)
    assert rig.sim.state.sent() == []  # queued, not sent: the operator resumes with r


# -- unconfirmed: sent, but WhatsApp never said so (delivery.flag_unconfirmed) ------------


async def _sent_and_unconfirmed(store: Store, client: WahaClient, n: int, **fields: Any) -> int:
    """A campaign really sent to the simulator, then flagged: no ack came in time."""
    from datetime import timedelta

    from waha_tui import delivery
    from waha_tui.models import utcnow

    cid = make_campaign(store, n, **fields)
    await run_to_end(store, client, cid)
    flagged = delivery.flag_unconfirmed(
        store,
        live_since=utcnow() - timedelta(hours=1),
        sessions_with_acks={"default"},
        now=utcnow() + timedelta(minutes=2),
    )
    assert flagged == n
    return cid


async def test_retry_unconfirmed_with_ids_resends_them_deduped_without_asking(
    store: Store, client: WahaClient, sim_server: SimulatorServer
) -> None:
    cid = await _sent_and_unconfirmed(store, client, 3)
    first_ids = [r.wa_id for r in store.recipients(cid)]
    assert all(first_ids)
    service = CampaignService(store, client, RunnerPool(store, client, config=fast_config()))
    plan = await service.plan_unconfirmed_retry(cid)
    assert (plan.count, plan.deduped, plan.question) == (3, True, None)
    assert await service.retry(cid, unknown=False, failed=False, unconfirmed=True) == 3
    camp = store.get_campaign(cid)
    assert (camp.status, camp.sent, camp.unconfirmed, camp.next_index) == (S.PAUSED, 0, 0, 0)
    queued = store.recipients(cid)
    assert [r.status for r in queued] == [RS.PENDING] * 3
    assert [r.message_id for r in queued] == first_ids  # each goes again with its own id
    assert not any(r.unconfirmed for r in queued)
    truth(store, cid)
    await service.resume(cid)
    await service.pool.wait(cid)
    assert store.get_campaign(cid).status == S.COMPLETED
    assert len(sim_server.state.sent()) == 3  # WhatsApp (the simulator) kept each once
    truth(store, cid)


async def test_retry_unconfirmed_without_ids_needs_the_operators_yes(
    store: Store, client: WahaClient, sim_server: SimulatorServer
) -> None:
    from waha_tui.service import NeedsConfirmation

    sim_server.state.message_ids = False  # WAHA before 2026.4.3
    cid = await _sent_and_unconfirmed(store, client, 2)
    service = CampaignService(store, client)
    plan = await service.plan_unconfirmed_retry(cid)
    assert (plan.count, plan.deduped) == (2, False)
    assert plan.question is not None and "twice" in plan.question
    before = snapshot(store)
    with pytest.raises(NeedsConfirmation, match="may arrive twice"):
        await service.retry(cid, unknown=False, failed=False, unconfirmed=True)
    assert snapshot(store) == before
    assert await service.retry(cid, unknown=False, failed=False, unconfirmed=True, confirmed=True)
    assert [(r.status, r.message_id) for r in store.recipients(cid)] == [(RS.PENDING, None)] * 2
    assert "may arrive twice" in (store.events(cid)[-1].detail or "")


async def test_retry_unconfirmed_of_an_image_campaign_is_never_deduped(
    store: Store, client: WahaClient
) -> None:
    from engine_helpers import force

    service = CampaignService(store, client)
    text, image = make_campaign(store, 1), make_campaign(store, 1)
    force(store, image, image_sha256="x" * 64)  # sendImage takes no id: no dedupe
    for cid in (text, image):
        force(store, cid, status=S.COMPLETED, sent=1, unconfirmed=1, next_index=1)
    assert (await service.plan_unconfirmed_retry(text)).deduped is True
    assert (await service.plan_unconfirmed_retry(image)).deduped is False


async def test_retry_unconfirmed_over_several_numbers_is_deduped_only_if_each_takes_ids(
    store: Store, client: WahaClient, sim_server: SimulatorServer
) -> None:
    from engine_helpers import force

    sim_server.state.add_session("second", "WORKING")
    service = CampaignService(store, client)
    both, gone = make_campaign(store, 2), make_campaign(store, 2)
    force(store, both, sessions=[["default", 1], ["second", 1]])
    force(store, gone, sessions=[["default", 1], ["nowhere", 1]])  # WAHA has no such session
    for cid in (both, gone):
        force(store, cid, status=S.COMPLETED, sent=2, unconfirmed=2, next_index=2)
    assert (await service.plan_unconfirmed_retry(both)).deduped is True
    plan = await service.plan_unconfirmed_retry(gone)
    assert plan.deduped is False and plan.question is not None


def test_cli_retry_unconfirmed_asks_or_refuses_without_a_terminal(
    db_target: str, sim_server: SimulatorServer
) -> None:
    from engine_helpers import force, force_recipient

    sim_server.state.message_ids = False
    store = Store(db_target)
    cid = make_campaign(store, 2)
    for i in range(2):
        force_recipient(store, cid, i, status=RS.SENT, message_id=f"M{i}", wa_id=f"M{i}")
    force_recipient(store, cid, 1, unconfirmed=True)
    force(store, cid, status=S.COMPLETED, sent=2, unconfirmed=1, next_index=2)
    store.close()
    runner = CliRunner()
    base = ["--db", db_target, "--waha-url", sim_server.url, "campaign", "retry", str(cid)]
    refused = runner.invoke(cli.app, [*base, "--unconfirmed"])  # CliRunner: no terminal
    assert refused.exit_code == 2
    assert refused.stderr.count("\n") == 1 and "give --yes" in refused.stderr
    ok = runner.invoke(cli.app, [*base, "--unconfirmed", "--yes"])
    assert ok.exit_code == 0, ok.output
    assert "1 recipient queued for retry" in ok.stdout
    store = Store(db_target)
    try:
        assert [r.status for r in store.recipients(cid)] == [RS.SENT, RS.PENDING]
        assert store.get_campaign(cid).unconfirmed == 0
    finally:
        store.close()
