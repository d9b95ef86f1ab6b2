"""`N`: a new campaign from a contact list and a template (or a text), from the keyboard.

The form decides nothing itself: the service's `plan_campaign` checks the draft with every
rule of `waha-tui campaign create` (it is the same code), and `create_campaign` writes it.
The form only places each error beside the field the service names, all at once, previews
the first messages, and asks before anything is written.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import datetime

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.suggester import SuggestFromList
from textual.widgets import Checkbox, Footer, Input, Select, Static, TextArea

from waha_tui.errors import FIELD_NAMES, InvalidInput, UserError
from waha_tui.logs import caught
from waha_tui.models import utcnow
from waha_tui.pacing import DEFAULT_DELAY, SendWindow, local_zone, parse_delay
from waha_tui.printable import printable
from waha_tui.render import RenderError, render
from waha_tui.service import (
    CampaignDraft,
    CampaignPlan,
    CampaignService,
    NewRecipient,
    parse_when,
)
from waha_tui.sessions import SessionService
from waha_tui.spread import parse as parse_sessions
from waha_tui.spread import sessions_named
from waha_tui.tui.format import breaks_cell, local_time
from waha_tui.tui.screens.confirm import ConfirmationModal
from waha_tui.tui.screens.contacts import ContactListsScreen
from waha_tui.tui.screens.sessions import one_line, session_status_cell
from waha_tui.tui.screens.templates import FORMAT_HINT
from waha_tui.tui.whatsapp_markdown import whatsapp_text
from waha_tui.tui.widgets.form import Field
from waha_tui.variants import CampaignTexts

log = logging.getLogger(__name__)
DELAY_GUIDANCE = "WAHA advises a random 30–60 s between messages; shorter gets numbers banned"
PREVIEWED = 3  # messages shown before creating
NO_LISTS_HINT = "No contact lists yet: ctrl+l imports one from a CSV file (L on the main screen)"
NOW_WORDS = ("", "now")
CHECK_HINT = "a number not on WhatsApp is skipped; a lookup waits like a send"
# The form's field for each field the service names (CampaignDraft's attributes).
DRAFT_FIELDS = {
    "name": "name",
    "list_name": "list",
    "template": "template",
    "message": "text",
    "variants": "variants",
    "image": "image",
    "session": "session",
    "at": "when",
    "delay": "delay",
    "window": "window",
    "days": "days",
    "timezone": "timezone",
    "break_every": "break-every",
    "break_range": "break",
    "default_name": "default-name",
}
FIELDS = (
    "name",
    "list",
    "template",
    "text",
    "variants",
    "image",
    "session",
    "when",
    "delay",
    "window",
    "days",
    "timezone",
    "break-every",
    "break",
    "default-name",
)
WINDOW_HINT = "outside it, it waits; 22:00-06:00 runs across midnight"
BREAK_HINT = "WAHA advises sending in packages with long pauses between them"
VARIANTS_HINT = "optional: more texts, one per recipient; --- between two"
_SEPARATOR = re.compile(r"^[ \t]*---[ \t]*$", re.MULTILINE)


def split_variants(typed: str) -> list[str]:
    """The Variants box's texts: separated by lines of `---` (none when it is blank; an
    empty one between two separators is kept, so the service names it)."""
    if not typed.strip():
        return []
    return [block.strip("\n") for block in _SEPARATOR.split(typed)]


def when_hint(typed: str, now: datetime | None = None, *, upon: str = "it is created") -> Text:
    """What the Start field means, in local time and UTC (the store keeps UTC); `upon`:
    when a start now or in the past begins ("it is saved" in the edit form)."""
    if typed.strip().lower() in NOW_WORDS:
        return Text(f"starts as soon as {upon}")
    try:
        at = parse_when(typed)
    except UserError:
        return Text("a date and time, e.g. 2026-12-01 09:30, in local time", style="dim")
    local = at.astimezone()
    line = Text(f"starts {local:%Y-%m-%d %H:%M} {local.tzname() or ''}".rstrip())
    if local.utcoffset():
        line.append(f" ({at:%Y-%m-%d %H:%M} UTC)", style="dim")
    if at <= (now or utcnow()):
        line.append(f" · in the past: it starts as soon as {upon}", style="yellow")
    return line


def delay_hint(typed: str) -> Text:
    try:
        low, _high = parse_delay(typed)
    except UserError:
        return Text(DELAY_GUIDANCE)
    return Text(DELAY_GUIDANCE, style="bold yellow" if low < DEFAULT_DELAY[0] else "")


def preview_messages(
    text: str,
    contacts: list[NewRecipient],
    default_name: str,
    image: str | None = None,
    variants: Sequence[str] = (),
) -> Text:
    """The first messages as their contacts get them (WhatsApp formatting shown). With
    variants or choices, how many different texts, and the first contacts each with a
    different one of them (which one each gets is picked when the campaign is created)."""
    texts = CampaignTexts.of(text, variants)
    out = Text()
    positions: list[int] = []
    if texts.varied:
        count = texts.count()
        positions = texts.sample_positions(PREVIEWED)
        out.append(f"{count}", style="bold")
        out.append(
            ": each recipient gets one, picked when the campaign is created. Some of them:\n\n",
            style="dim",
        )
    for i, contact in enumerate(contacts[:PREVIEWED], 1):
        if i > 1:
            out.append("\n\n")
        out.append(f"{i}. +{contact.phone}", style="bold")
        out.append(f"  {printable(contact.name or '(no name)')}\n", style="dim")
        if image:
            out.append(f"[image {printable(image)}]\n", style="cyan")
        try:
            if positions:
                rendered = texts.pick(
                    0,
                    positions[(i - 1) % len(positions)],
                    contact.variables,
                    name=contact.name,
                    default_name=default_name,
                )
            else:
                rendered = render(
                    text, contact.variables, name=contact.name, default_name=default_name
                )
        except RenderError as exc:
            out.append(str(exc), style="red")
        else:
            out.append_text(whatsapp_text(printable(rendered, multiline=True)))
    return out


class NewCampaignScreen(Screen[int | None]):
    BINDINGS = [
        Binding("ctrl+s", "create", "Create", priority=True),
        # L types an L in a field: the form's way to the contact lists is ctrl+l.
        Binding("ctrl+l", "contact_lists", "Lists", priority=True),
        Binding("escape", "close", "Back"),
    ]

    def __init__(self, service: CampaignService, sessions: SessionService) -> None:
        super().__init__()
        self.service = service
        self.sessions = sessions
        self.templates: dict[str, str] = {}
        self.contacts: dict[str, list[NewRecipient]] = {}
        self.busy = False
        self.choices_loaded = False
        self.session_names: list[str] = []
        self.session_line: Text | None = None

    # -- layout ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(Text("New campaign", style="bold"), id="camp-title")
        with VerticalScroll(id="camp-form"):
            yield Field(
                FIELD_NAMES["name"].label,
                Input(placeholder="e.g. Spring sale", id="camp-name", compact=True),
                id="camp-name-field",
            )
            yield Field(
                "Contact list",
                Select[str]([], prompt="choose a list", id="camp-list", compact=True),
                id="camp-list-field",
            )
            yield Field(
                "Template",
                Select[str](
                    [], prompt="none: write the message below", id="camp-template", compact=True
                ),
                id="camp-template-field",
            )
            yield Field(
                "Message",
                TextArea(id="camp-text", soft_wrap=True),
                hint=FORMAT_HINT,
                id="camp-text-field",
            )
            yield Field(
                "Variants",
                TextArea(id="camp-variants", soft_wrap=True),
                hint=VARIANTS_HINT,
                id="camp-variants-field",
            )
            yield Field(
                FIELD_NAMES["image"].label,
                Input(
                    placeholder="optional: a .jpg, .png or .webp file",
                    id="camp-image",
                    compact=True,
                ),
                id="camp-image-field",
            )
            yield Field(
                FIELD_NAMES["session"].label,
                Input(value="default", id="camp-session", compact=True),
                hint="WAHA sessions: loading…",
                id="camp-session-field",
            )
            yield Field(
                FIELD_NAMES["at"].label,
                Input(
                    placeholder="now, or a date and time, e.g. 2026-12-01 09:30",
                    id="camp-when",
                    compact=True,
                ),
                hint=when_hint(""),
                id="camp-when-field",
            )
            yield Field(
                "Delay (s)",
                Input(value="30-60", placeholder="MIN-MAX", id="camp-delay", compact=True),
                hint=DELAY_GUIDANCE,
                id="camp-delay-field",
            )
            yield Field(
                FIELD_NAMES["window"].label,
                Input(placeholder="any time, or e.g. 09:00-20:00", id="camp-window", compact=True),
                hint=WINDOW_HINT,
                id="camp-window-field",
            )
            yield Field(
                FIELD_NAMES["days"].label,
                Input(
                    placeholder="every day, or mon-fri, mon,wed,fri", id="camp-days", compact=True
                ),
                id="camp-days-field",
            )
            zone = local_zone()
            yield Field(
                FIELD_NAMES["timezone"].label,
                Input(
                    value=zone or "",
                    placeholder="e.g. Europe/Berlin",
                    id="camp-timezone",
                    compact=True,
                ),
                hint="" if zone else "this machine's zone cannot be known: type one",
                id="camp-timezone-field",
            )
            yield Field(
                FIELD_NAMES["break_every"].label,
                Input(placeholder="none, or N messages", id="camp-break-every", compact=True),
                hint=BREAK_HINT,
                id="camp-break-every-field",
            )
            yield Field(
                FIELD_NAMES["break_range"].label,
                Input(placeholder="MIN-MAX, e.g. 600-1200", id="camp-break", compact=True),
                id="camp-break-field",
            )
            yield Field(
                "Default name",
                Input(value="there", id="camp-default-name", compact=True),
                hint="{name} for contacts without a name",
                id="camp-default-name-field",
            )
            yield Field(
                "Numbers",
                Checkbox(FIELD_NAMES["check_numbers"].label, id="camp-check", compact=True),
                hint=CHECK_HINT,
                id="camp-check-field",
            )
            yield Static(id="camp-summary")
            with Vertical(id="camp-preview-box"):
                yield Static(id="camp-preview")
        yield Footer()

    async def on_mount(self) -> None:
        self.query_one("#camp-preview-box").border_title = f"Preview: the first {PREVIEWED}"
        self.query_one("#camp-name", Input).focus()
        await self.load_choices()
        self.run_worker(self.load_sessions(), group="camp-sessions", exit_on_error=False)

    async def on_screen_resume(self) -> None:
        # Lists or templates may have changed behind it (the palette opens those screens).
        if self.choices_loaded:
            self.contacts.clear()
            await self.load_choices()

    # -- choices -----------------------------------------------------------------------

    async def load_choices(self) -> None:
        try:
            lists = await self.service.lists()
            templates = await self.service.templates()
        except UserError as exc:
            self.notify(one_line(exc), severity="error", markup=False)
            return
        self.choices_loaded = True
        self.templates = {t.name: t.text for t in templates}
        self._set_options(
            "list",
            [(Text(f"{printable(x.name)} ({x.contact_count} contacts)"), x.name) for x in lists],
        )
        # Nothing to choose from: say where lists come from, and come back with one.
        self.query_one("#camp-list", Select).prompt = (
            "choose a list" if lists else "no contact lists yet"
        )
        self.query_one("#camp-list-field", Field).set_hint("" if lists else NO_LISTS_HINT)
        self._set_options("template", [(Text(printable(name)), name) for name in self.templates])
        self._follow_template()
        self.refresh_preview()

    def action_contact_lists(self) -> None:
        self.app.push_screen(ContactListsScreen(self.service))

    def _set_options(self, field: str, options: list[tuple[Text, str]]) -> None:
        select: Select[str] = self.query_one(f"#camp-{field}", Select)
        keep = select.value
        with select.prevent(Select.Changed):
            select.set_options(options)
            if keep is not Select.NULL and keep in {value for _label, value in options}:
                select.value = keep

    async def load_sessions(self) -> None:
        try:
            found = await self.sessions.list()
        except Exception as exc:
            caught(log, exc, "listing the WAHA sessions")
            self.session_line = Text(f"WAHA sessions: cannot list them ({one_line(exc)})")
        else:
            self.session_names = [s.name for s in found]
            self.query_one("#camp-session", Input).suggester = SuggestFromList(
                self.session_names, case_sensitive=True
            )
            line = Text("on WAHA: " if found else "WAHA has no sessions yet (w to add one)")
            for i, s in enumerate(found):
                line.append(" · " if i else "")
                line.append(f"{printable(s.name)} ")
                line.append_text(session_status_cell(s.status))
            self.session_line = line
        self._show_session_hint()

    @on(Input.Changed, "#camp-session")
    def _show_session_hint(self) -> None:
        if self.session_line is None:
            return
        line = self.session_line.copy()
        try:  # one session, or several with weights: "north:2,south"
            names = parse_sessions(self.value("session")).names
        except UserError:
            names = []  # the form's check says what is wrong, beside the field
        missing = [n for n in names if self.session_names and n not in self.session_names]
        if missing:
            line.append(f" · '{printable(missing[0])}' is not on WAHA", style="yellow")
        if len(names) > 1:
            line.append(f" · {len(names)} numbers, each at its own pace")
        self.field("session").set_hint(line)

    # -- values ------------------------------------------------------------------------

    def field(self, name: str) -> Field:
        return self.query_one(f"#camp-{name}-field", Field)

    def value(self, name: str) -> str:
        return self.query_one(f"#camp-{name}", Input).value

    def chosen(self, name: str) -> str | None:
        value = self.query_one(f"#camp-{name}", Select).value
        return value if isinstance(value, str) else None

    @property
    def message_text(self) -> str:
        return self.query_one("#camp-text", TextArea).text

    @property
    def variants(self) -> list[str]:
        return split_variants(self.query_one("#camp-variants", TextArea).text)

    def draft(self) -> CampaignDraft:
        template = self.chosen("template")
        when = self.value("when").strip()
        return CampaignDraft(
            name=self.value("name"),
            template=template,
            message=None if template else (self.message_text or None),
            variants=self.variants,
            list_name=self.chosen("list"),
            image=self.value("image").strip() or None,
            session=self.value("session"),
            at=None if when.lower() in NOW_WORDS else when,
            delay=self.value("delay"),
            window=self.value("window").strip() or None,
            days=self.value("days").strip() or None,
            timezone=self.value("timezone").strip() or None,
            break_every=self.value("break-every"),
            break_range=self.value("break").strip() or None,
            default_name=self.value("default-name"),
            check_numbers=self.query_one("#camp-check", Checkbox).value,
        )

    # -- live hints and preview --------------------------------------------------------

    @on(Select.Changed, "#camp-template")
    def _follow_template(self) -> None:
        self.field("text").display = self.chosen("template") is None

    @on(Input.Changed, "#camp-when")
    def _when_changed(self, event: Input.Changed) -> None:
        self.field("when").set_hint(when_hint(event.value))

    @on(Input.Changed, "#camp-delay")
    def _delay_changed(self, event: Input.Changed) -> None:
        self.field("delay").set_hint(delay_hint(event.value))

    @on(Select.Changed)
    @on(TextArea.Changed, "#camp-text")
    @on(TextArea.Changed, "#camp-variants")
    @on(Input.Changed, "#camp-default-name")
    @on(Input.Changed, "#camp-image")
    def refresh_preview(self) -> None:
        # The function, not a coroutine: a worker cancelled before it starts leaves none behind.
        # (Textual's WorkType union infers Worker[Never] for an async function returning None.)
        self.run_worker(self._preview, group="camp-preview", exclusive=True, exit_on_error=False)  # type: ignore[arg-type]

    async def _preview(self) -> None:
        list_name = self.chosen("list")
        template = self.chosen("template")
        text = self.templates.get(template, "") if template else self.message_text
        summary = Text()
        shown = Text()
        if list_name is None:
            summary.append("Choose a contact list to see the first messages.", style="dim")
        else:
            contacts = self.contacts.get(list_name)
            if contacts is None:
                try:
                    contacts = await self.service.list_contacts(list_name)
                except UserError as exc:
                    summary.append(one_line(exc), style="red")
                    contacts = []
                self.contacts[list_name] = contacts
            count = len(contacts)
            summary.append(f"{count} recipient{'s' if count != 1 else ''}", style="bold")
            summary.append(f" from list '{printable(list_name)}'")
            if not text.strip():
                shown.append("Choose a template or write the message.", style="dim")
            else:
                image = self.value("image").strip() or None
                shown = preview_messages(
                    text, contacts, self.value("default-name"), image, self.variants
                )
        self.query_one("#camp-summary", Static).update(summary)
        self.query_one("#camp-preview", Static).update(shown)
        self.query_one("#camp-preview-box").display = bool(shown.plain)

    # -- creating ----------------------------------------------------------------------

    def show_errors(self, errors: dict[str, str]) -> None:
        for name in FIELDS:
            self.field(name).set_error(errors.get(name, ""))
        first = next((name for name in FIELDS if name in errors), None)
        if first is not None:
            self.query_one(f"#camp-{first}").focus()
            self.field(first).scroll_visible(animate=False)

    def action_create(self) -> None:
        if self.busy:
            return
        self.busy = True
        self.run_worker(self._check_and_ask(self.draft()), group="camp", exit_on_error=False)

    async def _check(self, draft: CampaignDraft) -> tuple[CampaignPlan | None, dict[str, str]]:
        """The service's verdict, every error beside the field it names."""
        errors: dict[str, str] = {}
        # Which control is empty is the form's business (said in its words); every rule is
        # the service's.
        if draft.list_name is None:
            errors["list"] = "choose a contact list"
        if draft.template is None and not (draft.message or "").strip():
            errors["text"] = "choose a template or write the message"
        plan = None
        try:
            plan = await self.service.plan_campaign(draft)
        except InvalidInput as exc:
            self._place(exc, errors)
        except Exception as exc:  # the database, say: one toast, the form stays
            caught(log, exc, "checking a new campaign")
            self.notify(one_line(exc), severity="error", markup=False, timeout=10)
        return (None if errors else plan), errors

    def _place(self, refused: InvalidInput, errors: dict[str, str]) -> None:
        """Each error beside its field (several on one field: one line each); an error of
        a field the form does not have (none today) is a toast."""
        placed: dict[str, list[str]] = {}
        elsewhere: list[str] = []
        for error in refused.errors:
            field = DRAFT_FIELDS.get(error.field)
            if field is None:
                elsewhere.append(error.label_message)
            elif field not in errors:  # the form's own word for an empty control stays
                placed.setdefault(field, []).append(error.label_message)
        errors.update({field: "\n".join(lines) for field, lines in placed.items()})
        if elsewhere:
            self.notify("\n".join(elsewhere), severity="error", markup=False, timeout=10)

    async def _check_and_ask(self, draft: CampaignDraft) -> None:
        try:
            plan, errors = await self._check(draft)
        finally:
            self.busy = False
        self.show_errors(errors)
        if plan is None:
            return

        def answered(yes: bool | None) -> None:
            if yes and not self.busy:
                self.busy = True
                self.run_worker(self._create(draft), group="camp", exit_on_error=False)

        self.app.push_screen(
            ConfirmationModal(self.question(plan, draft), yes="Create it", no="Keep editing"),
            answered,
        )

    def question(self, plan: CampaignPlan, draft: CampaignDraft) -> str:
        c = plan.campaign
        count = len(plan.recipients)
        if draft.at is None or c.scheduled_at is None:
            start = "Sending starts as soon as it is created."
        else:
            start = f"It starts {local_time(c.scheduled_at, '%Y-%m-%d %H:%M %Z').strip()}."
        image = " with an image" if c.image_path else ""
        if c.check_numbers:
            start += " Each number is looked up on WhatsApp before its message."
        n = plan.opted_out
        left = f" ({n} opted-out number{'' if n == 1 else 's'} left out)" if n else ""
        pacing = ""
        if c.break_every:
            pacing += f", a {breaks_cell(c).plain.replace(' every', ' break every')}"
        window = SendWindow.of(c)
        if window is not None:
            pacing += f", only {window.describe()}"
        texts = CampaignTexts.of(c.template_text, c.variants)
        if texts.varied:
            start += f" Each recipient gets one of {texts.count()}."
        return (
            f"Create campaign '{c.name}' for {count} recipient{'s' if count != 1 else ''} of "
            f"list '{c.list_name}'{left}{image} on {sessions_named(c)}, {c.delay_min:g}–"
            f"{c.delay_max:g} s between messages{pacing}? {start}"
        )

    async def _create(self, draft: CampaignDraft) -> None:
        try:
            created = await self.service.create(draft)
            cid = created.campaign_id
            camp = await self.service.campaign(cid)
        except InvalidInput as exc:  # changed since the check: a list deleted, say
            errors: dict[str, str] = {}
            self._place(exc, errors)
            self.show_errors(errors)
            return
        except Exception as exc:
            caught(log, exc, "creating a campaign")
            self.notify(one_line(exc), severity="error", markup=False, timeout=10)
            return
        finally:
            self.busy = False
        left = f" ({created.left_out})" if created.left_out else ""
        self.notify(
            f"campaign {cid} '{camp.name}' created: {camp.total} recipients{left}, Scheduled "
            f"for {local_time(camp.scheduled_at, '%Y-%m-%d %H:%M')} on {sessions_named(camp)}",
            markup=False,
        )
        self.dismiss(cid)

    def action_close(self) -> None:
        edited = bool(self.value("name").strip() or self.message_text.strip() or self.variants)
        if not edited:
            self.dismiss(None)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.dismiss(None)

        self.app.push_screen(
            ConfirmationModal(
                "Discard this new campaign? Nothing has been saved.",
                yes="Discard",
                no="Keep editing",
            ),
            answered,
        )
