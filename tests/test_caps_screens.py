"""Per-number caps on the screens: the sessions screen (w) shows each session's number's
caps and counts; the dashboard's ETA knows them. The real app, the simulator, SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from engine_helpers import make_campaign
from textual.widgets import Static

from tests.test_tui import select, shown
from tests.tui_helpers import Rig, make_rig, wait_for
from waha_tui.models import utcnow
from waha_tui.store import SendCount
from waha_tui.tui.screens.details import DetailsScreen
from waha_tui.tui.screens.main import MainScreen
from waha_tui.tui.screens.sessions import SessionsScreen

NUMBER = "15550000000"


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    made = make_rig(tmp_path, sessions={"default": "WORKING", "second": "STOPPED"})
    yield made
    await made.service.aclose()


def log_sends(rig: Rig, n: int) -> None:
    """n sends from the number, as runs write them (counted at their reservation)."""
    cid = make_campaign(rig.store, n)
    rig.store.claim(cid, "elsewhere:1:a", 60)
    for r in rig.store.recipients(cid):
        rig.store.commit_progress(
            cid,
            [],
            owner="elsewhere:1:a",
            lease_seconds=60,
            sending=(r.id, None),
            count=SendCount(NUMBER, utcnow()),
        )


async def test_the_sessions_screen_shows_the_numbers_caps_and_todays_count(rig: Rig) -> None:
    start = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    rig.store.set_caps(
        NUMBER, per_hour=30, per_day=200, zone="UTC", warmup=(20, 40, 80), warmup_start=start
    )
    log_sends(rig, 3)
    async with rig.app().run_test(size=(80, 24)) as pilot:
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, SessionsScreen))
        s = pilot.app.screen
        assert isinstance(s, SessionsScreen)
        info = s.query_one("#session-info", Static)
        await wait_for(pilot, lambda: "Caps:" in str(info.render()))
        text = " ".join(str(info.render()).split())
        assert "Caps: 3/20 today, 3/30 this hour, warm-up day 1 of 3." in text
        # Cleared elsewhere: gone at the next refresh.
        rig.store.clear_caps(NUMBER)
        await wait_for(pilot, lambda: "Caps:" not in str(info.render()))


async def test_the_dashboards_eta_counts_the_numbers_caps(rig: Rig) -> None:
    cid = make_campaign(rig.store, 500, delay_min=30.0, delay_max=60.0)
    async with rig.app(session_interval=0.1).run_test(size=(120, 30)) as pilot:
        main = pilot.app.screen
        assert isinstance(main, MainScreen)
        await wait_for(pilot, lambda: cid in main.campaigns)
        free = str(main._cells_for(cid)[[f.key for f in main._fitted].index("eta")])
        assert free.startswith("~") and "d" not in free  # ~6h19m at 45.5 s a message
        rig.store.set_caps(
            NUMBER, per_hour=None, per_day=100, zone="UTC", warmup=None, warmup_start=None
        )
        await wait_for(pilot, lambda: "default" in main.caps)
        capped = str(main._cells_for(cid)[[f.key for f in main._fitted].index("eta")])
        assert capped != free and "d" in capped  # 100 a day: days
        # Its details say the same.
        await select(pilot, cid)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, DetailsScreen))
        details = pilot.app.screen
        await wait_for(
            pilot,
            lambda: (
                f"ETA {capped}"
                in " ".join(shown(details.query_one("#details-summary", Static)).split())
            ),
        )
