"""The dashboard listens to WAHA's events while it is open: acks fill the delivery columns,
a reply that is an opt-out is said in a toast, and the WAHA line says whether events come.
The real app, the real simulator on a socket, the real SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from engine_helpers import make_campaign, module_simulator, reset_simulator
from textual.pilot import Pilot
from textual.widgets import Static

from tests.test_tui import shown, table
from tests.tui_helpers import wait_for
from waha_tui.runner import RunnerConfig, RunnerPool
from waha_tui.service import CampaignService
from waha_tui.simulator import SimulatorServer
from waha_tui.status import CampaignStatus
from waha_tui.store import Store
from waha_tui.tui.app import WahaTuiApp, create_app
from waha_tui.waha import WahaClient

S = CampaignStatus
FAST = {"server": 0.01, "device": 0.02, "read": 0.05, "read_share": 1}


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[SimulatorServer]:
    yield from module_simulator()


@pytest.fixture
def sim_server(shared_sim: SimulatorServer) -> SimulatorServer:
    return reset_simulator(shared_sim)


@asynccontextmanager
async def dashboard(url: str, tmp: Path) -> AsyncIterator[tuple[WahaTuiApp, Store]]:
    client = WahaClient(url)
    store = Store(tmp / "campaigns.db")
    config = RunnerConfig(lease_seconds=15, poll_interval=0.05)
    service = CampaignService(store, client, RunnerPool(store, client, config=config))
    try:
        yield create_app(service, refresh_interval=0.2, session_interval=0.3), store
    finally:
        await service.aclose()


def waha_line(pilot: Pilot) -> str:
    return shown(pilot.app.screen.query_one("#waha-line", Static))


def cell(pilot: Pilot, cid: int, column: str) -> str:
    return str(table(pilot).get_cell(str(cid), column))


async def test_acks_fill_the_delivery_columns_and_an_opt_out_is_said(
    tmp_path: Path, sim_server: SimulatorServer
) -> None:
    async with httpx.AsyncClient(base_url=sim_server.url) as http:
        assert (await http.post("/_sim/acks", json=FAST)).status_code < 300
    async with dashboard(sim_server.url, tmp_path) as (app, store):
        cid = make_campaign(store, 4, name="Funnel")
        async with app.run_test(size=(160, 30)) as pilot:
            await wait_for(pilot, lambda: "events live" in waha_line(pilot))
            await wait_for(pilot, lambda: store.get_campaign(cid).status == S.COMPLETED)
            await wait_for(pilot, lambda: cell(pilot, cid, "read") == "100%")
            assert cell(pilot, cid, "delivered") == "100%"
            assert cell(pilot, cid, "replied") == "0%"
            someone = store.recipients(cid)[2]
            sim_server.sim.reply("default", someone.chat_id, "STOP")
            await wait_for(pilot, lambda: cell(pilot, cid, "replied") == "25%")
            toasts = [str(n.message) for n in app._notifications]
            assert any(f"{someone.phone} opted out (campaign {cid})" in t for t in toasts)
            # WAHA goes away: the line says the events stopped coming.
            sim_server.sim.close_sockets(1001, "Server is shutting down")
            await wait_for(pilot, lambda: "events down" in waha_line(pilot))
            await wait_for(pilot, lambda: "events live" in waha_line(pilot))  # and back


async def test_the_details_screen_shows_the_funnel_and_each_recipients_fate(
    tmp_path: Path, sim_server: SimulatorServer
) -> None:
    async with httpx.AsyncClient(base_url=sim_server.url) as http:
        assert (await http.post("/_sim/acks", json=FAST)).status_code < 300
    async with dashboard(sim_server.url, tmp_path) as (app, store):
        cid = make_campaign(store, 3, name="Funnel")
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: store.get_campaign(cid).read == 3)
            sim_server.sim.reply("default", store.recipients(cid)[0].chat_id, "Thanks!")
            await wait_for(pilot, lambda: store.get_campaign(cid).replied == 1)
            await pilot.press("enter")
            await wait_for(pilot, lambda: pilot.app.screen.query("#recipients"))
            screen = pilot.app.screen
            await wait_for(
                pilot, lambda: "Replied" in shown(screen.query_one("#details-summary", Static))
            )
            summary = " ".join(shown(screen.query_one("#details-summary", Static)).split())
            assert "Delivered ██████████ 3 100%" in summary
            assert "Replied ███░░░░░░░ 1 33%" in summary

            def under() -> str:
                return shown(screen.query_one("#recipient-error", Static)).strip()

            # The cursor follows the last recipient sent: its fate, whole, under the table.
            await wait_for(pilot, lambda: under().startswith("#3 delivered"))
            assert " · read " in under() and "replied" not in under()
            await pilot.press("up", "up")
            await wait_for(pilot, lambda: under().startswith("#1 delivered"))
            first_line = under().splitlines()[0]
            assert " · replied " in first_line and first_line.endswith(": Thanks!")


async def test_the_demo_shows_acks_a_reply_and_an_opt_out_arriving(tmp_path: Path) -> None:
    from waha_tui.demo import build_demo

    demo = await build_demo(tmp_path)
    store = demo.service.store
    try:
        spring = next(c for c in store.list_campaigns() if c.name == "Spring sale")
        # Sent while the demo was built, acknowledged as WhatsApp would, and written.
        await asyncio.sleep(0)
        app = WahaTuiApp(
            demo.service,
            banner=demo.banner,
            run_scheduler=False,
            listener=demo.build_listener,
        )
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: store.get_campaign(spring.id or 0).read > 0)
            camp = store.get_campaign(spring.id or 0)
            assert camp.sent + camp.failed == 12 and 0 < camp.read <= camp.delivered
            steps = [step for _, step in demo.timeline]
            app._timeline_step(steps[1])  # someone replies, now rather than in 14 s
            await wait_for(pilot, lambda: store.get_campaign(spring.id or 0).replied == 1)
            app._timeline_step(steps[0])  # 'sales' reconnects (its messages arrive again)
            app._timeline_step(steps[2])  # and someone answers STOP
            await wait_for(
                pilot, lambda: any("opted out" in str(n.message) for n in app._notifications)
            )
            assert demo.service.store.count_optouts("") == 1
    finally:
        await demo.service.stop_all("test over")
        await demo.aclose_listener()
        await demo.service.aclose()
        demo.close()
