"""`e` and `C`: edit a campaign's name, start and delay, or clone it into a new one, in a
small form over the screen.

The form decides nothing: the service checks every value with the rules of `campaign
create` (`edit_campaign`, `clone_campaign`), and the form places each refusal beside the
field it names, in the form's words (a field's label, errors.said), all at once.
"""

from __future__ import annotations

import logging

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static

from waha_tui.errors import FIELD_NAMES, InvalidInput
from waha_tui.logs import caught
from waha_tui.models import Campaign
from waha_tui.service import SESSION_FIXED, CampaignService, copy_name
from waha_tui.spread import Spread, sessions_named
from waha_tui.tui.format import local_time, shown
from waha_tui.tui.screens.new_campaign import DELAY_GUIDANCE, NOW_WORDS, delay_hint, when_hint
from waha_tui.tui.screens.sessions import one_line
from waha_tui.tui.widgets.form import Field

log = logging.getLogger(__name__)
START_FORMAT = "%Y-%m-%d %H:%M"  # what the Start field shows: local time, as it is typed


class CampaignFormModal(ModalScreen[int | None]):
    """Edit (`clone=False`): dismissed with the campaign's id once saved. Clone: with the
    new campaign's id. None: nothing was written."""

    BINDINGS = [
        Binding("ctrl+s", "submit", "Save", priority=True),
        Binding("escape", "close", "Cancel"),
    ]

    def __init__(self, service: CampaignService, campaign: Campaign, *, clone: bool) -> None:
        super().__init__()
        self.service = service
        self.campaign = campaign
        self.clone = clone
        self.busy = False
        at = campaign.scheduled_at
        start = local_time(at, START_FORMAT) if at is not None and not clone else ""
        # What the fields hold at first: only what the operator changes is sent.
        self.initial = {
            "name": copy_name(campaign.name) if clone else campaign.name,
            "at": start,
            "delay": f"{campaign.delay_min:g}-{campaign.delay_max:g}",
            "session": Spread.of(campaign).text(),
        }

    @property
    def upon(self) -> str:
        """When a start now or in the past begins: a Paused campaign waits for a resume."""
        if self.clone:
            return "it is created"
        return "it is resumed" if self.campaign.status == "Paused" else "it is saved"

    @property
    def fields(self) -> tuple[str, ...]:
        return ("name", "at", "session") if self.clone else ("name", "at", "delay")

    def compose(self) -> ComposeResult:
        c = self.campaign
        with Vertical(id="campaign-form-box", classes="form-box"):
            if self.clone:
                title = f"Clone campaign {c.id} '{c.name}' into a new Scheduled one"
            else:
                title = f"Edit campaign {c.id} '{c.name}' ({c.status})"
            yield Static(shown(title), classes="form-title", id="campaign-form-title")
            yield Field(
                FIELD_NAMES["name"].label,
                Input(value=self.initial["name"], id="form-name", compact=True),
                id="form-name-field",
            )
            yield Field(
                FIELD_NAMES["at"].label,
                Input(
                    value=self.initial["at"],
                    placeholder="now, or a date and time, e.g. 2026-12-01 09:30",
                    id="form-at",
                    compact=True,
                ),
                hint=when_hint(self.initial["at"], upon=self.upon),
                id="form-at-field",
            )
            if self.clone:
                yield Field(
                    FIELD_NAMES["session"].label,
                    Input(value=self.initial["session"], id="form-session", compact=True),
                    hint=f"{c.total:,} recipients, every one sent to again",
                    id="form-session-field",
                )
            else:
                yield Field(
                    f"{FIELD_NAMES['delay'].label} (s)",
                    Input(value=self.initial["delay"], id="form-delay", compact=True),
                    hint=DELAY_GUIDANCE,
                    id="form-delay-field",
                )
                why = SESSION_FIXED.split(": ", 1)[1]
                yield Static(
                    shown(f"S{sessions_named(c)[1:]} stays: {why}."),
                    classes="form-hint",
                    id="form-session-note",
                )
            yield Static("enter saves · tab next field · esc cancels", classes="form-hint")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#form-name", Input).focus()

    def value(self, field: str) -> str:
        return self.query_one(f"#form-{field}", Input).value

    def field(self, name: str) -> Field:
        return self.query_one(f"#form-{name}-field", Field)

    @on(Input.Changed, "#form-at")
    def _at_changed(self, event: Input.Changed) -> None:
        self.field("at").set_hint(when_hint(event.value, upon=self.upon))

    @on(Input.Changed, "#form-delay")
    def _delay_changed(self, event: Input.Changed) -> None:
        self.field("delay").set_hint(delay_hint(event.value))

    @on(Input.Submitted)
    def action_submit(self) -> None:
        if self.busy:
            return
        self.busy = True
        self.run_worker(self._save(), group="campaign-form", exit_on_error=False)

    def _changed(self, field: str) -> str | None:
        """The field's value if the operator changed it (None: kept as it was)."""
        value = self.value(field)
        return None if value.strip() == self.initial[field].strip() else value

    async def _save(self) -> None:
        cid = self.campaign.id
        assert cid is not None
        for field in self.fields:
            self.field(field).set_error("")
        try:
            if self.clone:
                start = self.value("at").strip()
                new = await self.service.clone_campaign(
                    cid,
                    name=self.value("name"),
                    at=None if start.lower() in NOW_WORDS else start,
                    session=self._changed("session"),
                )
                made = await self.service.campaign(new)
                message = (
                    f"campaign {new} '{made.name}' cloned from campaign {cid}: "
                    f"{made.total:,} recipients, Scheduled for "
                    f"{local_time(made.scheduled_at, START_FORMAT)} on {sessions_named(made)}"
                )
            else:
                at = self._changed("at")
                if at is not None and at.strip().lower() in NOW_WORDS:
                    at = ""  # now
                name, delay = self._changed("name"), self._changed("delay")
                if name is None and at is None and delay is None:
                    self.notify(f"campaign {cid}: nothing changed", markup=False)
                    self.dismiss(None)
                    return
                edited = await self.service.edit_campaign(cid, name=name, at=at, delay=delay)
                new = cid
                changes = "; ".join(edited.changes) or "nothing changed"
                message = f"campaign {cid}: {changes}"
        except InvalidInput as exc:
            self._place(exc)
            return
        except Exception as exc:  # it started running meanwhile, the database: a toast
            caught(log, exc, f"campaign {cid}: {'cloning' if self.clone else 'editing'}")
            self.notify(one_line(exc), severity="error", markup=False, timeout=10)
            return
        finally:
            self.busy = False
        self.notify(message, markup=False)
        self.dismiss(new)

    def _place(self, refused: InvalidInput) -> None:
        """Each error beside its field, in the form's words; the first wrong field focused."""
        elsewhere: list[str] = []
        for name in self.fields:
            self.field(name).set_error("\n".join(refused.messages(name, "label")))
        for error in refused.errors:
            if error.field not in self.fields:
                elsewhere.append(error.label_message)
        first = next((f for f in self.fields if f in refused.fields), None)
        if first is not None:
            self.query_one(f"#form-{first}", Input).focus()
        if elsewhere:
            self.notify("\n".join(elsewhere), severity="error", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
