"""The templates screen (T) and editor: the real app, the simulator, a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from rich.style import Style
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Input, Static, TextArea
from typer.testing import CliRunner

from tests.test_sessions_screen import footer_keys, toast_with, toasts
from tests.tui_helpers import SIZE_IDS, SIZES, Rig, make_rig, wait_for
from waha_tui.cli import app as cli_app
from waha_tui.errors import UserError
from waha_tui.service import CampaignDraft, CampaignService, check_template
from waha_tui.store import NotFound, Store
from waha_tui.tui.screens.confirm import ConfirmationModal
from waha_tui.tui.screens.main import MainScreen
from waha_tui.tui.screens.templates import (
    TemplateEditor,
    TemplatesScreen,
    parse_sample,
    sample_values,
)
from waha_tui.tui.widgets.form import Field
from waha_tui.tui.widgets.keyed_table import KeyedTable
from waha_tui.waha import WahaClient

FORMATTED = "Hi *{name}*, _welcome_ to ~old~ ```{city}``` shop!"


def template_rows(rig: Rig) -> list[Any]:
    with sqlite3.connect(rig.store.path) as conn:
        return conn.execute("SELECT * FROM template ORDER BY id").fetchall()


# -- the store and the service -----------------------------------------------------------


def test_the_store_updates_and_deletes_templates(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    store.add_template("a", "one")
    store.add_template("b", "two")
    created = store.get_template("a").updated_at
    time.sleep(0.01)
    store.update_template("a", "uno")
    after = store.get_template("a")
    assert after.text == "uno" and after.updated_at is not None and created is not None
    assert after.updated_at > created
    assert store.get_template("b").text == "two"
    store.delete_template("a")
    assert [t.name for t in store.templates()] == ["b"]
    with pytest.raises(NotFound, match="no template named 'a'"):
        store.update_template("a", "x")
    with pytest.raises(NotFound, match="no template named 'a'"):
        store.delete_template("a")
    store.close()


async def test_the_service_checks_templates_on_add_and_update(rig: Rig) -> None:
    service = rig.service
    await service.add_template("ok", "Hi {name} from {city}")
    await service.update_template("ok", "Bye {name}")
    assert rig.store.get_template("ok").text == "Bye {name}"
    before = template_rows(rig)
    for call, args, message in [
        (service.add_template, ("  ", "x"), "template name is empty"),
        (service.add_template, ("x" * 201, "x"), "template name is longer than 200"),
        (service.add_template, ("ok", "x"), "a template named 'ok' already exists"),
        (service.add_template, ("n", " \n "), "template 'n': the text is empty"),
        (service.add_template, ("n", "Hi {first.name}"), "{first.name} is not a placeholder"),
        (service.add_template, ("n", "Hi {name, bye"), "{name has no closing }"),
        (
            service.update_template,
            ("ok", "{city:}"),
            "template 'ok': line 1, column 1: {city:} is not a",
        ),
        (service.update_template, ("nope", "x"), "no template named 'nope'"),
        (service.delete_template, ("nope",), "no template named 'nope'"),
    ]:
        with pytest.raises(UserError) as info:
            await call(*args)
        assert message in str(info.value) and "\n" not in str(info.value)
    assert template_rows(rig) == before


def test_check_template_refuses_broken_placeholders_and_warns_about_columns() -> None:
    assert check_template("Hi {name}").errors == []
    assert check_template("Hi {name}").warnings == []
    check = check_template("Hi {Name} in {City} { code }")
    assert check.errors == []
    assert check.warnings == [
        "{city} needs a column city in the contact list",
        "{code} needs a column code in the contact list",
    ]
    # Braces that are not a placeholder at all stay plain text, as render.py says.
    assert check_template('JSON {"a": 1}, {} and { }').errors == []
    hint = (
        " is not a placeholder: write a name of letters, digits, _, - or spaces between { and"
        " }, e.g. {first_name}; \\{ for a literal {"
    )
    assert check_template("a {first.name} b\n {last-name!}").errors == [
        "line 1, column 3: {first.name}" + hint,
        "line 2, column 2: {last-name!}" + hint,
    ]
    assert check_template("Hi {name").errors == ["line 1, column 4: {name has no closing }"]
    assert check_template("Hi {name\n}").errors == ["line 1, column 4: {name has no closing }"]
    assert check_template("{{name}}").errors == [
        "line 1, column 1: write {name}, not {{name}}: one pair of braces"
    ]
    assert check_template("   ").errors == ["the text is empty"]


def test_the_cli_refuses_the_same_templates_with_the_same_words(tmp_path: Path) -> None:
    store = Store(tmp_path / "svc.db")
    service = CampaignService(store, WahaClient("http://127.0.0.1:9"))
    env = {"WAHA_TUI_DB": str(tmp_path / "cli.db"), "WAHA_URL": "http://127.0.0.1:9"}
    for text in ("Hi {first.name}", "Hi {name", "  "):
        with pytest.raises(UserError) as info:
            asyncio.run(service.add_template("new", text))
        result = CliRunner().invoke(cli_app, ["template", "add", "new", "--text", text], env=env)
        assert result.exit_code == 1
        assert result.stderr.strip() == f"error: {info.value}"
    store.close()


async def test_deleting_a_template_leaves_campaigns_made_from_it_alone(
    rig: Rig, tmp_path: Path
) -> None:
    (tmp_path / "c.csv").write_text("phone,name\n+491512345678,Ana\n", encoding="utf-8")
    await rig.service.add_template("welcome", "Hi {name}")
    cid = await rig.service.create_campaign(
        CampaignDraft(name="c", template="welcome", contacts_file=str(tmp_path / "c.csv"))
    )
    await rig.service.update_template("welcome", "changed")
    await rig.service.delete_template("welcome")
    assert rig.store.get_campaign(cid).template_text == "Hi {name}"


def test_sample_values_for_the_preview() -> None:
    assert parse_sample(" City = Lisbon ; code=7;junk; =x") == {"city": "Lisbon", "code": "7"}
    assert sample_values("Hi {name} in {City}") == {"name": "Ana", "city": "<city>"}
    assert sample_values("Hi {name} in {City}", "city=Porto; name=Bo; other=1") == {
        "name": "Bo",
        "city": "Porto",
    }


def test_the_preview_of_a_template_with_choices_shows_one_and_the_count() -> None:
    from waha_tui.tui.screens.templates import preview

    shown = preview("{Hi|Hello} {name}, {see you|bye}", {"name": "Ana"}).plain
    first, text = shown.split("\n")
    assert first == "One of 4 different texts:"
    assert text in {"Hi Ana, see you", "Hi Ana, bye", "Hello Ana, see you", "Hello Ana, bye"}
    assert preview("Hi {name}", {"name": "Ana"}).plain == "Hi Ana"


# -- helpers -----------------------------------------------------------------------------


def styles_of(widget: Widget) -> dict[str, list[Style]]:
    """Every word the widget paints, with each style it is painted in."""
    width, height = widget.size
    found: dict[str, list[Style]] = {}
    for strip in widget.render_lines(Region(0, 0, width, height)):
        for segment in strip:
            word = segment.text.strip()
            if word and segment.style is not None:
                found.setdefault(word, []).append(segment.style)
    return found


def assert_whatsapp_styles(widget: Widget, bold: str, italic: str, strike: str, mono: str) -> None:
    styles = styles_of(widget)
    painted = " ".join(styles)
    for word, wanted in ((bold, "bold"), (italic, "italic"), (strike, "strike")):
        others = {"bold", "italic", "strike"} - {wanted}
        assert any(
            getattr(s, wanted) and not any(getattr(s, o) for o in others)
            for s in styles.get(word, [])
        ), (word, wanted, painted)
    assert any(s.bgcolor is not None and s.color is not None for s in styles.get(mono, [])), (
        mono,
        painted,
    )
    assert not any(ch in painted for ch in "*~`"), painted  # the markers are not shown


async def steady_cursors(pilot: Pilot) -> None:
    """For snapshots: a blinking cursor is on or off by timing, so keep every one on."""
    for screen in pilot.app.screen_stack:
        for widget in screen.query("Input, TextArea"):
            widget.cursor_blink = False  # type: ignore[attr-defined]
    await pilot.pause(0.2)


def shown(widget: Static) -> str:
    return str(widget.render())


def screen_of(pilot: Pilot) -> TemplatesScreen:
    return next(s for s in pilot.app.screen_stack if isinstance(s, TemplatesScreen))


def table(pilot: Pilot) -> KeyedTable:
    return screen_of(pilot).query_one("#templates", KeyedTable)


async def open_templates(pilot: Pilot) -> TemplatesScreen:
    await pilot.press("T")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, TemplatesScreen))
    await wait_for(pilot, lambda: screen_of(pilot).loaded)
    return screen_of(pilot)


async def select(pilot: Pilot, name: str) -> None:
    t = table(pilot)
    await wait_for(pilot, lambda: name in [k.value for k in t.rows])
    t.move_cursor(row=t.get_row_index(name))
    await pilot.pause(0.05)


def editor(pilot: Pilot) -> TemplateEditor:
    screen = pilot.app.screen
    assert isinstance(screen, TemplateEditor), type(screen).__name__
    return screen


def error_of(pilot: Pilot, field: str) -> str:
    return editor(pilot).query_one(f"#template-{field}-field", Field).error


# -- the list ----------------------------------------------------------------------------


async def test_t_lists_templates_and_previews_the_highlighted_one(rig: Rig) -> None:
    await rig.service.add_template("welcome", FORMATTED)
    await rig.service.add_template("bye", "Bye {name}")
    async with rig.app().run_test(size=(100, 30)) as pilot:
        screen = await open_templates(pilot)
        assert [k.value for k in table(pilot).rows] == ["bye", "welcome"]
        assert str(table(pilot).get_cell("welcome", "placeholders")) == "{name} {city}"
        await select(pilot, "welcome")
        preview = screen.query_one("#template-preview", Static)
        await wait_for(pilot, lambda: "welcome to old" in shown(preview))
        assert shown(preview) == "Hi Ana, welcome to old <city> shop!"
        assert_whatsapp_styles(preview, "Ana", "welcome", "old", "<city>")
        sample = shown(screen.query_one("#template-sample", Static))
        assert sample == "Sample contact: name=Ana · city=<city>"
        issues = shown(screen.query_one("#template-issues", Static))
        assert "{city} needs a column city in the contact list" in issues
        await select(pilot, "bye")
        await wait_for(pilot, lambda: shown(preview) == "Bye Ana")
        assert footer_keys(pilot) == {"enter", "n", "d", "escape"}
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MainScreen))


async def test_no_templates_says_how_to_write_one(rig: Rig) -> None:
    async with rig.app().run_test(size=(100, 30)) as pilot:
        screen = await open_templates(pilot)
        preview = screen.query_one("#template-preview", Static)
        assert shown(preview) == "No templates yet. Press n to write one."
        assert footer_keys(pilot) == {"enter", "n", "escape"}


# -- creating ----------------------------------------------------------------------------


async def test_n_creates_a_template_with_a_live_whatsapp_preview(rig: Rig) -> None:
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_templates(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, TemplateEditor))
        ed = editor(pilot)
        await pilot.press(*"promo", "enter")  # enter moves on to the text
        assert ed.query_one("#template-text", TextArea).has_focus
        await pilot.press(*FORMATTED)
        preview = ed.query_one("#editor-preview", Static)
        await wait_for(pilot, lambda: shown(preview) == "Hi Ana, welcome to old <city> shop!")
        assert_whatsapp_styles(preview, "Ana", "welcome", "old", "<city>")
        issues = shown(ed.query_one("#editor-issues", Static))
        assert issues == "! {city} needs a column city in the contact list"
        # Sample values are editable; the preview follows.
        ed.query_one("#template-sample", Input).focus()
        await pilot.press(*"city=Lisbon; name=Bo")
        await wait_for(pilot, lambda: shown(preview) == "Hi Bo, welcome to old Lisbon shop!")
        assert_whatsapp_styles(preview, "Bo", "welcome", "old", "Lisbon")
        assert rig.store.templates() == []  # nothing saved before ctrl+s
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, TemplatesScreen))
        await wait_for(pilot, toast_with(pilot, "saved template 'promo'"))
        assert any("needs a column city" in m for m in toasts(pilot))
        await wait_for(pilot, lambda: table(pilot).current_key == "promo")
    assert rig.store.get_template("promo").text == FORMATTED


@pytest.mark.parametrize(
    ("name", "text", "field", "error"),
    [
        ("", "Hi {name}", "name", "template name is empty"),
        ("taken", "Hi {name}", "name", "a template named 'taken' already exists"),
        ("new", "", "text", "template 'new': the text is empty"),
        (
            "new",
            "Hi {first.name}",
            "text",
            "template 'new': line 1, column 4: {first.name} is not a placeholder",
        ),
        ("new", "Hi {name", "text", "template 'new': line 1, column 4: {name has no closing }"),
    ],
)
async def test_a_template_the_service_refuses_shows_on_its_field_and_writes_nothing(
    rig: Rig, name: str, text: str, field: str, error: str
) -> None:
    await rig.service.add_template("taken", "x")
    before = template_rows(rig)
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_templates(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, TemplateEditor))
        ed = editor(pilot)
        ed.query_one("#template-name", Input).value = name
        ed.query_one("#template-text", TextArea).text = text
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: error_of(pilot, field) != "")
        assert error in error_of(pilot, field)
        control = ed.query_one(f"#template-{field}")
        assert control.has_class("-invalid")
        other = "text" if field == "name" else "name"
        assert error_of(pilot, other) == ""
        if "placeholder" in error or "closing" in error:  # also shown live, before saving
            assert "✗" in shown(ed.query_one("#editor-issues", Static))
        control.focus()
        await pilot.press("x")  # editing clears the error
        await wait_for(pilot, lambda: error_of(pilot, field) == "")
        assert not control.has_class("-invalid")
        assert toasts(pilot) == []
        assert isinstance(pilot.app.screen, TemplateEditor)
    assert template_rows(rig) == before


async def test_a_wrong_name_and_a_wrong_text_are_both_marked_at_once(rig: Rig) -> None:
    await rig.service.add_template("taken", "x")
    before = template_rows(rig)
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_templates(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, TemplateEditor))
        ed = editor(pilot)
        ed.query_one("#template-name", Input).value = "taken"
        ed.query_one("#template-text", TextArea).text = "Hi {first.name} and {name"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: error_of(pilot, "name") != "")
        assert error_of(pilot, "name") == "a template named 'taken' already exists"
        # Every broken placeholder, one line each, beside the text.
        assert error_of(pilot, "text").splitlines() == [
            "template 'taken': line 1, column 4: {first.name} is not a placeholder: write a "
            "name of letters, digits, _, - or spaces between { and }, e.g. {first_name}; \\{ "
            "for a literal {",
            "template 'taken': line 1, column 21: {name has no closing }",
        ]
        assert toasts(pilot) == []
    assert template_rows(rig) == before


# -- editing and deleting ----------------------------------------------------------------


async def test_enter_edits_the_text_of_a_template(rig: Rig) -> None:
    await rig.service.add_template("welcome", "Hi {name}")
    await rig.service.add_template("other", "Other")
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_templates(pilot)
        await select(pilot, "welcome")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, TemplateEditor))
        ed = editor(pilot)
        name = ed.query_one("#template-name", Input)
        assert name.value == "welcome" and name.disabled  # campaigns use templates by name
        area = ed.query_one("#template-text", TextArea)
        assert area.text == "Hi {name}" and area.has_focus
        area.text = "*Hello* {name}, ~no~ _news_ ```today```"
        preview = ed.query_one("#editor-preview", Static)
        await wait_for(pilot, lambda: shown(preview) == "Hello Ana, no news today")
        assert_whatsapp_styles(preview, "Hello", "news", "no", "today")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, TemplatesScreen))
        await wait_for(pilot, toast_with(pilot, "saved template 'welcome'"))
        screen = screen_of(pilot)
        await wait_for(
            pilot,
            lambda: (
                shown(screen.query_one("#template-preview", Static)) == "Hello Ana, no news today"
            ),
        )
    assert rig.store.get_template("welcome").text == "*Hello* {name}, ~no~ _news_ ```today```"
    assert rig.store.get_template("other").text == "Other"


async def test_esc_with_unsaved_changes_asks_before_discarding(rig: Rig) -> None:
    await rig.service.add_template("welcome", "Hi {name}")
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_templates(pilot)
        await select(pilot, "welcome")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, TemplateEditor))
        await pilot.press("end", *" changed", "escape")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, TemplateEditor))
        assert editor(pilot).text == "Hi {name} changed"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, TemplatesScreen))
        # Unchanged: esc leaves at once.
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, TemplateEditor))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, TemplatesScreen))
    assert rig.store.get_template("welcome").text == "Hi {name}"


async def test_d_asks_then_deletes_a_template(rig: Rig) -> None:
    await rig.service.add_template("welcome", "Hi {name}")
    await rig.service.add_template("bye", "Bye")
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_templates(pilot)
        await select(pilot, "welcome")
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        question = shown(pilot.app.screen.query_one("#confirm-question", Static))
        assert "Delete template 'welcome'?" in question
        assert "Campaigns created from it keep their own copy of the text" in question
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, TemplatesScreen))
        await pilot.pause(0.2)
        assert [t.name for t in rig.store.templates()] == ["bye", "welcome"]
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        await pilot.press("y")
        await wait_for(pilot, toast_with(pilot, "deleted template 'welcome'"))
        await wait_for(pilot, lambda: [k.value for k in table(pilot).rows] == ["bye"])
    assert [t.name for t in rig.store.templates()] == ["bye"]


async def test_template_text_is_never_read_as_markup(rig: Rig) -> None:
    await rig.service.add_template("[red]x", "[bold]Hi[/bold] {name} :smile:")
    async with rig.app().run_test(size=(100, 30)) as pilot:
        screen = await open_templates(pilot)
        await select(pilot, "[red]x")
        preview = screen.query_one("#template-preview", Static)
        await wait_for(pilot, lambda: shown(preview) == "[bold]Hi[/bold] Ana :smile:")
        assert str(table(pilot).get_cell("[red]x", "name")) == "[red]x"
        await pilot.press("d", "y")
        await wait_for(pilot, toast_with(pilot, "deleted template '[red]x'"))
        assert all(n.markup is False for n in pilot.app._notifications)


# -- snapshots ---------------------------------------------------------------------------


def snapshot_rig(tmp_path: Path) -> Rig:
    rig = make_rig(tmp_path)

    async def setup() -> None:
        await rig.service.add_template("welcome", FORMATTED + "\nReply STOP to stop.")
        await rig.service.add_template(
            "reminder", "Hi {name}, your order {order_id} ships _today_."
        )
        await rig.service.add_template("bye", "Bye *{name}*")

    asyncio.run(setup())
    return rig


async def templates_shown(pilot: Pilot) -> None:
    await open_templates(pilot)
    await select(pilot, "welcome")
    await pilot.pause(0.2)
    await steady_cursors(pilot)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_snapshot_of_the_templates_screen(
    size: tuple[int, int], snap_compare, tmp_path: Path, utc: None
) -> None:
    rig = snapshot_rig(tmp_path)
    assert snap_compare(
        rig.app(session_interval=3600), terminal_size=size, run_before=templates_shown
    )


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_snapshot_of_the_template_editor(
    size: tuple[int, int], snap_compare, tmp_path: Path, utc: None
) -> None:
    rig = snapshot_rig(tmp_path)

    async def editing(pilot: Pilot) -> None:
        await templates_shown(pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, TemplateEditor))
        editor(pilot).query_one("#template-sample", Input).value = "city=Lisbon"
        await pilot.pause(0.3)
        await steady_cursors(pilot)

    assert snap_compare(rig.app(session_interval=3600), terminal_size=size, run_before=editing)
