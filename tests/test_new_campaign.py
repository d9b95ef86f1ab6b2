"""The new campaign form (N, or "New campaign" in the command palette): the real app, the
simulator, a real SQLite file. Nothing is sent: the scheduler is off in these apps."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, Select, Static, TextArea

from tests.engine_helpers import PNG
from tests.test_sessions_screen import SessionsScreen, footer_keys, toast_with, toasts
from tests.test_templates_screen import assert_whatsapp_styles, steady_cursors
from tests.tui_helpers import SIZE_IDS, SIZES, Rig, make_rig, wait_for
from waha_tui.models import utcnow
from waha_tui.status import CampaignStatus
from waha_tui.store import OptOutEntry
from waha_tui.tui.screens.confirm import ConfirmationModal
from waha_tui.tui.screens.contacts import ContactListsScreen
from waha_tui.tui.screens.main import MainScreen
from waha_tui.tui.screens.new_campaign import DELAY_GUIDANCE, NewCampaignScreen, when_hint
from waha_tui.tui.screens.templates import TemplatesScreen
from waha_tui.tui.widgets.form import Field
from waha_tui.tui.widgets.keyed_table import KeyedTable

CUSTOMERS = (
    "phone,name,city\n"
    "+491512345670,Ana,Lisbon\n"
    "+491512345671,,Porto\n"
    "+491512345672,Bo,Recife\n"
    "+491512345673,Cy,Natal\n"
)
WELCOME = "Hi *{name}*, _welcome_ to ~old~ ```{city}```!"


@pytest.fixture
def local_tz() -> Iterator[None]:
    """Berlin (UTC+1 in January), so local input and stored UTC differ."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Berlin"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    rig = make_rig(tmp_path, sessions={"default": "WORKING", "shop": "STOPPED"})
    csv = tmp_path / "customers.csv"
    csv.write_text(CUSTOMERS, encoding="utf-8")
    await rig.service.import_contacts(str(csv), "customers")
    await rig.service.add_template("welcome", WELCOME)
    await rig.service.add_template("plain", "Hello {name}")
    yield rig
    await rig.service.aclose()


def campaign_rows(rig: Rig) -> list[Any]:
    with sqlite3.connect(rig.store.path) as conn:
        return (
            conn.execute("SELECT * FROM campaign").fetchall()
            + conn.execute("SELECT * FROM recipient").fetchall()
        )


def form(pilot: Pilot) -> NewCampaignScreen:
    screen = next(s for s in pilot.app.screen_stack if isinstance(s, NewCampaignScreen))
    return screen


async def open_form(pilot: Pilot) -> NewCampaignScreen:
    await pilot.press("N")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, NewCampaignScreen))
    screen = form(pilot)
    await wait_for(pilot, lambda: screen.choices_loaded and screen.session_line is not None)
    return screen


def put(pilot: Pilot, field: str, value: str) -> None:
    widget = form(pilot).query_one(f"#camp-{field}")
    if isinstance(widget, Input):
        widget.value = value
    elif isinstance(widget, TextArea):
        widget.text = value
    else:
        assert isinstance(widget, Select)
        widget.value = value if value else Select.NULL


async def choose(pilot: Pilot, field: str, label_start: str) -> None:
    """Pick an option of a Select with the keyboard: focus, enter, arrows, enter."""
    select = form(pilot).query_one(f"#camp-{field}", Select)
    select.focus()
    await pilot.press("enter")
    await pilot.pause(0.1)
    for _ in range(10):
        if str(select.selection or "") and select.expanded is False:
            break
        await pilot.press("down")
        overlay = select.query_one("SelectOverlay")
        highlighted = overlay.highlighted  # type: ignore[attr-defined]
        prompt = str(overlay.get_option_at_index(highlighted).prompt)  # type: ignore[attr-defined]
        if prompt.startswith(label_start):
            await pilot.press("enter")
            break
    await pilot.pause(0.1)
    assert select.value is not Select.NULL


def error_of(pilot: Pilot, field: str) -> str:
    return form(pilot).query_one(f"#camp-{field}-field", Field).error


def text_of(pilot: Pilot, selector: str) -> str:
    return str(form(pilot).query_one(selector, Static).render())


def main_table(pilot: Pilot) -> KeyedTable:
    return pilot.app.screen.query_one("#campaigns", KeyedTable)


# -- the whole way -----------------------------------------------------------------------


async def test_n_creates_a_campaign_from_a_list_and_a_template_starting_now(rig: Rig) -> None:
    async with rig.app().run_test(size=(100, 40)) as pilot:
        screen = await open_form(pilot)
        assert screen.query_one("#camp-name", Input).has_focus
        await pilot.press(*"Spring sale")
        await choose(pilot, "list", "customers")
        await choose(pilot, "template", "welcome")
        assert not screen.field("text").display  # a template replaces the message box
        # The preview: how many get it, and the first three messages as WhatsApp shows them.
        await wait_for(pilot, lambda: "4 recipients" in text_of(pilot, "#camp-summary"))
        assert text_of(pilot, "#camp-summary") == "4 recipients from list 'customers'"
        preview = screen.query_one("#camp-preview", Static)
        await wait_for(pilot, lambda: "Hi Ana" in str(preview.render()))
        assert str(preview.render()) == (
            "1. +491512345670  Ana\nHi Ana, welcome to old Lisbon!\n\n"
            "2. +491512345671  (no name)\nHi there, welcome to old Porto!\n\n"
            "3. +491512345672  Bo\nHi Bo, welcome to old Recife!"
        )
        assert "Natal" not in str(preview.render())  # three, not four
        assert_whatsapp_styles(preview, "Ana", "welcome", "old", "Lisbon")
        assert text_of(pilot, "#camp-when-field .field-hint") == "starts as soon as it is created"
        assert text_of(pilot, "#camp-delay-field .field-hint") == DELAY_GUIDANCE
        session_hint = text_of(pilot, "#camp-session-field .field-hint")
        assert session_hint == "on WAHA: default ● WORKING · shop ○ STOPPED"
        assert rig.store.list_campaigns() == []

        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        question = str(pilot.app.screen.query_one("#confirm-question", Static).render())
        assert question == (
            "Create campaign 'Spring sale' for 4 recipients of list 'customers' on session "
            "'default', 30–60 s between messages? Sending starts as soon as it is created."
        )
        assert rig.store.list_campaigns() == []  # nothing written before the answer
        before = utcnow()
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MainScreen))
        await wait_for(pilot, toast_with(pilot, "campaign 1 'Spring sale' created: 4 recipients"))
        await wait_for(pilot, lambda: "1" in [k.value for k in main_table(pilot).rows])
        assert str(main_table(pilot).get_cell("1", "name")) == "Spring sale"
        assert main_table(pilot).current_key == "1"
    [camp] = rig.store.list_campaigns()
    assert (camp.name, camp.session, camp.list_name, camp.status) == (
        "Spring sale",
        "default",
        "customers",
        CampaignStatus.SCHEDULED,
    )
    assert camp.template_text == WELCOME
    assert (camp.delay_min, camp.delay_max, camp.default_name) == (30.0, 60.0, "there")
    assert camp.total == 4 and camp.image_path is None
    assert camp.check_numbers is False  # the box left unticked
    assert camp.scheduled_at is not None
    assert before - timedelta(seconds=1) <= camp.scheduled_at <= utcnow()
    recipients = rig.store.recipients(1)
    assert [r.phone for r in recipients] == [f"49151234567{i}" for i in range(4)]
    assert recipients[0].variables == {"city": "Lisbon"}


async def test_variants_and_choices_are_previewed_counted_and_created(rig: Rig) -> None:
    async with rig.app().run_test(size=(80, 24)) as pilot:
        screen = await open_form(pilot)
        put(pilot, "name", "Varied")
        put(pilot, "list", "customers")
        put(pilot, "text", "{Hi|Hello|Hey} {name}")
        put(pilot, "variants", "Good {morning|day}, {name}\n---\nDear {name},\nwelcome")
        preview = screen.query_one("#camp-preview", Static)
        await wait_for(pilot, lambda: "different texts" in str(preview.render()))
        lines = str(preview.render()).split("\n")
        assert lines[0] == (
            "6 different texts: each recipient gets one, picked when the campaign is "
            "created. Some of them:"
        )
        # The first three contacts, each with another of the texts, their own values in.
        shown = [
            lines[i + 1] for i, line in enumerate(lines) if line.startswith(("1.", "2.", "3."))
        ]
        assert len(shown) == 3 and len(set(shown)) == 3
        assert shown[0].endswith("Ana") or shown[0].startswith("Dear Ana")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        question = str(pilot.app.screen.query_one("#confirm-question", Static).render())
        assert question.endswith("Each recipient gets one of 6 different texts.")
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MainScreen))
    [camp] = rig.store.list_campaigns()
    assert camp.template_text == "{Hi|Hello|Hey} {name}"
    assert camp.variants == ["Good {morning|day}, {name}", "Dear {name},\nwelcome"]


async def test_a_malformed_variant_is_marked_with_its_position(rig: Rig) -> None:
    async with rig.app().run_test(size=(80, 24)) as pilot:
        await open_form(pilot)
        put(pilot, "name", "Varied")
        put(pilot, "list", "customers")
        put(pilot, "template", "plain")
        put(pilot, "variants", "fine\n---\nHi\n{a|b")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: error_of(pilot, "variants") != "")
        assert error_of(pilot, "variants").startswith(
            "Variant 2, line 2, column 1: {a has no closing }"
        )
        assert error_of(pilot, "text") == ""
    assert rig.store.list_campaigns() == []


def test_the_variants_box_splits_at_lines_of_dashes() -> None:
    from waha_tui.tui.screens.new_campaign import split_variants

    assert split_variants("  \n") == []
    assert split_variants("a\nb\n --- \nc\n---\n") == ["a\nb", "c", ""]
    assert split_variants("a---b") == ["a---b"]


async def test_the_number_check_box_creates_a_campaign_that_checks_numbers(rig: Rig) -> None:
    async with rig.app().run_test(size=(100, 40)) as pilot:
        screen = await open_form(pilot)
        await pilot.press(*"Checked")
        await choose(pilot, "list", "customers")
        await choose(pilot, "template", "welcome")
        box = screen.query_one("#camp-check", Checkbox)
        assert str(box.label) == "Check numbers on WhatsApp first" and box.value is False
        box.focus()
        await pilot.press("space")
        assert box.value is True
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        question = str(pilot.app.screen.query_one("#confirm-question", Static).render())
        assert question.endswith("Each number is looked up on WhatsApp before its message.")
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MainScreen))
    [camp] = rig.store.list_campaigns()
    assert (camp.name, camp.check_numbers) == ("Checked", True)


async def test_opted_out_numbers_are_left_out_and_the_form_says_how_many(rig: Rig) -> None:
    rig.store.add_optouts([OptOutEntry("491512345672", "hand", "asked by phone")])
    async with rig.app().run_test(size=(100, 40)) as pilot:
        await open_form(pilot)
        await pilot.press(*"Honest")
        await choose(pilot, "list", "customers")
        await choose(pilot, "template", "welcome")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        question = str(pilot.app.screen.query_one("#confirm-question", Static).render())
        assert question.startswith(
            "Create campaign 'Honest' for 3 recipients of list 'customers' (1 opted-out "
            "number left out) on session 'default'"
        )
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MainScreen))
        await wait_for(
            pilot, toast_with(pilot, "3 recipients (1 opted-out number left out), Scheduled")
        )
    [camp] = rig.store.list_campaigns()
    assert camp.total == 3
    assert "491512345672" not in [r.phone for r in rig.store.recipients(camp.id or 0)]


async def test_a_future_start_typed_in_local_time_is_stored_in_utc(
    rig: Rig, tmp_path: Path, local_tz: None
) -> None:
    image = tmp_path / "offer.png"
    image.write_bytes(PNG)
    async with rig.app().run_test(size=(100, 40)) as pilot:
        screen = await open_form(pilot)
        put(pilot, "name", "Winter")
        put(pilot, "list", "customers")
        put(pilot, "text", "Hello {name} from {city}")  # a message of its own, no template
        put(pilot, "image", str(image))
        put(pilot, "session", "shop")
        put(pilot, "delay", "45-90")
        put(pilot, "default-name", "friend")
        put(pilot, "when", "2099-01-15 09:30")
        await wait_for(
            pilot,
            lambda: (
                text_of(pilot, "#camp-when-field .field-hint")
                == "starts 2099-01-15 09:30 CET (2099-01-15 08:30 UTC)"
            ),
        )
        preview = screen.query_one("#camp-preview", Static)
        await wait_for(pilot, lambda: "Hello friend from Porto" in str(preview.render()))
        assert f"[image {image}]" in str(preview.render())
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        question = str(pilot.app.screen.query_one("#confirm-question", Static).render())
        assert "with an image on session 'shop', 45–90 s between messages?" in question
        assert question.endswith("It starts 2099-01-15 09:30 CET.")
        await pilot.press("y")
        await wait_for(pilot, toast_with(pilot, "Scheduled for 2099-01-15 09:30 on session 'shop'"))
    [camp] = rig.store.list_campaigns()
    assert camp.scheduled_at == datetime(2099, 1, 15, 8, 30, tzinfo=UTC)
    assert camp.template_text == "Hello {name} from {city}"
    assert (camp.session, camp.delay_min, camp.delay_max) == ("shop", 45.0, 90.0)
    assert camp.default_name == "friend"
    assert camp.image_path == str(image.resolve()) and camp.image_mime == "image/png"


def test_the_start_hint_shows_local_time_and_utc(local_tz: None) -> None:
    now = datetime(2030, 6, 1, tzinfo=UTC)
    assert str(when_hint("now", now)) == "starts as soon as it is created"
    assert str(when_hint("", now)) == "starts as soon as it is created"
    assert str(when_hint("2030-07-01 10:00", now)) == (
        "starts 2030-07-01 10:00 CEST (2030-07-01 08:00 UTC)"
    )
    assert str(when_hint("2030-07-01T10:00+00:00", now)) == (
        "starts 2030-07-01 12:00 CEST (2030-07-01 10:00 UTC)"
    )
    assert "in the past" in str(when_hint("2030-01-01 10:00", now))
    assert "e.g. 2026-12-01 09:30" in str(when_hint("2030-13", now))


async def test_no_at_the_question_goes_back_to_the_form_and_writes_nothing(rig: Rig) -> None:
    async with rig.app().run_test(size=(100, 40)) as pilot:
        await open_form(pilot)
        put(pilot, "name", "Maybe")
        put(pilot, "list", "customers")
        put(pilot, "template", "plain")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, NewCampaignScreen))
        await pilot.pause(0.2)
        assert form(pilot).value("name") == "Maybe"
    assert rig.store.list_campaigns() == []


# -- refusals ----------------------------------------------------------------------------


GOOD = {"name": "ok", "list": "customers", "template": "plain"}


@pytest.mark.parametrize(
    ("changes", "field", "error"),
    [
        # The form's words: each field by its label, never by the CLI's flag.
        ({"name": ""}, "name", "Name is empty"),
        ({"name": "   "}, "name", "Name is empty"),
        ({"name": "x" * 201}, "name", "Name is longer than 200 characters"),
        ({"delay": "60-30"}, "delay", "Delay '60-30': MIN is larger than MAX"),
        ({"delay": "soon"}, "delay", "Delay 'soon' is not MIN-MAX in seconds, e.g. 30-60"),
        ({"when": "2030-13-45 25:00"}, "when", "Start '2030-13-45 25:00' is not an ISO-8601"),
        ({"when": "tomorrow"}, "when", "Start 'tomorrow' is not an ISO-8601 date and time"),
        ({"image": "/nonexistent/offer.png"}, "image", "Image /nonexistent/offer.png: no such"),
        ({"list": "empty"}, "list", "the campaign has no recipients"),
        ({"list": ""}, "list", "choose a contact list"),
        ({"template": ""}, "text", "choose a template or write the message"),
        (
            {"template": "", "text": "Hi {nickname}"},
            "text",
            "unknown placeholder {nickname} in the message: list 'customers' has the columns city",
        ),
        ({"template": "needs-code"}, "template", "unknown placeholder {code} in the message"),
        ({"session": " "}, "session", "Session is empty"),
    ],
)
async def test_bad_input_is_marked_on_its_field_and_nothing_is_written(
    rig: Rig, changes: dict[str, str], field: str, error: str
) -> None:
    rig.store.create_list("empty", [])
    await rig.service.add_template("needs-code", "Your code: {code}")
    before = campaign_rows(rig)
    async with rig.app().run_test(size=(100, 40)) as pilot:
        screen = await open_form(pilot)
        for name, value in {**GOOD, **changes}.items():
            put(pilot, name, value)
        await pilot.pause(0.1)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: error_of(pilot, field) != "")
        assert error in error_of(pilot, field)
        assert "--" not in error_of(pilot, field)
        shown = text_of(pilot, f"#camp-{field}-field .field-error")
        assert shown == error_of(pilot, field)
        control = screen.query_one(f"#camp-{field}")
        assert control.has_class("-invalid") and control.has_focus
        others = [f for f in ("name", "list", "template", "text", "image", "session", "when",
                              "delay", "default-name") if f != field]  # fmt: skip
        assert {f: error_of(pilot, f) for f in others} == dict.fromkeys(others, "")
        await pilot.pause(0.2)
        assert isinstance(pilot.app.screen, NewCampaignScreen)  # no question was asked
        assert toasts(pilot) == []
    assert campaign_rows(rig) == before


async def test_several_wrong_fields_are_marked_at_once_and_clear_when_edited(rig: Rig) -> None:
    async with rig.app().run_test(size=(100, 40)) as pilot:
        screen = await open_form(pilot)
        put(pilot, "template", "plain")
        put(pilot, "delay", "60-30")
        put(pilot, "when", "31.12.2030")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: error_of(pilot, "delay") != "")
        assert error_of(pilot, "name") == "Name is empty"
        assert error_of(pilot, "list") == "choose a contact list"
        assert "MIN is larger than MAX" in error_of(pilot, "delay")
        assert "Start '31.12.2030' is not an ISO-8601" in error_of(pilot, "when")
        assert screen.query_one("#camp-name", Input).has_focus  # the first wrong field
        await pilot.press("a")
        await wait_for(pilot, lambda: error_of(pilot, "name") == "")
        assert not screen.query_one("#camp-name", Input).has_class("-invalid")
        assert "MIN is larger" in error_of(pilot, "delay")  # the others stay until edited
    assert rig.store.list_campaigns() == []


async def test_every_rule_the_service_refuses_is_marked_on_its_field_at_once(rig: Rig) -> None:
    await rig.service.add_template("needs-code", "Your code: {code}")
    async with rig.app().run_test(size=(100, 40)) as pilot:
        await open_form(pilot)
        for name, value in {
            "name": "x" * 201,
            "list": "customers",
            "template": "needs-code",
            "image": "/nonexistent/offer.png",
            "session": " ",
            "when": "tomorrow",
            "delay": "60-30",
        }.items():
            put(pilot, name, value)
        await pilot.pause(0.1)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: error_of(pilot, "delay") != "")
        expected = {
            "name": "Name is longer than 200 characters",
            "list": "",
            "template": "unknown placeholder {code} in the message: list 'customers' has the "
            "columns city",
            "text": "",
            "image": "Image /nonexistent/offer.png: no such file",
            "session": "Session is empty",
            "when": "Start 'tomorrow' is not an ISO-8601 date and time, e.g. 2026-12-01T09:30",
            "delay": "Delay '60-30': MIN is larger than MAX",
            "default-name": "",
        }
        assert {f: error_of(pilot, f) for f in expected} == expected
        assert toasts(pilot) == []
    assert rig.store.list_campaigns() == []


async def test_the_window_and_break_fields_are_refused_beside_themselves(rig: Rig) -> None:
    async with rig.app().run_test(size=(80, 24)) as pilot:
        await open_form(pilot)
        values = {
            "name": "Night",
            "list": "customers",
            "text": "Hi {name}",
            "window": "25:00-06:00",
            "days": "someday",
            "timezone": "Mars/Base",
            "break-every": "many",
            "break": "9-1",
        }
        for name, value in values.items():
            put(pilot, name, value)
        await pilot.pause(0.1)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: error_of(pilot, "window") != "")
        assert {f: error_of(pilot, f) for f in ("window", "days", "timezone")} == {
            "window": "Send window '25:00-06:00': '25:00' is not a time of day HH:MM (00:00 to "
            "23:59)",
            "days": "Days 'someday': 'someday' is not a day; use mon,tue,wed,thu,fri,sat,sun or "
            "a range such as mon-fri",
            "timezone": "Time zone 'Mars/Base' is not an IANA time zone, e.g. Europe/Berlin "
            "(a machine without /usr/share/zoneinfo needs the tzdata package)",
        }
        assert error_of(pilot, "break-every") == (
            "Break every 'many' is not a whole number of messages"
        )
        assert error_of(pilot, "break") == "Break (s) '9-1': MIN is larger than MAX"
        assert toasts(pilot) == []
        # The first refused field is scrolled into view at 80x24.
        assert form(pilot).query_one("#camp-window", Input).has_focus
    assert rig.store.list_campaigns() == []


async def test_the_form_creates_a_campaign_with_a_window_in_the_machines_zone(
    rig: Rig, local_tz: None
) -> None:
    async with rig.app().run_test(size=(80, 24)) as pilot:
        screen = await open_form(pilot)
        # Prefilled with this machine's zone (TZ here).
        assert screen.value("timezone") == "Europe/Berlin"
        for name, value in {
            "name": "Office hours",
            "list": "customers",
            "text": "Hi {name}",
            "window": "9:00-17:30",
            "days": "mon-fri",
            "break-every": "2",
            "break": "600-1200",
        }.items():
            put(pilot, name, value)
        await pilot.pause(0.1)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        question = str(pilot.app.screen.query_one("#confirm-question", Static).render())
        assert "a 600-1200 s break every 2" in question
        assert "only 09:00-17:30 mon-fri (Europe/Berlin)" in question
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MainScreen))
    [camp] = rig.store.list_campaigns()
    assert (camp.send_window, camp.window_days, camp.timezone) == (
        "09:00-17:30",
        "mon,tue,wed,thu,fri",
        "Europe/Berlin",
    )
    assert (camp.break_every, camp.break_seconds, camp.break_max) == (2, 600.0, 1200.0)


async def test_a_delay_under_the_advice_is_flagged_next_to_the_guidance(rig: Rig) -> None:
    async with rig.app().run_test(size=(100, 40)) as pilot:
        screen = await open_form(pilot)
        put(pilot, "delay", "5-10")
        await pilot.pause(0.1)
        hint = screen.query_one("#camp-delay-field .field-hint", Static)
        assert str(hint.render()) == DELAY_GUIDANCE
        assert hint.content.style == "bold yellow"  # type: ignore[union-attr]
        put(pilot, "delay", "30-60")
        await pilot.pause(0.1)
        assert hint.content.style == ""  # type: ignore[union-attr]


async def test_a_session_not_on_waha_is_pointed_out(rig: Rig) -> None:
    async with rig.app().run_test(size=(100, 40)) as pilot:
        await open_form(pilot)
        put(pilot, "session", "elsewhere")
        await wait_for(
            pilot,
            lambda: text_of(pilot, "#camp-session-field .field-hint").endswith(
                "· 'elsewhere' is not on WAHA"
            ),
        )


async def test_esc_on_an_untouched_form_leaves_and_on_a_filled_one_asks(rig: Rig) -> None:
    async with rig.app().run_test(size=(100, 40)) as pilot:
        await open_form(pilot)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MainScreen))
        await open_form(pilot)
        await pilot.press(*"Draft", "escape")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MainScreen))
    assert rig.store.list_campaigns() == []


# -- the command palette and the keys ----------------------------------------------------


@pytest.mark.parametrize(
    ("command", "screen"),
    [
        ("New campaign", NewCampaignScreen),
        ("Contact lists", ContactListsScreen),
        ("Templates", TemplatesScreen),
        ("WhatsApp sessions", SessionsScreen),
    ],
)
async def test_the_command_palette_opens_each_screen(rig: Rig, command: str, screen: type) -> None:
    async with rig.app().run_test(size=(100, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MainScreen))
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, CommandPalette))
        await pilot.press(*command)
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, screen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MainScreen))


async def test_a_template_written_from_the_palette_is_offered_back_in_the_form(rig: Rig) -> None:
    async with rig.app().run_test(size=(100, 40)) as pilot:
        screen = await open_form(pilot)
        await rig.service.add_template("fresh", "Fresh {name}")  # as the templates screen would
        await pilot.press("ctrl+p", *"Templates")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, TemplatesScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, NewCampaignScreen))
        await wait_for(pilot, lambda: "fresh" in screen.templates)
        put(pilot, "template", "fresh")
        assert screen.chosen("template") == "fresh"


async def test_the_palette_quit_asks_first_while_a_campaign_runs(rig: Rig) -> None:
    cid = rig.add("Long", 40, status=CampaignStatus.PAUSED, delay=(0.2, 0.2))
    async with rig.app().run_test(size=(100, 40)) as pilot:
        await wait_for(pilot, lambda: str(cid) in [k.value for k in main_table(pilot).rows])
        await pilot.press("r")
        await wait_for(pilot, lambda: rig.store.get_campaign(cid).status == CampaignStatus.RUNNING)
        await pilot.press("ctrl+p", *"Quit")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: not pilot.app.is_running)
    assert rig.store.get_campaign(cid).status == CampaignStatus.PAUSED


async def test_the_main_footer_offers_n_and_the_keys_do_not_clash(rig: Rig) -> None:
    async with rig.app().run_test(size=(100, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MainScreen))
        assert "N" in footer_keys(pilot)
        keys = [b.key for b in MainScreen.BINDINGS]
        assert len(keys) == len(set(keys))
        assert {"N", "L", "T"} <= set(keys)
        await pilot.press("L")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ContactListsScreen))
        await pilot.press("escape", "T")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, TemplatesScreen))


# -- snapshots ---------------------------------------------------------------------------


def snapshot_rig(tmp_path: Path) -> Rig:
    rig = make_rig(tmp_path, sessions={"default": "WORKING", "shop": "STOPPED"})
    csv = tmp_path / "customers.csv"
    csv.write_text(CUSTOMERS, encoding="utf-8")

    async def setup() -> None:
        await rig.service.import_contacts(str(csv), "customers")
        await rig.service.add_template("welcome", WELCOME)

    asyncio.run(setup())
    return rig


async def filled(pilot: Pilot) -> None:
    await open_form(pilot)
    put(pilot, "name", "Spring sale")
    put(pilot, "list", "customers")
    put(pilot, "template", "welcome")
    put(pilot, "when", "2099-01-15 09:30")
    preview = form(pilot).query_one("#camp-preview", Static)
    await wait_for(pilot, lambda: "Hi Ana" in str(preview.render()))
    form(pilot).query_one("#camp-name", Input).focus()
    await pilot.pause(0.3)
    await steady_cursors(pilot)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_snapshot_of_the_new_campaign_form(
    size: tuple[int, int], snap_compare, tmp_path: Path, utc: None
) -> None:
    rig = snapshot_rig(tmp_path)
    assert snap_compare(rig.app(session_interval=3600), terminal_size=size, run_before=filled)


def test_snapshot_of_the_preview(snap_compare, tmp_path: Path, utc: None) -> None:
    rig = snapshot_rig(tmp_path)

    async def scrolled(pilot: Pilot) -> None:
        await filled(pilot)
        form(pilot).query_one("#camp-form").scroll_end(animate=False)
        await pilot.pause(0.3)
        await steady_cursors(pilot)

    assert snap_compare(
        rig.app(session_interval=3600), terminal_size=(100, 30), run_before=scrolled
    )


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_snapshot_of_refused_fields(
    size: tuple[int, int], snap_compare, tmp_path: Path, utc: None
) -> None:
    rig = snapshot_rig(tmp_path)

    async def refused(pilot: Pilot) -> None:
        await open_form(pilot)
        put(pilot, "list", "customers")
        put(pilot, "template", "welcome")
        put(pilot, "delay", "60-30")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: error_of(pilot, "delay") != "")
        await pilot.pause(0.3)
        await steady_cursors(pilot)

    assert snap_compare(rig.app(session_interval=3600), terminal_size=size, run_before=refused)


async def test_with_no_contact_list_the_form_says_how_to_make_one(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    csv = tmp_path / "people.csv"
    csv.write_text("phone,name\n+4915112345678,Ann\n", encoding="utf-8")
    try:
        async with rig.app().run_test(size=(80, 24)) as pilot:
            screen = await open_form(pilot)
            field = screen.query_one("#camp-list-field")
            hint = str(field.query_one(".field-hint", Static).render())
            assert "No contact lists yet" in hint and "ctrl+l" in hint
            assert screen.query_one("#camp-list", Select).prompt == "no contact lists yet"
            await pilot.press("ctrl+l")  # from inside the name field: no L typed
            await wait_for(pilot, lambda: isinstance(pilot.app.screen, ContactListsScreen))
            assert screen.query_one("#camp-name", Input).value == ""
            await rig.service.import_contacts(str(csv), "first")
            await pilot.press("escape")
            await wait_for(pilot, lambda: pilot.app.screen is screen)
            await wait_for(pilot, lambda: not field.query_one(".field-hint", Static).display)
            select = screen.query_one("#camp-list", Select)
            assert select.prompt == "choose a list"
            assert [value for _label, value in select._options if value != Select.NULL] == ["first"]
    finally:
        await rig.service.aclose()
