"""`T`: message templates: create, edit and delete them, with the message as WhatsApp shows it.

The rules (an empty text, a broken placeholder) are the service's `check_template`, the one
the CLI's `template add` meets too. Placeholders other than {name} are allowed, since the
columns come from the contact list a campaign is sent to: they are shown as warnings
("needs a column city in the contact list"), and creating a campaign checks them against
the list.
"""

from __future__ import annotations

import logging

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static, TextArea

from waha_tui.errors import InvalidInput, UserError
from waha_tui.logs import caught
from waha_tui.models import Template
from waha_tui.printable import printable
from waha_tui.render import NAME, placeholders, render
from waha_tui.service import CampaignService, TemplateCheck, check_template
from waha_tui.tui.screens.confirm import ConfirmationModal
from waha_tui.tui.screens.sessions import one_line
from waha_tui.tui.whatsapp_markdown import whatsapp_text
from waha_tui.tui.widgets.form import Field
from waha_tui.tui.widgets.keyed_table import KeyedTable
from waha_tui.variants import CampaignTexts

log = logging.getLogger(__name__)
SAMPLE_NAME = "Ana"
TEMPLATE_COLUMNS = [("#", "pos"), ("Template", "name"), ("Placeholders", "placeholders")]
FORMAT_HINT = "*bold* _italic_ ~strike~ ```mono``` · {name} and list columns, e.g. {city}"


def parse_sample(typed: str) -> dict[str, str]:
    """ "city=Lisbon; code=7" -> {"city": "Lisbon", "code": "7"} (keys as placeholders match)."""
    values: dict[str, str] = {}
    for part in typed.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            values[key.strip().lower()] = value.strip()
    return values


def sample_values(text: str, typed: str = "") -> dict[str, str]:
    """A sample contact for the preview: "Ana", and <column> for each other placeholder,
    unless typed as key=value."""
    given = parse_sample(typed)
    values = {NAME: given.get(NAME) or SAMPLE_NAME}
    for key in placeholders(text):
        if key != NAME:
            values[key] = given.get(key, f"<{key}>")
    return values


def sample_line(values: dict[str, str]) -> Text:
    line = Text("Sample contact: ", style="dim")
    line.append(printable(" · ".join(f"{key}={value}" for key, value in values.items())))
    return line


def preview(text: str, values: dict[str, str]) -> Text:
    """The message one contact gets, as WhatsApp shows it; with choices, one of the texts
    and how many there are (each recipient of a campaign gets one)."""
    variables = {k: v for k, v in values.items() if k != NAME}
    texts = CampaignTexts.of(text, [])
    if not texts.varied:
        rendered = render(text, variables, name=values[NAME], default_name="there")
        return whatsapp_text(printable(rendered, multiline=True))
    [rendered] = texts.samples(1, variables, name=values[NAME], default_name="there")
    shown = Text(f"One of {texts.count()}:\n", style="dim")
    return shown.append_text(whatsapp_text(printable(rendered, multiline=True)))


def issues_text(check: TemplateCheck) -> Text:
    lines = [Text(f"✗ {printable(e)}", style="bold red") for e in check.errors]
    lines += [Text(f"! {printable(w)}", style="yellow") for w in check.warnings]
    return Text("\n").join(lines)


class TemplateTable(KeyedTable):
    BINDINGS = [
        Binding("enter", "select_cursor", "Edit"),
        Binding("j", "cursor_down", show=False),
        Binding("k", "cursor_up", show=False),
    ]


class TemplateEditor(Screen[str | None]):
    """A new template, or a saved one's text (its name stays: campaigns are made by name)."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("escape", "close", "Cancel"),
    ]

    def __init__(self, service: CampaignService, template: Template | None = None) -> None:
        super().__init__()
        self.service = service
        self.template = template
        self.saving = False

    @property
    def original_text(self) -> str:
        return self.template.text if self.template else ""

    def compose(self) -> ComposeResult:
        title = (
            Text(f"Edit template '{printable(self.template.name)}'", style="bold")
            if self.template
            else Text("New template", style="bold")
        )
        yield Static(title, id="editor-title")
        with VerticalScroll(id="editor-form"):
            name = Input(
                value=self.template.name if self.template else "",
                placeholder="e.g. welcome",
                id="template-name",
                compact=True,
                disabled=self.template is not None,
            )
            yield Field("Name", name, id="template-name-field")
            text = TextArea(
                self.original_text, id="template-text", soft_wrap=True, show_line_numbers=False
            )
            yield Field("Text", text, hint=FORMAT_HINT, id="template-text-field")
            sample = Input(
                placeholder="values for the preview, e.g. city=Lisbon; name=Bo",
                id="template-sample",
                compact=True,
            )
            yield Field("Sample", sample, id="template-sample-field")
            yield Static(id="editor-issues")
            with Vertical(id="editor-preview-box"):
                yield Static(id="editor-sample")
                yield Static(id="editor-preview")
        yield Footer()

    def on_mount(self) -> None:
        box = self.query_one("#editor-preview-box")
        box.border_title = "Preview"
        if self.template:
            self.query_one("#template-text", TextArea).focus()
        else:
            self.query_one("#template-name", Input).focus()
        self.update_preview()

    @property
    def text(self) -> str:
        return self.query_one("#template-text", TextArea).text

    @on(TextArea.Changed, "#template-text")
    @on(Input.Changed, "#template-sample")
    def update_preview(self) -> None:
        text = self.text
        check = check_template(text)
        issues = self.query_one("#editor-issues", Static)
        issues.update(issues_text(check))
        issues.display = bool(check.errors or check.warnings)
        values = sample_values(text, self.query_one("#template-sample", Input).value)
        self.query_one("#editor-sample", Static).update(sample_line(values))
        self.query_one("#editor-preview", Static).update(preview(text, values))

    @on(Input.Submitted, "#template-name")
    def _name_done(self) -> None:
        self.query_one("#template-text", TextArea).focus()

    def action_save(self) -> None:
        if self.saving:
            return
        self.saving = True
        self.run_worker(self._save(), group="template", exit_on_error=False)

    async def _save(self) -> None:
        name = self.query_one("#template-name", Input).value.strip()
        text = self.text
        try:
            if self.template is None:
                await self.service.add_template(name, text)
            else:
                await self.service.update_template(self.template.name, text)
        except InvalidInput as exc:
            # Beside the field the service names, every one at once.
            for field in ("name", "text"):
                self.query_one(f"#template-{field}-field", Field).set_error(
                    "\n".join(exc.messages(field, "label"))
                )
            return
        except Exception as exc:
            caught(log, exc, "saving a template")
            self.notify(one_line(exc), severity="error", markup=False, timeout=10)
            return
        finally:
            self.saving = False
        saved = self.template.name if self.template else name
        warnings = check_template(text).warnings
        note = f" · {'; '.join(warnings)}" if warnings else ""
        self.notify(f"saved template '{saved}'{note}", markup=False)
        self.dismiss(saved)

    def action_close(self) -> None:
        name = self.query_one("#template-name", Input).value.strip()
        edited = self.text != self.original_text or (self.template is None and bool(name))
        if not edited:
            self.dismiss(None)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.dismiss(None)

        self.app.push_screen(
            ConfirmationModal(
                "Discard the changes to this template?", yes="Discard", no="Keep editing"
            ),
            answered,
        )


class TemplatesScreen(Screen[None]):
    BINDINGS = [
        Binding("n", "new", "New"),
        Binding("e", "edit", "Edit", show=False),  # enter shows in the footer
        Binding("d", "delete", "Delete"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, service: CampaignService) -> None:
        super().__init__()
        self.service = service
        self.templates: dict[str, Template] = {}
        self.loaded = False
        self._select: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text("Templates", style="bold"), id="templates-title")
        with Horizontal(id="templates-body"):
            yield TemplateTable(TEMPLATE_COLUMNS, id="templates")
            with VerticalScroll(id="template-preview-box"):
                yield Static(id="template-sample")
                yield Static(id="template-preview")
                yield Static(id="template-issues")
        yield Footer()

    async def on_mount(self) -> None:
        self.query_one("#template-preview-box").border_title = "Preview"
        self.query_one("#templates", KeyedTable).focus()
        await self.reload()

    async def reload(self) -> None:
        try:
            found = await self.service.templates()
        except UserError as exc:
            self.notify(one_line(exc), severity="error", markup=False)
            return
        self.templates = {t.name: t for t in found}
        self.loaded = True
        table = self.query_one("#templates", KeyedTable)
        table.sync(
            (
                t.name,
                (
                    str(pos),
                    Text(printable(t.name)),
                    Text(printable(" ".join(f"{{{k}}}" for k in placeholders(t.text)))),
                ),
            )
            for pos, t in enumerate(found, 1)
        )
        if self._select in self.templates:
            table.move_cursor(row=table.get_row_index(self._select), animate=False)
            self._select = None
        title = Text("Templates", style="bold")
        title.append(f"  {len(found)}")
        self.query_one("#templates-title", Static).update(title)
        self.show_preview()

    def current(self) -> Template | None:
        key = self.query_one("#templates", KeyedTable).current_key
        return self.templates.get(key) if key else None

    @on(DataTable.RowHighlighted, "#templates")
    def show_preview(self) -> None:
        t = self.current()
        sample = self.query_one("#template-sample", Static)
        shown = self.query_one("#template-preview", Static)
        issues = self.query_one("#template-issues", Static)
        if t is None:
            sample.update("")
            shown.update(
                Text("No templates yet. Press n to write one.") if self.loaded else Text("")
            )
            issues.update("")
        else:
            values = sample_values(t.text)
            sample.update(sample_line(values))
            shown.update(preview(t.text, values))
            issues.update(issues_text(check_template(t.text)))
        self.refresh_bindings()

    @on(DataTable.RowSelected, "#templates")
    def _row_chosen(self) -> None:
        self.action_edit()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("edit", "delete"):
            return self.current() is not None
        return True

    def _open(self, template: Template | None) -> None:
        def saved(name: str | None) -> None:
            if name:
                self._select = name
                self.run_worker(self.reload(), group="templates", exit_on_error=False)

        self.app.push_screen(TemplateEditor(self.service, template), saved)

    def action_new(self) -> None:
        self._open(None)

    def action_edit(self) -> None:
        t = self.current()
        if t is not None:
            self._open(t)

    def action_delete(self) -> None:
        t = self.current()
        if t is None:
            return
        name = t.name

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._delete(name), group="templates", exit_on_error=False)

        question = (
            f"Delete template '{name}'? Campaigns created from it keep their own copy of the "
            "text and go on unaffected. This cannot be undone."
        )
        self.app.push_screen(ConfirmationModal(question, yes="Delete it", no="Keep it"), answered)

    async def _delete(self, name: str) -> None:
        try:
            await self.service.delete_template(name)
        except Exception as exc:
            caught(log, exc, f"deleting template '{name}'")
            self.notify(
                f"cannot delete template '{name}': {one_line(exc)}", severity="error", markup=False
            )
        else:
            self.notify(f"deleted template '{name}'", markup=False)
        await self.reload()

    def action_back(self) -> None:
        self.app.pop_screen()
