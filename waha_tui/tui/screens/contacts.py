"""`L`: contact lists: import a CSV file, look at a list's contacts, delete a list.

Every rule is the service's (the CLI's `contacts import` and `delete-list` call the same
methods), so the form shows the CLI's own one-line errors, in the form's words (a field's
label, not its flag: errors.said), each beside the field the service names, all at once.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Static

from waha_tui.csv_import import ImportResult
from waha_tui.errors import FIELD_NAMES, InvalidInput, UserError
from waha_tui.logs import caught
from waha_tui.service import CampaignService, ListInfo, NewRecipient
from waha_tui.tui.format import local_time, shown
from waha_tui.tui.screens.confirm import ConfirmationModal
from waha_tui.tui.screens.sessions import one_line
from waha_tui.tui.widgets.form import Field
from waha_tui.tui.widgets.keyed_table import KeyedTable

log = logging.getLogger(__name__)
LIST_COLUMNS = [("#", "pos"), ("List", "name"), ("Contacts", "count"), ("Imported", "created")]
CONTACT_COLUMNS = [("#", "pos"), ("Phone", "phone"), ("Name", "name"), ("Variables", "variables")]
# The form's field for each field the service's import_contacts names.
IMPORT_FIELDS = {"path": "path", "list_name": "name", "country": "country"}
SHOWN_DUPLICATES = 5  # lines of duplicates in the toast; the rest are counted
MAX_SHOWN_CONTACTS = 5000  # rows of the contacts table; a longer list says how many more


@dataclass(frozen=True)
class Imported:
    list_name: str
    result: ImportResult


def duplicate_lines(duplicates: list[tuple[str, list[int]]]) -> list[str]:
    """The CLI's own lines about duplicate phones (number, its lines), for one toast."""
    lines = [
        f"duplicate {phone} on lines {', '.join(map(str, at))}: kept once"
        for phone, at in duplicates
    ]
    if len(lines) > SHOWN_DUPLICATES:
        more = len(lines) - SHOWN_DUPLICATES
        lines = [*lines[:SHOWN_DUPLICATES], f"… and {more} more duplicate phones"]
    return lines


def variables_cell(variables: dict[str, str]) -> Text:
    return shown(", ".join(f"{key}={value}" for key, value in variables.items()))


class ListTable(KeyedTable):
    BINDINGS = [
        Binding("enter", "select_cursor", "View"),
        Binding("j", "cursor_down", show=False),
        Binding("k", "cursor_up", show=False),
    ]


class ImportModal(ModalScreen[Imported | None]):
    """`i`: a CSV file, the name of the new list, and a country for national numbers."""

    BINDINGS = [Binding("escape", "close", "Cancel")]

    def __init__(self, service: CampaignService) -> None:
        super().__init__()
        self.service = service
        self.busy = False

    def compose(self) -> ComposeResult:
        with Vertical(id="import-box", classes="form-box"):
            yield Static("Import a CSV file as a contact list", classes="form-title")
            yield Field(
                "CSV file",
                Input(placeholder="path/to/contacts.csv", id="import-path", compact=True),
                id="import-path-field",
            )
            yield Field(
                FIELD_NAMES["list_name"].label,
                Input(placeholder="e.g. customers", id="import-name", compact=True),
                id="import-name-field",
            )
            yield Field(
                FIELD_NAMES["country"].label,
                Input(placeholder="optional, e.g. DE", id="import-country", compact=True),
                hint="for numbers written without +country code",
                id="import-country-field",
            )
            yield Static(
                "A header row with a phone column; name and any other columns are optional.",
                classes="form-hint",
            )
            yield Static("enter imports · tab next field · esc cancels", classes="form-hint")
        # Its own keys, over those of the screen behind, which do not work while it is open.
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#import-path", Input).focus()

    def value(self, field: str) -> str:
        return self.query_one(f"#import-{field}", Input).value

    def field(self, name: str) -> Field:
        return self.query_one(f"#import-{name}-field", Field)

    @on(Input.Submitted)
    def _submitted(self) -> None:
        if self.busy:
            return
        self.busy = True
        self.run_worker(self._import(), group="import", exit_on_error=False)

    async def _import(self) -> None:
        path = os.path.expanduser(self.value("path").strip())
        name = self.value("name")
        country = self.value("country").strip() or None
        try:
            _list_id, result = await self.service.import_contacts(path, name, country=country)
        except InvalidInput as exc:
            for service_field, field in IMPORT_FIELDS.items():
                self.field(field).set_error("\n".join(exc.messages(service_field, "label")))
            return
        except Exception as exc:
            caught(log, exc, f"importing {path}")
            self.notify(one_line(exc), severity="error", markup=False, timeout=10)
            return
        finally:
            self.busy = False
        self.dismiss(Imported(name.strip(), result))

    def action_close(self) -> None:
        self.dismiss(None)


class ListContactsScreen(Screen[None]):
    """`enter` on a list: its contacts, in file order."""

    BINDINGS = [Binding("escape", "back", "Back")]

    def __init__(self, service: CampaignService, list_name: str) -> None:
        super().__init__()
        self.service = service
        self.list_name = list_name
        self.contacts: list[NewRecipient] | None = None

    def compose(self) -> ComposeResult:
        yield Static(shown(f"List '{self.list_name}'", style="bold"), id="contacts-title")
        table: DataTable[object] = DataTable(cursor_type="row", id="contacts")
        yield table
        yield Footer()

    async def on_mount(self) -> None:
        table = self.query_one("#contacts", DataTable)
        for label, key in CONTACT_COLUMNS:
            table.add_column(label, key=key)
        table.focus()
        try:
            contacts = await self.service.list_contacts(self.list_name)
        except UserError as exc:
            self.notify(one_line(exc), severity="error", markup=False)
            return
        self.contacts = contacts
        table.add_rows(
            (str(i), shown(c.phone), shown(c.name), variables_cell(c.variables))
            for i, c in enumerate(contacts[:MAX_SHOWN_CONTACTS], 1)
        )
        title = shown(f"List '{self.list_name}'", style="bold")
        title.append(f"  {len(contacts)} contact{'s' if len(contacts) != 1 else ''}")
        if len(contacts) > MAX_SHOWN_CONTACTS:
            title.append(f", the first {MAX_SHOWN_CONTACTS} shown", style="yellow")
        self.query_one("#contacts-title", Static).update(title)

    def action_back(self) -> None:
        self.app.pop_screen()


class ContactListsScreen(Screen[None]):
    BINDINGS = [
        Binding("i", "import_csv", "Import CSV"),
        Binding("d", "delete", "Delete"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, service: CampaignService) -> None:
        super().__init__()
        self.service = service
        self.lists: dict[str, ListInfo] = {}
        self.loaded = False
        self._select: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text("Contact lists", style="bold"), id="lists-title")
        yield ListTable(LIST_COLUMNS, id="lists")
        yield Static(id="lists-info")
        yield Footer()

    async def on_mount(self) -> None:
        self.query_one("#lists", KeyedTable).focus()
        await self.reload()

    async def reload(self) -> None:
        try:
            found = await self.service.lists()
        except UserError as exc:
            self.notify(one_line(exc), severity="error", markup=False)
            return
        self.lists = {x.name: x for x in found}
        self.loaded = True
        table = self.query_one("#lists", KeyedTable)
        table.sync(
            (x.name, (str(pos), shown(x.name), str(x.contact_count), local_time(x.created_at)))
            for pos, x in enumerate(found, 1)
        )
        if self._select in self.lists:
            table.move_cursor(row=table.get_row_index(self._select), animate=False)
            self._select = None
        title = Text("Contact lists", style="bold")
        title.append(f"  {len(found)}")
        self.query_one("#lists-title", Static).update(title)
        self._show_info()
        self.refresh_bindings()

    def current(self) -> ListInfo | None:
        key = self.query_one("#lists", KeyedTable).current_key
        return self.lists.get(key) if key else None

    def _show_info(self) -> None:
        info = Text()
        if self.loaded and not self.lists:
            info.append("No contact lists yet. Press i to import a CSV file.")
        elif self.current() is not None:
            info.append("enter shows its contacts · d deletes it (campaigns keep their copy)")
        self.query_one("#lists-info", Static).update(info)

    @on(DataTable.RowHighlighted, "#lists")
    def _row_moved(self) -> None:
        self._show_info()
        self.refresh_bindings()

    @on(DataTable.RowSelected, "#lists")
    def _row_chosen(self) -> None:
        x = self.current()
        if x is not None:
            self.app.push_screen(ListContactsScreen(self.service, x.name))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "delete":
            return self.current() is not None
        return True

    def action_import_csv(self) -> None:
        def done(imported: Imported | None) -> None:
            if imported is not None:
                self._imported(imported)

        self.app.push_screen(ImportModal(self.service), done)

    def _imported(self, imported: Imported) -> None:
        count = len(imported.result.contacts)
        self.notify(f"imported {count} contacts into list '{imported.list_name}'", markup=False)
        duplicates = duplicate_lines(imported.result.duplicates)
        if duplicates:
            self.notify("\n".join(duplicates), severity="warning", markup=False, timeout=12)
        self._select = imported.list_name
        self.run_worker(self.reload(), group="lists", exit_on_error=False)

    def action_delete(self) -> None:
        x = self.current()
        if x is None:
            return
        name = x.name

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._delete(name), group="lists", exit_on_error=False)

        question = (
            f"Delete contact list '{name}' and its {x.contact_count} contacts? Campaigns "
            "created from it keep their own copy of its recipients and go on unaffected. "
            "This cannot be undone."
        )
        self.app.push_screen(ConfirmationModal(question, yes="Delete it", no="Keep it"), answered)

    async def _delete(self, name: str) -> None:
        try:
            await self.service.delete_list(name)
        except Exception as exc:
            caught(log, exc, f"deleting list '{name}'")
            self.notify(
                f"cannot delete list '{name}': {one_line(exc)}", severity="error", markup=False
            )
        else:
            self.notify(f"deleted list '{name}'", markup=False)
        await self.reload()

    def action_back(self) -> None:
        self.app.pop_screen()
