"""The contact lists screen (L): the real app, the simulator, a real SQLite file."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static
from typer.testing import CliRunner

from tests.test_sessions_screen import footer_keys, toast_with, toasts
from tests.test_templates_screen import steady_cursors
from tests.tui_helpers import FROZEN, SIZE_IDS, SIZES, Rig, make_rig, wait_for
from waha_tui.cli import app as cli_app
from waha_tui.errors import FIELD_NAMES
from waha_tui.models import ContactList
from waha_tui.service import CampaignDraft
from waha_tui.tui.screens.confirm import ConfirmationModal
from waha_tui.tui.screens.contacts import ContactListsScreen, ImportModal, ListContactsScreen
from waha_tui.tui.screens.main import MainScreen
from waha_tui.tui.widgets.form import Field
from waha_tui.tui.widgets.keyed_table import KeyedTable

PEOPLE = "phone,name,city\n+49 151 2345678,Ana,Lisbon\n+491512345679,,Porto\n"


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def db_rows(rig: Rig) -> dict[str, list[Any]]:
    with sqlite3.connect(rig.store.path) as conn:
        return {
            t: conn.execute(f"SELECT * FROM {t}").fetchall() for t in ("contact_list", "contact")
        }


async def cli_error(tmp_path: Path, *args: str, setup: Sequence[list[str]] = ()) -> str:
    """What `waha-tui contacts import ...` says, on a database of its own (in a thread:
    the CLI runs its own event loop)."""
    return await asyncio.to_thread(_cli_error, tmp_path, list(args), list(setup))


def _cli_error(tmp_path: Path, args: list[str], setup: list[list[str]]) -> str:
    runner = CliRunner()
    env = {"WAHA_TUI_DB": str(tmp_path / "cli.db"), "WAHA_URL": "http://127.0.0.1:9"}
    for before in setup:
        assert runner.invoke(cli_app, before, env=env).exit_code == 0
    result = runner.invoke(cli_app, ["contacts", "import", *args], env=env)
    assert result.exit_code == 1, result.stdout
    line = result.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line
    return line.removeprefix("error: ")


def lists_table(pilot: Pilot) -> KeyedTable:
    return lists_screen(pilot).query_one("#lists", KeyedTable)


def lists_screen(pilot: Pilot) -> ContactListsScreen:
    return next(s for s in pilot.app.screen_stack if isinstance(s, ContactListsScreen))


def row(pilot: Pilot, name: str) -> list[str]:
    return [str(cell) for cell in lists_table(pilot).get_row(name)]


async def open_lists(pilot: Pilot) -> ContactListsScreen:
    await pilot.press("L")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ContactListsScreen))
    await wait_for(pilot, lambda: lists_screen(pilot).loaded)
    return lists_screen(pilot)


async def open_import(pilot: Pilot) -> ImportModal:
    await pilot.press("i")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ImportModal))
    modal = pilot.app.screen
    assert isinstance(modal, ImportModal)
    return modal


async def fill_and_submit(pilot: Pilot, path: str, name: str, country: str = "") -> None:
    """Typed as the operator types: the path, tab, the name, tab, the country, enter."""
    await pilot.press(*path, "tab", *name, "tab", *country, "enter")


def field_error(pilot: Pilot, field: str) -> str:
    return pilot.app.screen.query_one(f"#import-{field}-field", Field).error


async def select(pilot: Pilot, name: str) -> None:
    table = lists_table(pilot)
    await wait_for(pilot, lambda: name in [k.value for k in table.rows])
    table.move_cursor(row=table.get_row_index(name))
    await pilot.pause(0.05)


# -- the list ----------------------------------------------------------------------------


async def test_l_shows_the_lists_with_their_counts_and_esc_goes_back(
    rig: Rig, tmp_path: Path
) -> None:
    await rig.service.import_contacts(write(tmp_path / "a.csv", PEOPLE), "customers")
    await rig.service.import_contacts(write(tmp_path / "b.csv", "phone\n+4930123456\n"), "berlin")
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_lists(pilot)
        assert [k.value for k in lists_table(pilot).rows] == ["berlin", "customers"]
        assert row(pilot, "berlin")[:3] == ["1", "berlin", "1"]
        assert row(pilot, "customers")[:3] == ["2", "customers", "2"]
        assert footer_keys(pilot) == {"enter", "i", "d", "escape"}
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MainScreen))


async def test_no_lists_says_how_to_import_one(rig: Rig) -> None:
    async with rig.app().run_test(size=(100, 30)) as pilot:
        screen = await open_lists(pilot)
        info = str(screen.query_one("#lists-info", Static).render())
        assert "No contact lists yet. Press i to import a CSV file." in info
        assert footer_keys(pilot) == {"enter", "i", "escape"}  # nothing to delete
        await pilot.press("d")
        await pilot.pause(0.2)
        assert isinstance(pilot.app.screen, ContactListsScreen)


# -- importing ---------------------------------------------------------------------------


async def test_i_imports_a_csv_and_shows_the_new_list(rig: Rig, tmp_path: Path) -> None:
    path = write(tmp_path / "people.csv", PEOPLE + "+49 151 2345678,Again,X\n")
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_lists(pilot)
        await open_import(pilot)
        await fill_and_submit(pilot, path, "customers")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ContactListsScreen))
        await wait_for(pilot, toast_with(pilot, "imported 2 contacts into list 'customers'"))
        # The duplicate is reported with the CLI's own words.
        await wait_for(pilot, toast_with(pilot, "duplicate 491512345678 on lines 2, 4: kept once"))
        await wait_for(pilot, lambda: lists_table(pilot).current_key == "customers")
        assert row(pilot, "customers")[2] == "2"
    contacts = rig.store.list_contacts("customers")
    assert [(c.phone, c.name, c.variables) for c in contacts] == [
        ("491512345678", "Ana", {"city": "Lisbon"}),
        ("491512345679", None, {"city": "Porto"}),
    ]
    assert all(n.markup is False for n in pilot.app._notifications)


async def test_a_country_reads_national_numbers(rig: Rig, tmp_path: Path) -> None:
    path = write(tmp_path / "de.csv", "phone\n030 1234567\n")
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_lists(pilot)
        await open_import(pilot)
        await fill_and_submit(pilot, path, "berlin", "de")
        await wait_for(pilot, toast_with(pilot, "imported 1 contacts into list 'berlin'"))
    assert [c.phone for c in rig.store.list_contacts("berlin")] == ["49301234567"]


@pytest.mark.parametrize(
    ("csv", "name", "country", "field"),
    [
        ("phone,name\n+49 151 2345678,Ana\nnot a phone,Bo\n", "x", "", "path"),
        ("name,city\nAna,Lisbon\n", "x", "", "path"),
        ("phone\n", "x", "", "path"),
        ('phone,name\n+491512345678,"Ana\n', "x", "", "path"),
        ("phone\n030 1234567\n", "x", "", "path"),  # national, and no country given
        ("phone\n030 1234567\n", "x", "Germany", "country"),
        (None, "x", "", "path"),  # no such file
        (PEOPLE, "", "", "name"),
        (PEOPLE, "taken", "", "name"),
    ],
    ids=[
        "bad-phone",
        "no-phone-column",
        "header-only",
        "open-quote",
        "national",
        "bad-country",
        "missing-file",
        "no-name",
        "name-taken",
    ],
)
async def test_an_import_the_cli_refuses_shows_the_same_error_and_writes_nothing(
    rig: Rig, tmp_path: Path, csv: str | None, name: str, country: str, field: str
) -> None:
    path = str(tmp_path / "missing.csv") if csv is None else write(tmp_path / "in.csv", csv)
    taken = write(tmp_path / "taken.csv", "phone\n+4930123456\n")
    await rig.service.import_contacts(taken, "taken")
    args = [path, "--list", name] + (["--country", country] if country else [])
    said = await cli_error(
        tmp_path, *args, setup=[["contacts", "import", taken, "--list", "taken"]]
    )
    # The same words, but for the fields it names: the CLI says the flag, the form the label.
    expected = said
    for name_of in FIELD_NAMES.values():
        expected = expected.replace(name_of.flag, name_of.label)
    before = db_rows(rig)
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_lists(pilot)
        modal = await open_import(pilot)
        await fill_and_submit(pilot, path, name, country)
        await wait_for(pilot, lambda: field_error(pilot, field) != "")
        assert field_error(pilot, field) == expected
        assert "--" not in expected
        assert modal.query_one(f"#import-{field}", Input).has_class("-invalid")
        shown = str(modal.query_one(f"#import-{field}-field .field-error", Static).render())
        assert shown == expected
        others = {"path", "name", "country"} - {field}
        assert all(field_error(pilot, other) == "" for other in others)
        assert isinstance(pilot.app.screen, ImportModal)  # the form stays for a fix
        # Editing the field clears its error.
        modal.query_one(f"#import-{field}", Input).focus()
        await pilot.press("z")
        await wait_for(pilot, lambda: field_error(pilot, field) == "")
        assert not modal.query_one(f"#import-{field}", Input).has_class("-invalid")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ContactListsScreen))
        assert [k.value for k in lists_table(pilot).rows] == ["taken"]
        assert toasts(pilot) == []
    assert db_rows(rig) == before


# -- a list's contacts -------------------------------------------------------------------


async def test_enter_shows_the_contacts_of_a_list(rig: Rig, tmp_path: Path) -> None:
    csv = "phone,name,city,code\n+491512345678,Ana,Lisbon,A1\n+491512345679,,Porto,\n"
    await rig.service.import_contacts(write(tmp_path / "a.csv", csv), "customers")
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_lists(pilot)
        await select(pilot, "customers")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ListContactsScreen))
        screen = pilot.app.screen
        table = screen.query_one("#contacts", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(2)]
        assert rows == [
            ["1", "491512345678", "Ana", "city=Lisbon, code=A1"],
            ["2", "491512345679", "", "city=Porto, code="],
        ]
        title = str(screen.query_one("#contacts-title", Static).render())
        assert "List 'customers'  2 contacts" in title
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ContactListsScreen))


# -- deleting ----------------------------------------------------------------------------


async def test_d_asks_then_deletes_a_list_and_campaigns_from_it_keep_their_recipients(
    rig: Rig, tmp_path: Path
) -> None:
    await rig.service.import_contacts(write(tmp_path / "a.csv", PEOPLE), "customers")
    await rig.service.import_contacts(write(tmp_path / "b.csv", "phone\n+4930123456\n"), "berlin")
    cid = await rig.service.create_campaign(
        CampaignDraft(name="From it", message="Hi {name}", list_name="customers")
    )
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_lists(pilot)
        await select(pilot, "customers")
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        question = str(pilot.app.screen.query_one("#confirm-question", Static).render())
        assert "Delete contact list 'customers' and its 2 contacts?" in question
        assert "Campaigns created from it keep their own copy of its recipients" in question
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ContactListsScreen))
        await pilot.pause(0.2)
        assert [x.name for x in rig.store.lists()] == ["berlin", "customers"]
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        await pilot.press("y")
        await wait_for(pilot, toast_with(pilot, "deleted list 'customers'"))
        await wait_for(pilot, lambda: [k.value for k in lists_table(pilot).rows] == ["berlin"])
    assert [x.name for x in rig.store.lists()] == ["berlin"]
    assert len(rig.store.recipients(cid)) == 2
    assert rig.store.get_campaign(cid).list_name == "customers"


async def test_a_list_deleted_elsewhere_is_a_toast(rig: Rig, tmp_path: Path) -> None:
    await rig.service.import_contacts(write(tmp_path / "a.csv", PEOPLE), "customers")
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_lists(pilot)
        await select(pilot, "customers")
        rig.store.delete_list("customers")  # by the CLI, say
        await pilot.press("d", "y")
        await wait_for(pilot, toast_with(pilot, "cannot delete list 'customers': no contact list"))
        await wait_for(pilot, lambda: lists_table(pilot).row_count == 0)


async def test_list_names_are_never_read_as_markup(rig: Rig, tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "phone,name\n+491512345678,[bold]Ana[/bold]\n")
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_lists(pilot)
        await open_import(pilot)
        await fill_and_submit(pilot, path, "[red]x")
        await wait_for(pilot, toast_with(pilot, "imported 1 contacts into list '[red]x'"))
        await wait_for(pilot, lambda: "[red]x" in [k.value for k in lists_table(pilot).rows])
        assert row(pilot, "[red]x")[1] == "[red]x"
        await select(pilot, "[red]x")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ListContactsScreen))
        table = pilot.app.screen.query_one("#contacts", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        assert str(table.get_row_at(0)[2]) == "[bold]Ana[/bold]"


async def test_every_wrong_field_of_an_import_is_marked_at_once(rig: Rig, tmp_path: Path) -> None:
    taken = write(tmp_path / "taken.csv", "phone\n+4930123456\n")
    await rig.service.import_contacts(taken, "taken")
    missing = str(tmp_path / "missing.csv")
    before = db_rows(rig)
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_lists(pilot)
        await open_import(pilot)
        await fill_and_submit(pilot, missing, "taken", "Germany")
        await wait_for(pilot, lambda: field_error(pilot, "name") != "")
        assert field_error(pilot, "name") == (
            "a contact list named 'taken' already exists: delete it or pick another name"
        )
        assert field_error(pilot, "country").startswith("unknown country code 'Germany'")
        # The file is not read with a country that is refused: its lines would all fail.
        assert field_error(pilot, "path") == ""
        await pilot.press(*["backspace"] * 7, "enter")  # the country cleared: now the file is read
        await wait_for(pilot, lambda: field_error(pilot, "path") != "")
        assert field_error(pilot, "path") == f"{missing}: no such file"
        assert field_error(pilot, "name").startswith("a contact list named 'taken'")
        assert field_error(pilot, "country") == ""
        assert toasts(pilot) == []
    assert db_rows(rig) == before


# -- snapshots ---------------------------------------------------------------------------


def snapshot_rig(tmp_path: Path) -> Rig:
    rig = make_rig(tmp_path)
    customers = write(
        tmp_path / "customers.csv",
        "phone,name,city,code\n+491512345678,Ana,Lisbon,A1\n+491512345679,,Porto,B2\n"
        "+5511987654321,Bruno [VIP],São Paulo,C3\n",
    )
    berlin = write(tmp_path / "b.csv", "phone\n+4930123456\n")

    async def setup() -> None:
        await rig.service.import_contacts(customers, "customers")
        await rig.service.import_contacts(berlin, "berlin")

    asyncio.run(setup())
    with rig.store.write() as conn:
        conn.execute(sa.update(ContactList).values(created_at=FROZEN))  # type: ignore[arg-type]
    return rig


async def lists_shown(pilot: Pilot) -> None:
    await open_lists(pilot)
    await select(pilot, "customers")
    await pilot.pause(0.2)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_snapshot_of_the_contact_lists(
    size: tuple[int, int], snap_compare, tmp_path: Path, utc: None
) -> None:
    rig = snapshot_rig(tmp_path)
    assert snap_compare(rig.app(session_interval=3600), terminal_size=size, run_before=lists_shown)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_snapshot_of_a_lists_contacts(
    size: tuple[int, int], snap_compare, tmp_path: Path, utc: None
) -> None:
    rig = snapshot_rig(tmp_path)

    async def contacts(pilot: Pilot) -> None:
        await lists_shown(pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ListContactsScreen))
        table = pilot.app.screen.query_one("#contacts", DataTable)
        await wait_for(pilot, lambda: table.row_count == 3)
        await pilot.pause(0.2)

    assert snap_compare(rig.app(session_interval=3600), terminal_size=size, run_before=contacts)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_snapshot_of_a_refused_import(
    size: tuple[int, int], snap_compare, tmp_path: Path, utc: None
) -> None:
    rig = snapshot_rig(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("phone,name\n+491512345678,Ana\nnot a phone,Bo\n", encoding="utf-8")

    async def refused(pilot: Pilot) -> None:
        await lists_shown(pilot)
        await open_import(pilot)
        # A relative path, so the message is the same wherever tmp_path is.
        os.chdir(tmp_path)
        await fill_and_submit(pilot, "bad.csv", "new list")
        await wait_for(pilot, lambda: field_error(pilot, "path") != "")
        await pilot.pause(0.2)
        await steady_cursors(pilot)

    cwd = os.getcwd()
    try:
        assert snap_compare(rig.app(session_interval=3600), terminal_size=size, run_before=refused)
    finally:
        os.chdir(cwd)
