"""The dashboard at scale: coalesced reloads, incremental refresh, the paged table.

Counts and contents only, never timings: `benchmarks/bench_dashboard.py` measures those.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widgets import Static

from tests.tui_helpers import Rig, make_rig, wait_for
from waha_tui import events as ev
from waha_tui.models import utcnow
from waha_tui.status import CampaignStatus
from waha_tui.store import C, Store
from waha_tui.tui.screens import main as main_module
from waha_tui.tui.screens.main import MainScreen
from waha_tui.tui.widgets.keyed_table import KeyedTable

S = CampaignStatus


def screen_of(pilot: Pilot) -> MainScreen:
    screen = pilot.app.screen
    assert isinstance(screen, MainScreen)
    return screen


def table_of(pilot: Pilot) -> KeyedTable:
    return pilot.app.screen.query_one("#campaigns", KeyedTable)


def keys(pilot: Pilot) -> list[str]:
    t = table_of(pilot)
    return [str(t.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(t.row_count)]


def cell(pilot: Pilot, cid: int, column: str) -> str:
    return str(table_of(pilot).get_cell(str(cid), column))


def rendered(pilot: Pilot) -> str:
    """The table as it is drawn now (not its data): a changed row must be repainted."""
    t = table_of(pilot)
    return "\n".join(s.text for s in t.render_lines(Region(0, 0, t.size.width, t.size.height)))


def other_store_writes(rig: Rig, cid: int, **values: Any) -> None:
    """A write from another process: its own Store (engines, connections) on the same file."""
    other = Store(rig.store.target)
    try:
        with other.write() as conn:
            conn.execute(sa.update(C).where(C.c.id == cid).values(**values))
    finally:
        other.close()


async def test_a_burst_of_runner_events_makes_a_bounded_number_of_reloads(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = rig.add("Busy", 500, status=S.PAUSED)
    # The screen's own timer out of the way: only the runner events ask for reloads.
    async with rig.app(refresh_interval=1e6).run_test(size=(120, 30)) as pilot:
        screen = screen_of(pilot)
        await wait_for(pilot, lambda: str(cid) in keys(pilot))
        calls: list[bool] = []
        original = screen.reload

        async def counted(*args: Any, **kwargs: Any) -> None:
            calls.append(True)
            await original(*args, **kwargs)

        monkeypatch.setattr(screen, "reload", counted)
        # What a runner at full speed does: a row write and an event per message.
        for n in range(1, 301):
            if n == 300:
                other_store_writes(rig, cid, sent=n, next_index=n, updated_at=utcnow())
            rig.service.bus.publish(ev.RecipientProcessed(cid, n - 1, "sent", n, 0, 0, 500, n))
        await wait_for(pilot, lambda: "300/500" in cell(pilot, cid, "progress"))
        await pilot.pause(0.3)
        # One event per message used to queue one reload each on the screen.
        assert 1 <= len(calls) <= 2
        assert screen.campaigns[cid].sent == 300


@pytest.fixture
async def rig_on_backend(tmp_path: Path, db_target: str) -> AsyncIterator[Rig]:
    rig = make_rig(tmp_path, target=db_target)
    yield rig
    await rig.service.aclose()


async def test_a_change_by_another_store_shows_and_a_deleted_campaign_disappears(
    rig_on_backend: Rig,
) -> None:
    # On PostgreSQL too: every operator's dashboard follows changes made on other hosts.
    rig = rig_on_backend
    a = rig.add("Alpha", 3)
    b = rig.add("Beta", 3, seed=1)
    c = rig.add("Gamma", 3, seed=2)
    async with rig.app().run_test(size=(120, 30)) as pilot:
        screen = screen_of(pilot)
        # Newest first.
        await wait_for(pilot, lambda: keys(pilot) == [str(c), str(b), str(a)])
        table_of(pilot).move_cursor(row=0)  # on Gamma: must stay there
        await pilot.pause(0.1)
        other_store_writes(
            rig, b, status=S.PAUSED, pause_reason="paused elsewhere", updated_at=utcnow()
        )
        await wait_for(pilot, lambda: "Paused" in cell(pilot, b, "status"))
        assert screen.campaigns[b].pause_reason == "paused elsewhere"
        assert table_of(pilot).current_key == str(c)
        # Drawn too: the row is repainted, not only its cells updated.
        lines = rendered(pilot).splitlines()
        assert any("Beta" in line and "‖ Paused" in line for line in lines)
        assert not any("Beta" in line and "Scheduled" in line for line in lines)
        other_store_writes(rig, c, sent=2, next_index=2, updated_at=utcnow())
        await wait_for(pilot, lambda: "2/3" in cell(pilot, c, "progress"))
        assert any("Gamma" in line and "2/3" in line for line in rendered(pilot).splitlines())

        other = Store(rig.store.target)
        try:
            with other.write() as conn:
                conn.execute(sa.delete(C).where(C.c.id == a))  # recipients cascade
        finally:
            other.close()
        await wait_for(pilot, lambda: keys(pilot) == [str(c), str(b)])
        assert a not in screen.campaigns
        assert table_of(pilot).current_key == str(c)


async def test_a_change_stamped_by_a_slightly_slower_clock_is_not_missed(rig: Rig) -> None:
    a = rig.add("Alpha", 3)
    b = rig.add("Beta", 3, seed=1)
    async with rig.app().run_test(size=(120, 30)) as pilot:
        screen = screen_of(pilot)
        await wait_for(pilot, lambda: keys(pilot) == [str(b), str(a)])
        other_store_writes(rig, a, sent=1, next_index=1, updated_at=utcnow())
        await wait_for(pilot, lambda: "1/3" in cell(pilot, a, "progress"))
        newest = screen.campaigns[a].updated_at
        # Another host, its clock 2 s behind ours, writes after our last read.
        other_store_writes(rig, b, sent=2, next_index=2, updated_at=newest - timedelta(seconds=2))
        await wait_for(pilot, lambda: "2/3" in cell(pilot, b, "progress"))


async def test_the_table_holds_one_page_and_keys_walk_across_pages(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(main_module, "PAGE_SIZE", 5)
    ids = [rig.add(f"Camp {i:02d}", 2, seed=i) for i in range(12)][::-1]  # newest first
    async with rig.app().run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: keys(pilot) == [str(x) for x in ids[:5]])
        info = pilot.app.screen.query_one("#page-info", Static)
        assert info.display
        assert "rows 1–5 of 12" in str(info.render())

        table_of(pilot).move_cursor(row=4)
        await pilot.pause(0.05)
        await pilot.press("down")  # past the last row: the next page, on its first row
        await wait_for(pilot, lambda: keys(pilot) == [str(x) for x in ids[5:10]])
        assert table_of(pilot).current_key == str(ids[5])
        assert "rows 6–10 of 12" in str(info.render())

        await pilot.press("up")  # back before the first row: the page before, its last row
        await wait_for(pilot, lambda: keys(pilot) == [str(x) for x in ids[:5]])
        assert table_of(pilot).current_key == str(ids[4])

        await pilot.press("pagedown", "pagedown")
        await wait_for(pilot, lambda: keys(pilot) == [str(x) for x in ids[10:]])
        assert "rows 11–12 of 12" in str(info.render())
        await pilot.press("pageup")
        await wait_for(pilot, lambda: keys(pilot) == [str(x) for x in ids[5:10]])

        # A change to a campaign on another page leaves this one as it is; it shows there.
        other_store_writes(rig, ids[0], sent=1, next_index=1, updated_at=utcnow())
        await pilot.pause(0.5)  # refresh ticks
        assert keys(pilot) == [str(x) for x in ids[5:10]]
        await pilot.press("pageup")
        await wait_for(pilot, lambda: "1/2" in cell(pilot, ids[0], "progress"))


async def test_the_filter_searches_every_campaign_not_only_the_page(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(main_module, "PAGE_SIZE", 5)
    last = rig.add("Needle in the haystack", 2, seed=40)  # the oldest: on the last page
    ids = [rig.add(f"Camp {i:02d}", 2, seed=i) for i in range(12)][::-1]  # newest first
    async with rig.app().run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: keys(pilot) == [str(x) for x in ids[:5]])
        await pilot.press("slash", *"needle")
        await wait_for(pilot, lambda: keys(pilot) == [str(last)])
        info = pilot.app.screen.query_one("#page-info", Static)
        assert "rows" not in str(info.render())  # one page: no page numbers
        await pilot.press("enter")
        assert table_of(pilot).current_key == str(last)
        await pilot.press("escape")  # back to every campaign, still on the same one
        # Its page (the third of 13 campaigns, 5 a page), not the first.
        await wait_for(pilot, lambda: keys(pilot) == [str(x) for x in [*ids[10:], last]])
        assert table_of(pilot).current_key == str(last)
        assert "rows 11–13 of 13" in str(info.render())


async def test_a_resume_still_ends_with_its_toast_and_a_footer_without_r(rig: Rig) -> None:
    cid = rig.add("Slow", 20, status=S.PAUSED, delay=(0.2, 0.2))
    async with rig.app().run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: str(cid) in keys(pilot))
        table_of(pilot).move_cursor(row=table_of(pilot).get_row_index(str(cid)))
        await pilot.pause(0.05)
        await pilot.press("r", "r")
        await wait_for(pilot, lambda: any("resumed" in n.message for n in pilot.app._notifications))
        screen = screen_of(pilot)
        await wait_for(pilot, lambda: screen.campaigns[cid].status == S.RUNNING)
        await wait_for(pilot, lambda: cid not in pilot.app.resuming)  # type: ignore[attr-defined]
        offered = {
            b.description
            for _key, (_node, b, enabled, _tip) in screen.active_bindings.items()
            if b.show and enabled
        }
        assert "Resume" not in offered and "Pause" in offered
        assert not [n for n in pilot.app._notifications if n.severity == "error"]
        await pilot.press("p")
        await wait_for(pilot, lambda: rig.store.get_campaign(cid).status == S.PAUSED)
