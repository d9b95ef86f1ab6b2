"""Pilot tests, at 80x24, of the keys that act on one campaign: delete (D, ctrl+d: asks
first, never a Running one), clone (C) and edit (e) through a small form whose errors speak
its language, and r, p, c, D, C, e in the details screen; each offered only where it
applies, every key drawn in full, the help still fitting the screen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static

from tests.test_sessions_screen import toast_with, toasts
from tests.test_templates_screen import steady_cursors
from tests.test_tui import footer_keys, select, shown, table
from tests.tui_helpers import SIZE_IDS, SIZES, Rig, make_rig, wait_for
from waha_tui.models import utcnow
from waha_tui.status import CampaignStatus
from waha_tui.store import NotFound
from waha_tui.tui.format import DELETING_NOTE
from waha_tui.tui.screens.campaign_form import CampaignFormModal
from waha_tui.tui.screens.confirm import ConfirmationModal
from waha_tui.tui.screens.details import DetailsScreen
from waha_tui.tui.screens.help import KEYS, HelpScreen
from waha_tui.tui.screens.main import MainScreen
from waha_tui.tui.widgets.form import Field
from waha_tui.tui.widgets.key_footer import KeyFooter, KeyLines

S = CampaignStatus
SIZE = (80, 24)
ROW_KEYS = {"Resume", "Pause", "Cancel", "Edit", "Clone", "Delete"}


async def screen_is(pilot: Pilot, kind: type) -> None:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, kind))


def question(pilot: Pilot) -> str:
    return " ".join(shown(pilot.app.screen.query_one("#confirm-question", Static)).split())


def put(pilot: Pilot, field: str, value: str) -> None:
    pilot.app.screen.query_one(f"#form-{field}", Input).value = value


def value(pilot: Pilot, field: str) -> str:
    return pilot.app.screen.query_one(f"#form-{field}", Input).value


def error(pilot: Pilot, field: str) -> str:
    return pilot.app.screen.query_one(f"#form-{field}-field", Field).error


def footer_text(pilot: Pilot) -> list[str]:
    """The footer as drawn: its lines."""
    lines = pilot.app.screen.query_one(KeyFooter).query_one(KeyLines)
    return lines.render().plain.splitlines()


def running_elsewhere(rig: Rig, name: str, seed: int) -> int:
    """Running in another process that holds a live lease: the dashboard leaves it Running."""
    cid = rig.add(name, 5, status=S.RUNNING, done=2, seed=seed)
    rig.force(cid, lease_owner="other-host:1:x", lease_until=utcnow() + timedelta(hours=1))
    return cid


# -- delete ------------------------------------------------------------------------------


async def test_D_asks_first_then_deletes_and_the_row_goes(rig: Rig) -> None:
    keep = rig.add("Keep", 3)
    cid = rig.add("Old news", 4, status=S.COMPLETED, done=4, seed=1)
    async with rig.app().run_test(size=SIZE) as pilot:
        await select(pilot, cid)
        assert "Delete" in footer_keys(pilot)
        await pilot.press("D")
        await screen_is(pilot, ConfirmationModal)
        assert question(pilot) == (
            f"Delete campaign {cid} “Old news” (Completed, 4 recipients) with its history? "
            "This cannot be undone."
        )
        await pilot.press("n")
        await screen_is(pilot, MainScreen)
        await pilot.pause(0.3)
        assert rig.store.get_campaign(cid).status == S.COMPLETED
        await pilot.press("ctrl+d")  # k9s's key, the same
        await screen_is(pilot, ConfirmationModal)
        await pilot.press("y")
        await wait_for(pilot, lambda: [k.value for k in table(pilot).rows] == [str(keep)])
        await wait_for(
            pilot,
            toast_with(pilot, f"campaign {cid} 'Old news' deleted, with its recipients, history"),
        )
    with pytest.raises(NotFound):
        rig.store.get_campaign(cid)
    assert rig.store.recipients(cid) == [] and rig.store.events(cid) == []
    assert len(rig.store.recipients(keep)) == 3


async def test_keys_show_only_where_they_apply_and_do_nothing_elsewhere(rig: Rig) -> None:
    ids = {
        S.SCHEDULED: rig.add("Scheduled one"),
        S.RUNNING: running_elsewhere(rig, "Running one", 1),
        S.PAUSED: rig.add("Paused one", status=S.PAUSED, done=2, reason="why", seed=2),
        S.COMPLETED: rig.add("Done one", status=S.COMPLETED, done=5, seed=3),
        S.FAILED: rig.add("Failed one", status=S.FAILED, done=5, seed=4),
        S.CANCELLED: rig.add("Cancelled one", status=S.CANCELLED, seed=5),
    }
    offered = {
        S.SCHEDULED: {"Pause", "Cancel", "Edit", "Clone", "Delete"},
        S.RUNNING: {"Pause", "Cancel", "Clone"},
        S.PAUSED: {"Resume", "Cancel", "Edit", "Clone", "Delete"},
        S.COMPLETED: {"Clone", "Delete"},
        S.FAILED: {"Clone", "Delete"},
        S.CANCELLED: {"Clone", "Delete"},
    }
    refused = {
        S.RUNNING: ("D", "ctrl+d", "e", "r"),
        S.COMPLETED: ("e", "p", "c"),
        S.CANCELLED: ("e", "r", "c"),
    }
    before = {c.id: c.model_dump() for c in rig.store.list_campaigns()}
    async with rig.app().run_test(size=SIZE) as pilot:
        for status, cid in ids.items():
            await select(pilot, cid)
            keys = footer_keys(pilot)
            assert keys & ROW_KEYS == offered[status], status
            # Every key the footer offers is drawn, whole, within 80 columns.
            drawn = footer_text(pilot)
            assert all(len(line) <= SIZE[0] for line in drawn)
            for key in keys | {"Lists", "Templates", "Help", "Quit"}:
                assert key in " ".join(drawn), (status, key)
            for key in refused.get(status, ()):  # not offered: nothing happens, no question
                await pilot.press(key)
                await pilot.pause(0.2)
                assert isinstance(pilot.app.screen, MainScreen), (status, key)
    assert {c.id: c.model_dump() for c in rig.store.list_campaigns()} == before


async def test_a_delete_cut_short_shows_as_such_and_D_finishes_it(rig: Rig) -> None:
    cid = rig.add("Half gone", 6)
    rig.store.mark_deleting(cid)  # a process that died during its delete
    rig.store.delete_recipients(cid, 4)
    async with rig.app().run_test(size=SIZE) as pilot:
        await select(pilot, cid)
        assert str(table(pilot).get_cell(str(cid), "status")) == "× Deleting"
        info = " ".join(shown(pilot.app.screen.query_one("#row-info", Static)).split())
        assert info == f"#{cid} × Deleting: {DELETING_NOTE}"
        assert footer_keys(pilot) & ROW_KEYS == {"Delete"}  # nothing else applies
        await pilot.press("D")
        await screen_is(pilot, ConfirmationModal)
        assert question(pilot) == (
            f"Campaign {cid} “Half gone” was being deleted. Finish deleting it?"
        )
        await pilot.press("y")
        await wait_for(pilot, lambda: table(pilot).row_count == 0)
    with pytest.raises(NotFound):
        rig.store.get_campaign(cid)


async def test_while_its_delete_runs_a_campaign_shows_deleting_and_D_is_not_offered(
    rig: Rig,
) -> None:
    cid = rig.add("Big", 30)
    rig.service.delete_batch, rig.service.delete_rest = 10, 0.5  # three batches, slowly
    async with rig.app().run_test(size=SIZE) as pilot:
        await select(pilot, cid)
        await pilot.press("D")
        await screen_is(pilot, ConfirmationModal)
        await pilot.press("y")
        await wait_for(pilot, lambda: "Deleting" in str(table(pilot).get_cell(str(cid), "status")))
        assert "Delete" not in footer_keys(pilot)  # under way here: not twice
        await pilot.press("D")
        await pilot.pause(0.2)
        assert isinstance(pilot.app.screen, MainScreen)
        await wait_for(pilot, lambda: table(pilot).row_count == 0)
    with pytest.raises(NotFound):
        rig.store.get_campaign(cid)


async def test_details_of_a_campaign_deleted_elsewhere_go_back_to_the_list(rig: Rig) -> None:
    cid = rig.add("Gone soon", 2)
    async with rig.app().run_test(size=SIZE) as pilot:
        await select(pilot, cid)
        await pilot.press("enter")
        await screen_is(pilot, DetailsScreen)
        await rig.service.delete_campaign(cid)  # another process, say
        await screen_is(pilot, MainScreen)
        await wait_for(pilot, toast_with(pilot, f"no campaign with id {cid}"))


# -- edit and clone ----------------------------------------------------------------------


async def test_e_edits_name_start_and_delay_and_errors_speak_the_forms_words(
    rig: Rig, utc: None
) -> None:
    cid = rig.add("Spring", 3, delay=(30.0, 60.0))
    before = rig.store.get_campaign(cid)
    async with rig.app().run_test(size=SIZE) as pilot:
        await select(pilot, cid)
        await pilot.press("e")
        await screen_is(pilot, CampaignFormModal)
        assert [value(pilot, f) for f in ("name", "at", "delay")] == [
            "Spring",
            "2026-11-28 09:30",
            "30-60",
        ]
        put(pilot, "name", " ")
        put(pilot, "at", "soon")
        put(pilot, "delay", "9-3")
        await pilot.press("enter")
        await wait_for(pilot, lambda: error(pilot, "delay") != "")
        assert [error(pilot, f) for f in ("name", "at", "delay")] == [
            "Name is empty",
            "Start 'soon' is not an ISO-8601 date and time, e.g. 2026-12-01T09:30",
            "Delay '9-3': MIN is larger than MAX",
        ]
        assert pilot.app.screen.query_one("#form-name", Input).has_focus  # the first wrong one
        assert rig.store.get_campaign(cid) == before
        put(pilot, "name", "Summer")
        put(pilot, "at", "2030-01-02 03:04")
        put(pilot, "delay", "40-70")
        await wait_for(pilot, lambda: error(pilot, "name") == "")  # a fixed one's error clears
        await pilot.press("enter")
        await screen_is(pilot, MainScreen)
        await wait_for(
            pilot,
            toast_with(
                pilot,
                f"campaign {cid}: name 'Spring' → 'Summer'; start 2026-11-28 09:30 UTC → "
                "2030-01-02 03:04 UTC; delay 30-60 s → 40-70 s",
            ),
        )
        await wait_for(pilot, lambda: str(table(pilot).get_cell(str(cid), "name")) == "Summer")
    camp = rig.store.get_campaign(cid)
    assert (camp.name, camp.scheduled_at, camp.delay_min, camp.delay_max) == (
        "Summer",
        datetime(2030, 1, 2, 3, 4, tzinfo=UTC),
        40.0,
        70.0,
    )
    assert rig.store.events(cid)[-1].kind == "edited"
    assert not any("--" in t for t in toasts(pilot))


async def test_e_says_why_the_session_stays_and_an_untouched_form_changes_nothing(
    rig: Rig,
) -> None:
    cid = rig.add("Spring", 3, status=S.PAUSED, done=1, reason="paused by the operator")
    before = rig.store.events(cid)
    async with rig.app().run_test(size=SIZE) as pilot:
        await select(pilot, cid)
        await pilot.press("e")
        await screen_is(pilot, CampaignFormModal)
        note = shown(pilot.app.screen.query_one("#form-session-note", Static))
        assert " ".join(note.split()) == (
            "Session 'default' stays: what it sent (a message id, an unknown delivery) belongs "
            "to that number; clone the campaign onto another session instead."
        )
        await pilot.press("enter")
        await screen_is(pilot, MainScreen)
        await wait_for(pilot, toast_with(pilot, f"campaign {cid}: nothing changed"))
    assert rig.store.events(cid) == before


async def test_C_clones_into_a_new_campaign_under_the_cursor(rig: Rig) -> None:
    cid = rig.add("Spring", 3, status=S.COMPLETED, done=3)
    async with rig.app().run_test(size=SIZE) as pilot:
        await select(pilot, cid)
        await pilot.press("C")
        await screen_is(pilot, CampaignFormModal)
        assert [value(pilot, f) for f in ("name", "at", "session")] == [
            "Spring (copy)",
            "",
            "default",
        ]
        put(pilot, "at", "2031-01-02 03:04")
        await pilot.press("enter")
        await screen_is(pilot, MainScreen)
        await wait_for(pilot, lambda: len(rig.store.list_campaigns()) == 2)
        new = max(c.id or 0 for c in rig.store.list_campaigns())
        await wait_for(pilot, lambda: table(pilot).current_key == str(new))
        await wait_for(
            pilot,
            toast_with(pilot, f"campaign {new} 'Spring (copy)' cloned from campaign {cid}: 3 "),
        )
    camp = rig.store.get_campaign(new)
    assert (camp.name, camp.status, camp.total) == ("Spring (copy)", S.SCHEDULED, 3)
    assert camp.scheduled_at == datetime(2031, 1, 2, 3, 4).astimezone(UTC)
    assert [(r.status, r.message_id) for r in rig.store.recipients(new)] == [("pending", None)] * 3


# -- the details screen ------------------------------------------------------------------


async def test_details_r_p_c_and_D_work_as_on_the_main_screen(rig: Rig) -> None:
    cid = rig.add("Later", 3)
    other = rig.add("Other", 2, seed=1)
    async with rig.app().run_test(size=SIZE) as pilot:
        await select(pilot, cid)
        await pilot.press("enter")
        await screen_is(pilot, DetailsScreen)
        await wait_for(pilot, lambda: footer_keys(pilot) & ROW_KEYS == {
            "Pause", "Cancel", "Edit", "Clone", "Delete"})  # fmt: skip
        await pilot.press("p")
        await wait_for(pilot, lambda: rig.store.get_campaign(cid).status == S.PAUSED)
        # A Scheduled campaign had no message in flight to wait for.
        await wait_for(pilot, toast_with(pilot, f"campaign {cid} paused"))
        assert not any("in flight" in t for t in toasts(pilot))
        await wait_for(pilot, lambda: "Resume" in footer_keys(pilot))
        await pilot.press("r")
        await wait_for(pilot, lambda: rig.store.get_campaign(cid).status == S.COMPLETED)
        await wait_for(pilot, lambda: footer_keys(pilot) & ROW_KEYS == {"Clone", "Delete"})
        assert len(rig.sim.state.sent()) == 3
        await pilot.press("D")
        await screen_is(pilot, ConfirmationModal)
        await pilot.press("y")
        await screen_is(pilot, MainScreen)  # back to the list, where its row goes
        await wait_for(pilot, lambda: [k.value for k in table(pilot).rows] == [str(other)])

        await select(pilot, other)
        await pilot.press("enter")
        await screen_is(pilot, DetailsScreen)
        await wait_for(pilot, lambda: "Cancel" in footer_keys(pilot))
        await pilot.press("c")
        await screen_is(pilot, ConfirmationModal)
        assert question(pilot).startswith(f"Cancel campaign {other} “Other”? 2 recipients")
        await pilot.press("y")
        await wait_for(pilot, lambda: rig.store.get_campaign(other).status == S.CANCELLED)
        assert isinstance(pilot.app.screen, DetailsScreen)
    with pytest.raises(NotFound):
        rig.store.get_campaign(cid)


async def test_details_e_and_C_open_the_form(rig: Rig) -> None:
    cid = rig.add("Spring", 2)
    async with rig.app().run_test(size=SIZE) as pilot:
        await select(pilot, cid)
        await pilot.press("enter")
        await screen_is(pilot, DetailsScreen)
        await wait_for(pilot, lambda: "Edit" in footer_keys(pilot))
        await pilot.press("e")
        await screen_is(pilot, CampaignFormModal)
        put(pilot, "name", "Renamed")
        await pilot.press("enter")
        await screen_is(pilot, DetailsScreen)
        await wait_for(pilot, lambda: "Renamed" in shown(pilot.app.screen.query_one(Static)))
        await pilot.press("C")
        await screen_is(pilot, CampaignFormModal)
        assert value(pilot, "name") == "Renamed (copy)"
        await pilot.press("escape")  # nothing written
        await screen_is(pilot, DetailsScreen)
    assert [c.name for c in rig.store.list_campaigns()] == ["Renamed"]


async def test_p_on_a_running_campaign_says_it_waits_for_the_message_in_flight(
    rig: Rig,
) -> None:
    cid = rig.add("Long", 30, status=S.PAUSED, delay=(0.05, 0.05))
    async with rig.app().run_test(size=SIZE) as pilot:
        await select(pilot, cid)
        await pilot.press("r")
        await wait_for(pilot, lambda: len(rig.sim.state.sent()) >= 2)
        await wait_for(pilot, lambda: "Pause" in footer_keys(pilot))
        await pilot.press("p")
        await wait_for(pilot, lambda: rig.store.get_campaign(cid).status == S.PAUSED)
        await wait_for(pilot, toast_with(pilot, f"campaign {cid} pausing after the message in"))


# -- words -------------------------------------------------------------------------------


async def test_no_campaigns_says_what_to_do(rig: Rig) -> None:
    async with rig.app().run_test(size=SIZE) as pilot:
        hint = pilot.app.screen.query_one("#empty-hint", Static)
        await wait_for(pilot, lambda: hint.display and shown(hint).strip())
        said = " ".join(shown(hint).split())
        assert "Press N to create one" in said and "`waha-tui demo`" in said


async def test_the_help_fits_80x24_with_every_key(rig: Rig) -> None:
    rig.add("Any")
    async with rig.app().run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await screen_is(pilot, HelpScreen)
        await pilot.pause(0.2)
        drawn = "\n".join(
            line.text
            for line in pilot.app.screen.query_one("#help-keys").render_lines(
                pilot.app.screen.query_one("#help-keys").region.reset_offset
            )
        )
        for key, action in KEYS:
            assert key in drawn and action.split()[0] in drawn, key
        # Nothing hidden below or to the right: no scrolling needed to read any of it.
        box = pilot.app.screen.query_one("#help-box")
        assert (box.max_scroll_y, box.max_scroll_x) == (0, 0)
        assert box.region.bottom <= SIZE[1] and box.region.right <= SIZE[0]
        listed = " ".join(k for k, _ in KEYS)
        for key in ("D", "ctrl+d", "C", "e", "L", "T"):
            assert key in listed


# -- how the form looks ------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_snapshot_of_the_edit_form_refusing_two_fields(
    size: tuple[int, int], snap_compare: Any, tmp_path: Path, utc: None
) -> None:
    rig = make_rig(tmp_path)
    rig.add("Spring sale", 12, status=S.PAUSED, done=3, delay=(30.0, 60.0))
    rig.freeze_times()

    async def refused(pilot: Pilot) -> None:
        await pilot.pause(0.3)
        await pilot.press("e")
        await screen_is(pilot, CampaignFormModal)
        put(pilot, "name", "")
        put(pilot, "delay", "60-30")
        await pilot.press("enter")
        await wait_for(pilot, lambda: error(pilot, "delay") != "")
        await steady_cursors(pilot)

    assert snap_compare(rig.app(session_interval=3600), terminal_size=size, run_before=refused)
