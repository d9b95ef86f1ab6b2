"""The dashboard's order: newest first by default, s/S sort by any stored column, the
cursor follows its campaign when rows move, g/G go to the ends of all campaigns. Pages of 5
rows here, so crossing a page is cheap to set up; the database does the sorting."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot
from textual.widgets import Static
from textual.widgets.data_table import ColumnKey

from tests.test_dashboard_refresh import cell, keys, other_store_writes, screen_of, table_of
from tests.tui_helpers import Rig, wait_for
from waha_tui.models import utcnow
from waha_tui.status import CampaignStatus
from waha_tui.tui.screens import main as main_module

S = CampaignStatus


@pytest.fixture
def pages_of_5(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(main_module, "PAGE_SIZE", 5)


def header(pilot: Pilot, column: str) -> str:
    return table_of(pilot).columns[ColumnKey(column)].label.plain


def page_line(pilot: Pilot) -> str:
    return str(pilot.app.screen.query_one("#page-info", Static).render())


def current(pilot: Pilot) -> str | None:
    return table_of(pilot).current_key


async def press_sort(pilot: Pilot, label: str) -> None:
    """`s` until the page line names this sort."""
    for _ in range(len(main_module.SORTS)):
        if f"sort: {label} " in page_line(pilot):
            return
        before = page_line(pilot)
        await pilot.press("s")
        await wait_for(pilot, lambda before=before: page_line(pilot) != before)
    raise AssertionError(f"no sort named {label!r}")


async def test_newest_first_by_default_and_s_and_S_change_the_order_and_say_so(
    rig: Rig,
) -> None:
    b = rig.add("beta", 2)
    a = rig.add("Alpha", 2, seed=1)
    c = rig.add("charlie", 2, seed=2)
    async with rig.app().run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: keys(pilot) == [str(c), str(a), str(b)])
        assert header(pilot, "id") == "ID ↓"
        assert "sort: created ↓" in page_line(pilot)
        assert current(pilot) == str(c)

        await pilot.press("s")  # by name, A to Z, whatever the case
        await wait_for(pilot, lambda: keys(pilot) == [str(a), str(b), str(c)])
        assert header(pilot, "name") == "Name ↑" and header(pilot, "id") == "ID"
        assert "sort: name ↑" in page_line(pilot)
        assert current(pilot) == str(c)  # the cursor stayed on its campaign

        await pilot.press("S")  # reversed
        await wait_for(pilot, lambda: keys(pilot) == [str(c), str(b), str(a)])
        assert header(pilot, "name") == "Name ↓"
        assert "sort: name ↓" in page_line(pilot)

        for _ in range(len(main_module.SORTS) - 1):  # round to the first again
            await pilot.press("s")
        await wait_for(pilot, lambda: "sort: created ↓" in page_line(pilot))
        assert keys(pilot) == [str(c), str(a), str(b)]


async def test_the_cursor_follows_its_campaign_across_pages_when_a_change_moves_it(
    rig: Rig, pages_of_5: None
) -> None:
    ids = [rig.add(f"Camp {i:02d}", 10, seed=i, status=S.PAUSED) for i in range(12)]
    async with rig.app().run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: len(keys(pilot)) == 5)
        await press_sort(pilot, "progress")  # most processed first; ties newest first
        await pilot.press("G")  # the last campaign of all: the oldest, on page 3
        await wait_for(pilot, lambda: current(pilot) == str(ids[0]))
        assert "rows 11–12 of 12" in page_line(pilot)

        # Another process moves it ahead of every other: it is on page 1 now, and so are
        # the table and the cursor.
        other_store_writes(rig, ids[0], sent=4, next_index=4, updated_at=utcnow())
        await wait_for(pilot, lambda: keys(pilot)[:1] == [str(ids[0])])
        assert current(pilot) == str(ids[0])
        assert "rows 1–5 of 12" in page_line(pilot)
        assert "4/10" in cell(pilot, ids[0], "progress")

        # Within the page: the row moves, the cursor with it.
        await pilot.press("down")
        assert current(pilot) == str(ids[11])
        other_store_writes(rig, ids[11], sent=6, next_index=6, updated_at=utcnow())
        await wait_for(pilot, lambda: keys(pilot)[:2] == [str(ids[11]), str(ids[0])])
        assert current(pilot) == str(ids[11])
        assert table_of(pilot).cursor_row == 0


async def test_the_cursor_follows_a_running_campaign_up_the_progress_order(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same with a real run sending to the simulator: sorted by progress, the campaign
    climbs past the others, a page at a time, the cursor on it throughout."""
    monkeypatch.setattr(main_module, "PAGE_SIZE", 3)
    runner = rig.add("Runner", 30, status=S.PAUSED, delay=(0.05, 0.05))
    others = [rig.add(f"Other {n}", 30, status=S.PAUSED, done=n, seed=n) for n in (2, 4, 6, 8)]
    async with rig.app().run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: len(keys(pilot)) == 3)
        await press_sort(pilot, "progress")
        await pilot.press("G")
        await wait_for(pilot, lambda: current(pilot) == str(runner))
        assert "rows 4–5 of 5" in page_line(pilot)
        await pilot.press("r")
        await wait_for(
            pilot,
            lambda: keys(pilot)[:1] == [str(runner)] and "rows 1–3 of 5" in page_line(pilot),
            timeout=30,
        )
        assert current(pilot) == str(runner)
        assert keys(pilot)[1:] == [str(others[3]), str(others[2])]
        await pilot.press("p")
        await wait_for(pilot, lambda: rig.store.get_campaign(runner).status == S.PAUSED)


async def test_g_G_home_and_end_go_to_the_first_and_last_of_all_campaigns(
    rig: Rig, pages_of_5: None
) -> None:
    ids = [rig.add(f"Camp {i:02d}", 2, seed=i) for i in range(12)][::-1]  # newest first
    async with rig.app().run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: keys(pilot) == [str(x) for x in ids[:5]])
        await pilot.press("down", "down")
        await pilot.press("G")
        await wait_for(pilot, lambda: keys(pilot) == [str(x) for x in ids[10:]])
        assert current(pilot) == str(ids[-1])
        await pilot.press("up")  # within the page
        assert current(pilot) == str(ids[10])
        await pilot.press("g")
        await wait_for(pilot, lambda: keys(pilot) == [str(x) for x in ids[:5]])
        assert current(pilot) == str(ids[0])
        await pilot.press("end")
        await wait_for(pilot, lambda: current(pilot) == str(ids[-1]))
        assert "rows 11–12 of 12" in page_line(pilot)
        await pilot.press("home")
        await wait_for(pilot, lambda: current(pilot) == str(ids[0]))
        await pilot.press("down", "down", "home")  # on the first page: its first row
        assert current(pilot) == str(ids[0])


async def test_filter_and_sort_together(rig: Rig, pages_of_5: None) -> None:
    news = {}
    for i, name in enumerate(["news b", "promo a", "News d", "promo c", "news a", "NEWS c"]):
        news[name] = rig.add(name, 2, seed=i, done=i % 3)
    for i in range(6):
        rig.add(f"other {i}", 2, seed=10 + i)
    async with rig.app().run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: len(keys(pilot)) == 5)
        await pilot.press("slash", *"news", "enter")
        want = [news[n] for n in ["NEWS c", "news a", "News d", "news b"]]  # newest first
        await wait_for(pilot, lambda: keys(pilot) == [str(x) for x in want])
        await press_sort(pilot, "name")
        want = [news[n] for n in ["news a", "news b", "NEWS c", "News d"]]
        await wait_for(pilot, lambda: keys(pilot) == [str(x) for x in want])
        assert "4 campaigns" in page_line(pilot) and "rows" not in page_line(pilot)
        assert current(pilot) == str(news["NEWS c"])  # where the filter put it: row 0
        await pilot.press("S")
        await wait_for(pilot, lambda: keys(pilot) == [str(x) for x in want[::-1]])
        await pilot.press("escape")  # every campaign, still sorted by name, Z to A
        # The cursor still on its campaign, on the page that holds it.
        await wait_for(pilot, lambda: "rows 6–10 of 12" in page_line(pilot))
        assert "sort: name ↓" in page_line(pilot)
        assert current(pilot) == str(news["NEWS c"])
        names = [str(cell(pilot, int(k), "name")) for k in keys(pilot)]
        assert names == ["other 2", "other 1", "other 0", "News d", "NEWS c"]
        await pilot.press("g")
        await wait_for(pilot, lambda: "rows 1–5 of 12" in page_line(pilot))
        names = [str(cell(pilot, int(k), "name")) for k in keys(pilot)]
        assert names == ["promo c", "promo a", "other 5", "other 4", "other 3"]


async def test_a_new_campaign_lands_on_the_first_page_under_the_cursor(
    rig: Rig, pages_of_5: None
) -> None:
    ids = [rig.add(f"Camp {i:02d}", 2, seed=i) for i in range(12)][::-1]
    async with rig.app().run_test(size=(120, 30)) as pilot:
        screen = screen_of(pilot)
        await wait_for(pilot, lambda: len(keys(pilot)) == 5)
        await pilot.press("G")
        await wait_for(pilot, lambda: current(pilot) == str(ids[-1]))
        new = rig.add("Brand new", 2, seed=50)
        await screen.show_campaign(new)  # what the app does once N created one
        assert keys(pilot)[0] == str(new) and current(pilot) == str(new)
        assert "rows 1–5 of 13" in page_line(pilot)

        # One created by another process, while the first page is shown: on top, the
        # cursor where it was (on its campaign, now a row lower).
        newer = rig.add("Newer still", 2, seed=51)
        await wait_for(pilot, lambda: keys(pilot)[:2] == [str(newer), str(new)])
        assert current(pilot) == str(new)
