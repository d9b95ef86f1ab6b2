"""The opt-out list screen (O): the real app, a real SQLite file, the service's own rules."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from textual.pilot import Pilot
from textual.widgets import Input, Static

from tests.test_sessions_screen import toast_with, toasts
from tests.test_templates_screen import steady_cursors
from tests.test_tui import footer_keys, shown
from tests.tui_helpers import FROZEN, SIZE_IDS, SIZES, Rig, make_rig, wait_for
from waha_tui.errors import InvalidInput
from waha_tui.store import OPT, OptOutEntry
from waha_tui.tui import format
from waha_tui.tui.screens.confirm import ConfirmationModal
from waha_tui.tui.screens.main import MainScreen
from waha_tui.tui.screens.optouts import (
    PAGE_SIZE,
    AddOptOutModal,
    ImportOptOutsModal,
    OptOutsScreen,
)
from waha_tui.tui.widgets.form import Field
from waha_tui.tui.widgets.keyed_table import KeyedTable

SIZE = (80, 24)


def screen_of(pilot: Pilot) -> OptOutsScreen:
    return next(s for s in pilot.app.screen_stack if isinstance(s, OptOutsScreen))


def table(pilot: Pilot) -> KeyedTable:
    return screen_of(pilot).query_one("#optouts", KeyedTable)


def keys(pilot: Pilot) -> list[str]:
    """The numbers in the order shown (new rows are added last, then moved into place)."""
    t = table(pilot)
    return [str(k.value) for k in sorted(t.rows, key=lambda k: t.get_row_index(k))]


def line(pilot: Pilot, name: str) -> str:
    return " ".join(shown(screen_of(pilot).query_one(f"#optouts-{name}", Static)).split())


def field_error(pilot: Pilot, field: str) -> str:
    return pilot.app.screen.query_one(f"#optout-{field}-field", Field).error


def stored(rig: Rig) -> dict[str, tuple[str, str | None]]:
    with rig.store.read() as conn:
        rows = conn.execute(sa.select(OPT.c.phone, OPT.c.source, OPT.c.reason)).all()
    return {phone: (source, reason) for phone, source, reason in rows}


def add_numbers(rig: Rig, *entries: OptOutEntry, minutes_apart: int = 1) -> None:
    """On the list as replies, imports or the CLI put them, the last given the newest."""
    for i, entry in enumerate(entries):
        with rig.store.write() as conn:
            rig.store.insert_optouts(
                conn, [entry], now=FROZEN + timedelta(minutes=i * minutes_apart)
            )


def many(rig: Rig, n: int) -> list[str]:
    """n numbers added at once (one time): newest first is then by number."""
    numbers = [f"4915{i:08d}" for i in range(n)]
    rig.store.add_optouts(
        [OptOutEntry(p, "import", f"big.csv line {i + 2}") for i, p in enumerate(numbers)]
    )
    return numbers


async def open_optouts(pilot: Pilot) -> OptOutsScreen:
    await pilot.press("O")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, OptOutsScreen))
    await wait_for(pilot, lambda: screen_of(pilot).loaded)
    return screen_of(pilot)


THREE = (
    OptOutEntry("491511111111", "reply", "STOP", campaign_id=3),
    OptOutEntry("5511987654321", "import", "optouts.csv line 2"),
    OptOutEntry("491522222222", "hand", "asked by phone"),
)


# -- the list ------------------------------------------------------------------------------


async def test_o_shows_the_list_newest_first_and_esc_goes_back(rig: Rig) -> None:
    add_numbers(rig, *THREE)
    async with rig.app().run_test(size=SIZE) as pilot:
        await open_optouts(pilot)
        assert keys(pilot) == ["491522222222", "5511987654321", "491511111111"]
        row = [str(c) for c in table(pilot).get_row("491511111111")]
        assert row[2:] == ["reply", "3", "STOP"]
        assert line(pilot, "count") == "3 numbers on the list"
        assert line(pilot, "row").startswith("491522222222 · ")  # the cursor's, whole
        assert line(pilot, "row").endswith("hand: asked by phone")
        assert footer_keys(pilot) == {"Search", "Add", "Remove", "Import CSV", "Back"}
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MainScreen))


async def test_an_empty_list_says_what_to_do(rig: Rig) -> None:
    async with rig.app().run_test(size=SIZE) as pilot:
        await open_optouts(pilot)
        hint = line(pilot, "hint")
        assert "The opt-out list is empty." in hint
        assert "press a to add one by hand, or i to import a CSV file" in hint
        assert "Remove" not in footer_keys(pilot)
        await pilot.press("D")
        await pilot.pause(0.2)
        assert isinstance(pilot.app.screen, OptOutsScreen)  # nothing to remove: no question


async def test_the_main_screen_offers_o_and_its_help_lists_it(rig: Rig) -> None:
    async with rig.app().run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "Opt-outs" in footer_keys(pilot))
        await pilot.press("question_mark")
        await pilot.pause(0.2)
        assert "opt-out list" in shown(pilot.app.screen.query_one("#help-keys", Static))


# -- search --------------------------------------------------------------------------------


async def test_search_narrows_by_a_part_of_the_number_and_says_how_many(rig: Rig) -> None:
    add_numbers(rig, *THREE)
    async with rig.app().run_test(size=SIZE) as pilot:
        await open_optouts(pilot)
        await pilot.press("slash")
        assert screen_of(pilot).query_one("#optouts-search", Input).has_focus
        await pilot.press(*"+49 15")
        await wait_for(pilot, lambda: keys(pilot) == ["491522222222", "491511111111"])
        assert line(pilot, "count") == "2 numbers match '+49 15'"
        await pilot.press(*"22")
        await wait_for(pilot, lambda: keys(pilot) == ["491522222222"])
        assert line(pilot, "count") == "1 number matches '+49 1522'"
        await pilot.press("9")
        await wait_for(pilot, lambda: keys(pilot) == [])
        assert line(pilot, "hint") == "No number matches '+49 15229' (esc clears)"
        assert line(pilot, "count") == "0 numbers match '+49 15229'"
        # No digit: the service's refusal, in red where the rows would be.
        await pilot.press(*["backspace"] * 9, *"abc")
        await wait_for(pilot, lambda: "holds no digit" in line(pilot, "hint"))
        assert line(pilot, "hint") == "Search 'abc' holds no digit"
        # esc clears the search, then goes back.
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(keys(pilot)) == 3)
        assert line(pilot, "count") == "3 numbers on the list"
        assert "Back" in footer_keys(pilot)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MainScreen))


# -- adding by hand ------------------------------------------------------------------------


async def test_a_adds_a_number_by_hand_on_top_under_the_cursor(rig: Rig) -> None:
    add_numbers(rig, *THREE)
    async with rig.app().run_test(size=SIZE) as pilot:
        await open_optouts(pilot)
        table(pilot).move_cursor(row=2)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, AddOptOutModal))
        await pilot.press(*"+44 7700 900123", "tab", *"called [us]", "enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, OptOutsScreen))
        await wait_for(pilot, toast_with(pilot, "447700900123 added to the opt-out list"))
        await wait_for(pilot, lambda: keys(pilot)[:1] == ["447700900123"])
        await wait_for(pilot, lambda: table(pilot).current_key == "447700900123")
        assert str(table(pilot).get_cell("447700900123", "reason")) == "called [us]"
        assert line(pilot, "count") == "4 numbers on the list"
        # Again: the list holds it once, and says so.
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, AddOptOutModal))
        await pilot.press(*"447700900123", "enter")
        await wait_for(pilot, toast_with(pilot, "447700900123 was on the opt-out list already"))
    assert stored(rig)["447700900123"] == ("hand", "called [us]")
    assert len(stored(rig)) == 4


async def test_a_bad_number_shows_the_services_error_beside_its_field(rig: Rig) -> None:
    with pytest.raises(InvalidInput) as refused:
        await rig.service.optouts.add("0151 2345678")
    expected = "\n".join(refused.value.messages("phone", "label"))
    assert expected
    async with rig.app().run_test(size=SIZE) as pilot:
        await open_optouts(pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, AddOptOutModal))
        modal = pilot.app.screen
        await pilot.press(*"0151 2345678", "enter")
        await wait_for(pilot, lambda: field_error(pilot, "phone") != "")
        assert field_error(pilot, "phone") == expected
        assert modal.query_one("#optout-phone", Input).has_class("-invalid")
        assert field_error(pilot, "country") == ""
        assert toasts(pilot) == []
        # With its country it is taken.
        modal.query_one("#optout-country", Input).focus()
        await pilot.press(*"DE", "enter")
        await wait_for(pilot, toast_with(pilot, "491512345678 added to the opt-out list"))
        await wait_for(pilot, lambda: keys(pilot) == ["491512345678"])
    assert list(stored(rig)) == ["491512345678"]


# -- removing ------------------------------------------------------------------------------


async def test_d_asks_then_removes_and_the_cursor_stays_in_its_row(rig: Rig) -> None:
    add_numbers(rig, *THREE)
    async with rig.app().run_test(size=SIZE) as pilot:
        await open_optouts(pilot)
        table(pilot).move_cursor(row=1)
        await pilot.pause(0.05)
        await pilot.press("D")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        question = shown(pilot.app.screen.query_one("#confirm-question", Static))
        assert "Take 5511987654321 off the opt-out list?" in question
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, OptOutsScreen))
        await pilot.pause(0.2)
        assert "5511987654321" in stored(rig)
        await pilot.press("ctrl+d")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        await pilot.press("y")
        await wait_for(pilot, toast_with(pilot, "5511987654321 removed from the opt-out list"))
        await wait_for(pilot, lambda: keys(pilot) == ["491522222222", "491511111111"])
        assert table(pilot).current_key == "491511111111"  # the next one moved up into it
        assert line(pilot, "count") == "2 numbers on the list"
    assert set(stored(rig)) == {"491522222222", "491511111111"}


async def test_a_number_removed_elsewhere_is_a_toast(rig: Rig) -> None:
    add_numbers(rig, *THREE)
    async with rig.app().run_test(size=SIZE) as pilot:
        await open_optouts(pilot)
        rig.store.remove_optout("491522222222")  # by the CLI, say
        await pilot.press("D", "y")
        await wait_for(
            pilot, toast_with(pilot, "cannot remove 491522222222: 491522222222 is not on the")
        )
        await wait_for(pilot, lambda: len(keys(pilot)) == 2)


# -- importing -----------------------------------------------------------------------------


async def test_i_imports_a_csv_file(rig: Rig, tmp_path: Path) -> None:
    add_numbers(rig, THREE[0])
    path = tmp_path / "stop.csv"
    path.write_text(
        "phone,reason\n+49 151 1111111,\n+44 7700 900123,asked [twice]\n"
        "+33 6 12 34 56 78,\n+44 7700 900123,\n",
        encoding="utf-8",
    )
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_optouts(pilot)
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ImportOptOutsModal))
        await pilot.press(*str(path), "enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, OptOutsScreen))
        await wait_for(
            pilot, toast_with(pilot, "added 2 numbers to the opt-out list (1 were on it already)")
        )
        await wait_for(pilot, toast_with(pilot, "duplicate 447700900123 on lines 3, 5: kept once"))
        await wait_for(pilot, lambda: len(keys(pilot)) == 3)
        assert line(pilot, "count") == "3 numbers on the list"
    assert stored(rig) == {
        "491511111111": ("reply", "STOP"),  # kept as it was
        "447700900123": ("import", "asked [twice]"),
        "33612345678": ("import", "stop.csv line 4"),
    }


async def test_a_refused_file_is_shown_beside_its_field_and_adds_nothing(
    rig: Rig, tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("phone\n+44 7700 900123\nnot a phone\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as refused:
        await rig.service.optouts.import_file(str(path))
    expected = "\n".join(refused.value.messages("path", "label"))
    assert "line 3" in expected
    async with rig.app().run_test(size=SIZE) as pilot:
        await open_optouts(pilot)
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ImportOptOutsModal))
        await pilot.press(*str(path), "enter")
        await wait_for(pilot, lambda: field_error(pilot, "path") != "")
        assert field_error(pilot, "path") == expected
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, OptOutsScreen))
        assert toasts(pilot) == []
    assert stored(rig) == {}


# -- pages ---------------------------------------------------------------------------------


async def test_pages_turn_at_the_edges_and_the_cursor_lands_where_it_should(rig: Rig) -> None:
    numbers = many(rig, 2 * PAGE_SIZE + 50)
    async with rig.app().run_test(size=SIZE) as pilot:
        screen = await open_optouts(pilot)
        t = table(pilot)
        assert keys(pilot) == numbers[:PAGE_SIZE]  # one page held, never the whole list
        assert line(pilot, "count") == (
            "250 numbers on the list · rows 1–100 · page 1/3 · PgUp/PgDn"
        )
        t.move_cursor(row=PAGE_SIZE - 1)
        await pilot.pause(0.05)
        await pilot.press("down")  # past the last row: the next page, on its first
        await wait_for(pilot, lambda: t.current_key == numbers[PAGE_SIZE])
        assert keys(pilot) == numbers[PAGE_SIZE : 2 * PAGE_SIZE]
        assert "rows 101–200 · page 2/3" in line(pilot, "count")
        await pilot.press("up")  # back: the previous page, on its last
        await wait_for(pilot, lambda: t.current_key == numbers[PAGE_SIZE - 1])
        assert screen.page == 0
        await pilot.press("G")  # the last number of all
        await wait_for(pilot, lambda: t.current_key == numbers[-1])
        assert keys(pilot) == numbers[2 * PAGE_SIZE :]
        await pilot.press("pageup")
        await wait_for(pilot, lambda: t.current_key == numbers[PAGE_SIZE])
        await pilot.press("g")
        await wait_for(pilot, lambda: t.current_key == numbers[0])
        # A search pages the same way, from its first page.
        await pilot.press("slash", *"4915000001")  # 491500000100 .. 491500000199
        await wait_for(pilot, lambda: line(pilot, "count").startswith("100 numbers match"))
        assert t.current_key == numbers[100]


async def test_removing_the_last_number_of_the_last_page_shows_the_page_before(
    rig: Rig,
) -> None:
    numbers = many(rig, PAGE_SIZE + 1)
    async with rig.app().run_test(size=SIZE) as pilot:
        screen = await open_optouts(pilot)
        t = table(pilot)
        await pilot.press("G")
        await wait_for(pilot, lambda: keys(pilot) == [numbers[-1]])
        await pilot.press("D", "y")
        await wait_for(pilot, lambda: keys(pilot) == numbers[:PAGE_SIZE])
        assert screen.page == 0
        assert line(pilot, "count") == "100 numbers on the list"
        assert t.current_key is not None


async def test_a_reply_that_opts_out_shows_up_while_the_list_is_open(rig: Rig) -> None:
    add_numbers(rig, *THREE)
    async with rig.app().run_test(size=SIZE) as pilot:
        await open_optouts(pilot)
        rig.store.add_optouts([OptOutEntry("491533333333", "reply", "Stop!", campaign_id=1)])
        await wait_for(pilot, lambda: keys(pilot)[:1] == ["491533333333"], timeout=6)
        assert line(pilot, "count") == "4 numbers on the list"


async def test_numbers_and_reasons_are_never_markup_nor_control_characters(rig: Rig) -> None:
    add_numbers(rig, OptOutEntry("491511111111", "reply", "[bold red]STOP[/]\x1b[2J", 2))
    async with rig.app().run_test(size=(120, 30)) as pilot:
        await open_optouts(pilot)
        cell = str(table(pilot).get_cell("491511111111", "reason"))
        assert cell.startswith("[bold red]STOP[/]") and "\x1b" not in cell
        assert "[bold red]STOP[/]" in line(pilot, "row") and "\x1b" not in line(pilot, "row")


# -- how it looks --------------------------------------------------------------------------


def snapshot_rig(tmp_path: Path) -> Rig:
    rig = make_rig(tmp_path)
    add_numbers(
        rig,
        OptOutEntry("491501234567", "import", "customers-2025.csv line 14"),
        OptOutEntry("5511987654321", "hand", "asked by phone [VIP], call centre ticket 4417"),
        OptOutEntry("447700900123", "reply", "STOP", campaign_id=12),
        OptOutEntry("33612345678", "reply", "Arrêt, merci de ne plus m'écrire", campaign_id=12),
        OptOutEntry("491511111111", "reply", "Stop!", campaign_id=3),
        minutes_apart=47,
    )
    with rig.store.write() as conn:  # one of last year
        conn.execute(
            sa.update(OPT)
            .where(OPT.c.phone == "491501234567")
            .values(added_at=FROZEN - timedelta(days=400))
        )
    return rig


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_snapshot_of_the_optout_list(
    size: tuple[int, int],
    snap_compare: Any,
    tmp_path: Path,
    utc: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = snapshot_rig(tmp_path)
    monkeypatch.setattr(format, "now", lambda: FROZEN + timedelta(hours=3))

    async def listed(pilot: Pilot) -> None:
        await open_optouts(pilot)
        table(pilot).move_cursor(row=3)
        await pilot.pause(0.2)
        await steady_cursors(pilot)

    assert snap_compare(rig.app(session_interval=3600), terminal_size=size, run_before=listed)
