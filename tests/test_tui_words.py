"""What the dashboard says follows what is true: the quit question while it is open, the
demo's banner as the story moves on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Static

from tests.tui_helpers import Rig, make_rig, wait_for
from waha_tui.demo import build_demo
from waha_tui.status import CampaignStatus
from waha_tui.store import C, StoreError
from waha_tui.tui.app import WahaTuiApp
from waha_tui.tui.screens.confirm import ConfirmationModal
from waha_tui.tui.widgets.keyed_table import KeyedTable

S = CampaignStatus


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    rig = make_rig(tmp_path)
    yield rig
    await rig.service.aclose()


def question(pilot: Pilot) -> tuple[str, str]:
    modal = pilot.app.screen
    assert isinstance(modal, ConfirmationModal)
    text = str(modal.query_one("#confirm-question", Static).render())
    return text, str(modal.query_one("#yes", Button).label)


async def test_the_quit_question_follows_a_campaign_that_ends_while_it_is_asked(
    rig: Rig,
) -> None:
    cid = rig.add("Short", 4, delay=(0.3, 0.3))
    async with rig.app().run_test(size=(80, 24)) as pilot:
        await rig.service.start(cid)
        await wait_for(pilot, lambda: rig.service.running_here() == [cid])
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        asked, yes = question(pilot)
        assert "1 campaign is running" in asked and yes == "Pause and quit (y)"
        # The campaign ends while the operator reads: the question says so.
        await wait_for(pilot, lambda: rig.store.get_campaign(cid).status == S.COMPLETED)
        await wait_for(pilot, lambda: "No campaign is running" in question(pilot)[0])
        assert question(pilot)[1] == "Quit (y)"
        await pilot.press("y")
        await wait_for(pilot, lambda: pilot.app.return_code is not None or not pilot.app.is_running)
    assert len(rig.sim.state.sent()) == 4


async def test_toasts_never_cover_the_quit_dialogs_buttons_at_80x24(rig: Rig) -> None:
    cid = rig.add("Long", 50, delay=(5.0, 5.0))
    async with rig.app().run_test(size=(80, 24), notifications=True) as pilot:
        await rig.service.start(cid)
        await wait_for(pilot, lambda: rig.service.running_here() == [cid])
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        for n in range(3):
            pilot.app.notify(f"toast {n}: a long message that wraps over lines " * 2, timeout=30)
        modal = pilot.app.screen
        await wait_for(pilot, lambda: len(modal.query("Toast")) == 3)
        await pilot.pause(0.2)
        buttons, screen = modal.query_one("#confirm-buttons").region, modal.region
        shown = [t.region.intersection(screen) for t in modal.query("Toast")]
        assert any(r.area for r in shown)  # the room under the question shows one
        assert not any(r.overlaps(buttons) for r in shown)
        await pilot.press("n")  # stay: the rest show again on the dashboard
        await wait_for(pilot, lambda: not isinstance(pilot.app.screen, ConfirmationModal))
        await pilot.pause(0.2)
        on_main = [
            t.region.intersection(pilot.app.screen.region) for t in pilot.app.screen.query("Toast")
        ]
        assert sum(1 for r in on_main if r.area) >= 2
        await rig.service.pause(cid)


async def test_the_demo_banner_never_tells_to_do_what_is_done(tmp_path: Path) -> None:
    demo = await build_demo(tmp_path)
    try:
        welcome = next(c for c in demo.service.store.list_campaigns() if c.name == "Welcome series")
        with demo.service.store.write() as conn:  # the demo's waits, shorter
            conn.execute(C.update().values(delay_min=0.05, delay_max=0.05))
        app = WahaTuiApp(demo.service, banner=demo.banner, run_scheduler=False)
        async with app.run_test(size=(80, 24)) as pilot:

            def banner() -> str:
                return str(app.main.query_one("#banner", Static).render())

            assert "'sales' dropped" in banner()
            reconnect = demo.timeline[0][1]
            app._timeline_step(reconnect)  # the demo's script, now rather than in 8 s
            await wait_for(pilot, lambda: "press r to resume" in banner())
            table = app.main.query_one("#campaigns", KeyedTable)
            await wait_for(pilot, lambda: str(welcome.id) in table.rows)
            table.move_cursor(row=table.get_row_index(str(welcome.id)))
            await pilot.press("r")
            # Resumed: the advice to press r is gone; then it says how it ended.
            await wait_for(pilot, lambda: "press r" not in banner())
            await wait_for(pilot, lambda: "completed" in banner(), timeout=20)
            assert "none twice" in banner()
    finally:
        await demo.service.stop_all("test over")
        await demo.aclose_listener()
        await demo.service.aclose()
        demo.close()
    sent_to = [m.chat_id for m in demo.server.state.sent("sales")]
    assert len(sent_to) == len(set(sent_to)) == welcome.total


async def test_a_toast_never_covers_the_filter(rig: Rig) -> None:
    for n in range(3):
        rig.add(f"Campaign {n}", 2, seed=n)
    async with rig.app().run_test(size=(80, 24), notifications=True) as pilot:
        await pilot.press("slash", "C", "a", "m")
        await pilot.pause(0.2)
        for n in range(3):  # a pile of them, as a burst of errors makes
            pilot.app.notify(f"something happened, at some length this time ({n})", timeout=30)
        await pilot.pause(0.5)
        screen = pilot.app.screen
        box = screen.query_one("#filter").region
        toasts = [t.region for t in screen.query("Toast")]
        assert toasts and box.height > 0
        assert all(not t.overlaps(box) for t in toasts), (box, toasts)
        for under in ("KeyFooter", "#row-info"):  # nor the reason under the table
            region = screen.query_one(under).region
            assert all(not t.overlaps(region) for t in toasts), under
        assert screen.query_one("#filter").has_focus  # typing goes on where it was
        await pilot.press("p")
        assert str(screen.query_one("#filter").value) == "Camp"


async def test_a_database_that_stays_away_is_said_once_and_its_return_too(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Every tick retries; the operator (and the log) hear of it once, not twice a second
    for as long as it lasts (a dashboard left on a dead database wrote 7,000 lines an hour)."""
    cid = rig.add("Kept", 2)
    async with rig.app(refresh_interval=0.05).run_test(size=(80, 24), notifications=True) as pilot:
        table = pilot.app.screen.query_one("#campaigns", KeyedTable)
        await wait_for(pilot, lambda: str(cid) in table.rows)
        real = rig.service.campaign_page
        calls = 0

        async def gone(*args: object, **kwargs: object) -> object:
            nonlocal calls
            calls += 1
            raise StoreError("database campaigns.db: connection failed")

        monkeypatch.setattr(rig.service, "campaign_page", gone)
        await wait_for(pilot, lambda: calls >= 10)
        said = [n.message for n in pilot.app._notifications if "connection failed" in n.message]
        logged = [r for r in caplog.records if "connection failed" in r.getMessage()]
        assert len(said) == 1 and len(logged) == 1
        monkeypatch.setattr(rig.service, "campaign_page", real)
        await wait_for(
            pilot, lambda: any("read again" in n.message for n in pilot.app._notifications)
        )
        assert str(cid) in table.rows
