"""Pilot tests of every key of the dashboard, against the simulator and a real SQLite file."""

from __future__ import annotations

import io
import logging
import os
import pwd
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Footer, Input, Static

from tests.tui_helpers import Rig, wait_for
from waha_tui.history import Entry, Kind, record
from waha_tui.status import CampaignStatus
from waha_tui.store import C, Store
from waha_tui.tui.app import WahaTuiApp
from waha_tui.tui.screens.confirm import ConfirmationModal
from waha_tui.tui.screens.details import DetailsScreen
from waha_tui.tui.screens.help import KEYS, HelpScreen
from waha_tui.tui.screens.main import MainScreen
from waha_tui.tui.widgets.keyed_table import KeyedTable

S = CampaignStatus


def table(pilot: Pilot) -> KeyedTable:
    return pilot.app.screen.query_one("#campaigns", KeyedTable)


async def select(pilot: Pilot, campaign_id: int) -> None:
    t = table(pilot)
    await wait_for(pilot, lambda: str(campaign_id) in [k.value for k in t.rows])
    t.move_cursor(row=t.get_row_index(str(campaign_id)))
    await pilot.pause(0.05)


def footer_keys(pilot: Pilot) -> set[str]:
    screen = pilot.app.screen
    pilot.app.screen.query_one(Footer)
    return {
        b.description
        for _key, (_node, b, enabled, _tooltip) in screen.active_bindings.items()
        if b.show and enabled
    }


def shown(widget: Static) -> str:
    """What a Static shows, as plain text (its content may be any Rich renderable)."""
    console = Console(width=200, file=io.StringIO())
    console.print(widget.content)
    return console.file.getvalue()  # type: ignore[attr-defined]


def main_screen(pilot: Pilot) -> MainScreen:
    screen = pilot.app.screen
    assert isinstance(screen, MainScreen)
    return screen


async def test_r_is_not_offered_and_does_nothing_on_rows_that_are_not_paused(rig: Rig) -> None:
    ids = {
        S.SCHEDULED: rig.add("Scheduled one"),
        S.COMPLETED: rig.add("Done one", status=S.COMPLETED, done=5),
        S.CANCELLED: rig.add("Cancelled one", status=S.CANCELLED),
        S.FAILED: rig.add("Failed one", status=S.FAILED, done=5),  # no recipient left
        S.PAUSED: rig.add("Paused one", status=S.PAUSED, done=2, reason="session dropped"),
    }
    before = {c.id: c.model_dump() for c in rig.store.list_campaigns()}
    async with rig.app().run_test(size=(120, 30)) as pilot:
        for status, cid in ids.items():
            await select(pilot, cid)
            offered = "Resume" in footer_keys(pilot)
            assert offered == (status == S.PAUSED), status
            if status != S.PAUSED:
                await pilot.press("r")
                await pilot.pause(0.3)
        assert rig.sim.state.sent() == []
    after = {c.id: c.model_dump() for c in rig.store.list_campaigns()}
    assert after == before


async def test_r_resumes_a_paused_campaign_and_sends_only_the_rest(rig: Rig) -> None:
    cid = rig.add("Half done", 8, status=S.PAUSED, done=3, reason="session 'default' dropped")
    other = rig.add("Other", 2, status=S.PAUSED, done=0, reason="paused by the operator")
    async with rig.app().run_test(size=(120, 30)) as pilot:
        app = pilot.app
        assert isinstance(app, WahaTuiApp)
        await select(pilot, other)
        asked = app._prep
        # Highlighted, its resume's questions to WAHA are on their way; moved on, dropped.
        assert asked is not None and asked.campaign_id == other
        await select(pilot, cid)
        assert app._prep is not None and app._prep.campaign_id == cid
        assert asked.check.cancelled() or asked.check.done()
        used = app._prep
        await pilot.press("r")
        assert app._prep is None and not used.check.cancelled()  # the resume took it
        await wait_for(pilot, lambda: rig.store.get_campaign(cid).status == S.COMPLETED)
        # The row shows it too, from the table's own cells.
        await wait_for(pilot, lambda: "Completed" in str(table(pilot).get_cell(str(cid), "status")))
    sent = [m.chat_id for m in rig.sim.state.sent()]
    expected = [f"4915{0:02d}{i:06d}@c.us" for i in range(3, 8)]
    assert sent == expected  # only the remaining five, once each, in order
    camp = rig.store.get_campaign(cid)
    assert (camp.sent, camp.next_index, camp.failed) == (8, 8, 0)


async def test_r_resumes_a_failed_campaign_with_recipients_left_and_only_there(
    rig: Rig,
) -> None:
    left = rig.add("Died mid-way", 8, status=S.FAILED, done=3)
    rig.force(left, last_error="unexpected error: database is locked")
    none_left = rig.add("Failed at the end", 4, status=S.FAILED, done=4)
    paused = rig.add("Paused one", status=S.PAUSED, done=1, reason="x", seed=1)
    async with rig.app().run_test(size=(120, 30)) as pilot:
        # The footer follows the row under the cursor, read from the model.
        for cid, offered in ((none_left, False), (left, True), (paused, True)):
            await select(pilot, cid)
            assert ("Resume" in footer_keys(pilot)) == offered, cid
        await select(pilot, none_left)
        await pilot.press("r")
        await pilot.pause(0.3)
        assert rig.store.get_campaign(none_left).status == S.FAILED
        await select(pilot, left)
        info = str(pilot.app.screen.query_one("#row-info", Static).render())
        assert "r resumes it from recipient 4" in info
        await pilot.press("r")
        await wait_for(pilot, lambda: rig.store.get_campaign(left).status == S.COMPLETED)
        await wait_for(
            pilot, lambda: "Completed" in str(table(pilot).get_cell(str(left), "status"))
        )
        assert "Resume" not in footer_keys(pilot)
    assert [m.chat_id for m in rig.sim.state.sent()] == [
        f"4915{0:02d}{i:06d}@c.us" for i in range(3, 8)
    ]
    camp = rig.store.get_campaign(left)
    assert (camp.sent, camp.next_index, camp.failed) == (8, 8, 0)
    assert rig.store.get_campaign(paused).status == S.PAUSED


async def test_a_running_campaign_waiting_for_its_session_says_so_in_its_row(
    rig: Rig, utc: None
) -> None:
    cid = rig.add("Flapping", 5)
    owner = "other-host:4242:abcd"
    rig.store.claim(cid, owner, 3600)  # its run is in another process
    async with rig.app().run_test(size=(200, 30)) as pilot:
        await select(pilot, cid)
        await wait_for(pilot, lambda: main_screen(pilot).campaigns[cid].status == S.RUNNING)
        assert table(pilot).get_cell(str(cid), "reason").plain == ""
        rig.store.set_waiting(cid, owner, "waiting for session 'default' (STARTING)")
        since = rig.store.get_campaign(cid).waiting_since
        assert since is not None
        expected = f"waiting for session 'default' (STARTING) since {since:%H:%M}"
        await wait_for(pilot, lambda: table(pilot).get_cell(str(cid), "reason").plain == expected)
        info = str(pilot.app.screen.query_one("#row-info", Static).render())
        assert expected in info
        rig.store.set_waiting(cid, owner, None)  # the session came back
        await wait_for(pilot, lambda: table(pilot).get_cell(str(cid), "reason").plain == "")
    assert rig.sim.state.sent() == []


async def test_a_second_r_while_a_resume_is_in_flight_does_nothing(rig: Rig) -> None:
    cid = rig.add("Once", 4, status=S.PAUSED, done=1)
    async with rig.app().run_test(size=(120, 30)) as pilot:
        await select(pilot, cid)
        await pilot.press("r", "r", "r")
        await wait_for(pilot, lambda: rig.store.get_campaign(cid).status == S.COMPLETED)
        await pilot.pause(0.3)
        errors = [n.message for n in pilot.app._notifications if n.severity == "error"]
        assert errors == []
    assert len(rig.sim.state.sent()) == 3


async def test_resume_refused_while_the_session_is_stopped_shows_a_toast(rig: Rig) -> None:
    cid = rig.add("Dropped", 4, status=S.PAUSED, done=2, reason="session dropped")
    rig.sim.state.set_status("default", "STOPPED")
    async with rig.app().run_test(size=(120, 30)) as pilot:
        await select(pilot, cid)
        await pilot.press("r")
        await wait_for(pilot, lambda: any("STOPPED" in n.message for n in pilot.app._notifications))
        message = next(n.message for n in pilot.app._notifications if "STOPPED" in n.message)
        assert "session 'default' is STOPPED" in message
        assert "Resume" in footer_keys(pilot)  # offered again once the refusal is back
    assert rig.store.get_campaign(cid).status == S.PAUSED
    assert rig.sim.state.sent() == []


async def test_p_pauses_a_running_campaign_mid_way(rig: Rig) -> None:
    cid = rig.add("Slow", 30, status=S.PAUSED, delay=(0.15, 0.15))
    async with rig.app().run_test(size=(120, 30)) as pilot:
        await select(pilot, cid)
        await pilot.press("r")
        await wait_for(pilot, lambda: len(rig.sim.state.sent()) >= 3)
        await wait_for(pilot, lambda: main_screen(pilot).campaigns[cid].status == S.RUNNING)
        assert "Pause" in footer_keys(pilot)
        await pilot.press("p")
        await wait_for(pilot, lambda: rig.store.get_campaign(cid).status == S.PAUSED)
    camp = rig.store.get_campaign(cid)
    sent = rig.sim.state.sent()
    assert 3 <= camp.next_index < 30
    assert len(sent) == camp.next_index == camp.sent  # nothing sent past next_index
    assert camp.pause_reason == "paused by the operator"


async def test_c_asks_first_and_then_cancels(rig: Rig) -> None:
    cid = rig.add("To cancel", 6)
    async with rig.app().run_test(size=(120, 30)) as pilot:
        await select(pilot, cid)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MainScreen))
        assert rig.store.get_campaign(cid).status == S.SCHEDULED
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: rig.store.get_campaign(cid).status == S.CANCELLED)
        await wait_for(pilot, lambda: "Cancel" not in footer_keys(pilot))


async def test_the_table_follows_another_process_without_moving_the_cursor(
    rig: Rig, tmp_path: Path
) -> None:
    first = rig.add("First", 3)
    second = rig.add("Second", 3, seed=1)
    rig.add("Third", 3, seed=2)
    db = str(tmp_path / "campaigns.db")
    csv = tmp_path / "more.csv"
    csv.write_text("phone,name\n4917000000001,Zoe\n", encoding="utf-8")
    async with rig.app().run_test(size=(120, 30)) as pilot:
        await select(pilot, second)
        t = table(pilot)
        cli = [sys.executable, "-m", "waha_tui", "--db", db]
        subprocess.run(
            [*cli, "campaign", "pause", str(first)], check=True, timeout=60, capture_output=True
        )
        subprocess.run(
            [
                *cli,
                "campaign",
                "create",
                "--name",
                "From the CLI",
                "--contacts",
                str(csv),
                "--message",
                "Hi {name}",
            ],
            check=True,
            timeout=60,
            capture_output=True,
        )
        await wait_for(pilot, lambda: t.row_count == 4, timeout=5)
        await wait_for(pilot, lambda: "Paused" in str(t.get_cell(str(first), "status")))
        # Newest first: the new one on top, the cursor still on its campaign, a row lower.
        assert t.current_key == str(second)
        assert t.cursor_row == 2
        assert [r.key.value for r in t.ordered_rows] == ["4", "3", "2", "1"]


async def test_enter_opens_details_with_recipients_and_esc_goes_back(rig: Rig) -> None:
    cid = rig.add("Detailed", 4, status=S.PAUSED, done=2, reason="session 'default' dropped")
    async with rig.app().run_test(size=(120, 30)) as pilot:
        await select(pilot, cid)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, DetailsScreen))
        rows = pilot.app.screen.query_one("#recipients", KeyedTable)
        await wait_for(pilot, lambda: rows.row_count == 4)
        assert str(rows.get_cell("0", "status")) == "sent"
        assert str(rows.get_cell("3", "status")) == "pending"
        summary = str(pilot.app.screen.query_one("#details-summary").render())
        assert summary  # rendered
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MainScreen))


async def test_details_say_who_created_it_and_h_shows_its_history(rig: Rig) -> None:
    cid = rig.add("Told", 3)
    rig.store.claim(cid, "runner-x", 30)
    with rig.store.write() as conn:  # WAHA's words, with what a terminal would obey
        record(conn, cid, Entry(Kind.WAITING, "waiting for \x1b[2Jsession\n'default'"))
    rig.store.finish(cid, "runner-x", S.PAUSED, pause_reason="session 'default' dropped")
    me = f"{pwd.getpwuid(os.geteuid()).pw_name}@{socket.gethostname()}"
    # Wide enough for every cell whole (at 80 columns they are cut: test_details).
    async with rig.app().run_test(size=(200, 30)) as pilot:
        await select(pilot, cid)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, DetailsScreen))
        screen = pilot.app.screen
        summary = screen.query_one("#details-summary", Static)
        await wait_for(pilot, lambda: f"by {me}" in shown(summary))
        history = screen.query_one("#history", KeyedTable)
        assert "History" in footer_keys(pilot) and not history.display
        await pilot.press("h")
        await wait_for(pilot, lambda: history.row_count == 4)
        assert history.display and history.has_focus
        assert not screen.query_one("#recipients", KeyedTable).display
        assert "History" in str(screen.query_one("#details-title", Static).render())
        columns = ("pos", "kind", "by", "detail")
        rows = [[str(history.get_cell(k.value, c)) for c in columns] for k in history.rows]
        by = f"{me} pid {os.getpid()}"
        assert rows == [
            ["1", "created", by, "3 recipients, on session 'default'"],
            ["2", "claimed", by, "on session 'default', from recipient 1 of 3"],
            ["3", "waiting", by, "waiting for \\x1b[2Jsession\\x0a'default'"],
            ["4", "paused", by, "session 'default' dropped"],
        ]
        assert history.cursor_row == 3  # on the newest
        # Live: an entry written elsewhere shows up without a key, and the cursor follows.
        rig.store.transition(cid, S.CANCELLED)
        await wait_for(pilot, lambda: history.row_count == 5)
        assert str(history.get_cell(history.current_key, "kind")) == "cancelled"
        await pilot.press("h")
        await wait_for(pilot, lambda: screen.query_one("#recipients", KeyedTable).display)
        assert not history.display
        assert "Recipients" in str(screen.query_one("#details-title", Static).render())


async def test_what_the_dashboard_catches_is_logged(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    cid = rig.add("Gone soon", 2)
    async with rig.app().run_test(size=(80, 24)) as pilot:
        await select(pilot, cid)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, DetailsScreen))
        with rig.store.write() as conn:  # deleted behind the screen's back
            conn.execute(sa.delete(C).where(C.c.id == cid))
        gone = f"campaign {cid}: reading its details: no campaign with id {cid}"
        await wait_for(pilot, lambda: gone in caplog.messages)

        async def broken() -> None:
            raise RuntimeError("a bug in an action")

        pilot.app.run_task(broken())  # a worker that fails must not fail silently
        await wait_for(pilot, lambda: any(r.name == "waha_tui.tui.app" for r in caplog.records))
    (record,) = [r for r in caplog.records if r.name == "waha_tui.tui.app"]
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert record.exc_info[0] is RuntimeError
    assert record.getMessage() == "worker 'broken' (actions): unexpected RuntimeError"


async def test_slash_filters_by_name_or_status_and_esc_clears(rig: Rig) -> None:
    rig.add("Welcome series")
    rig.add("Black Friday", status=S.PAUSED)
    rig.add("Renewals", status=S.COMPLETED)
    async with rig.app().run_test(size=(120, 30)) as pilot:
        t = table(pilot)
        await wait_for(pilot, lambda: t.row_count == 3)
        await pilot.press("slash")
        assert pilot.app.screen.query_one("#filter", Input).has_focus
        await pilot.press(*"friday")
        await wait_for(pilot, lambda: t.row_count == 1)
        await pilot.press("enter")
        assert t.has_focus
        await pilot.press("slash", *["backspace"] * len("friday"))
        await pilot.press(*"paused")
        await wait_for(pilot, lambda: [k.value for k in t.rows] == ["2"])
        await pilot.press("escape")
        await wait_for(pilot, lambda: t.row_count == 3)


async def test_question_mark_lists_every_key(rig: Rig) -> None:
    rig.add("Any")
    async with rig.app().run_test(size=(120, 30)) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))
        listed = " ".join(k for k, _ in KEYS)
        for binding in MainScreen.BINDINGS:
            key = {"slash": "/", "question_mark": "?", "escape": "esc"}.get(
                binding.key, binding.key
            )
            assert key in listed, key
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MainScreen))


async def test_q_while_running_asks_then_leaves_it_paused_at_the_right_place(rig: Rig) -> None:
    cid = rig.add("Long", 40, status=S.PAUSED, delay=(0.1, 0.1))
    async with rig.app().run_test(size=(120, 30)) as pilot:
        await select(pilot, cid)
        await pilot.press("r")
        await wait_for(pilot, lambda: len(rig.sim.state.sent()) >= 2)
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: not pilot.app.is_running, timeout=10)
    camp = rig.store.get_campaign(cid)
    assert camp.status == S.PAUSED
    assert camp.pause_reason == "stopped with the dashboard"
    assert camp.next_index == len(rig.sim.state.sent()) == camp.sent
    assert camp.lease_owner is None


async def test_q_with_nothing_running_quits_without_asking(rig: Rig) -> None:
    rig.add("Idle")
    async with rig.app().run_test(size=(120, 30)) as pilot:
        await pilot.press("q")
        await wait_for(pilot, lambda: not pilot.app.is_running)


async def test_a_campaign_left_running_by_a_dead_process_shows_as_interrupted(rig: Rig) -> None:
    cid = rig.add("Orphan", 5, status=S.RUNNING, done=2)  # no lease: its owner is gone
    async with rig.app().run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: cid in main_screen(pilot).campaigns)
        camp = main_screen(pilot).campaigns[cid]
        assert camp.status == S.PAUSED
        assert "interrupted" in (camp.pause_reason or "")


async def test_the_scheduler_starts_due_campaigns_one_per_session(rig: Rig) -> None:
    a = rig.add("A", 3, delay=(0.05, 0.05))
    b = rig.add("B", 3, delay=(0.05, 0.05), seed=1)
    seen_together: list[bool] = []

    def both_running() -> None:
        running = [c for c in rig.store.list_campaigns() if c.status == S.RUNNING]
        seen_together.append(len(running) > 1)

    async with rig.app(run_scheduler=True, scheduler_interval=0.05).run_test() as pilot:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            both_running()
            if all(rig.store.get_campaign(x).status == S.COMPLETED for x in (a, b)):
                break
            await pilot.pause(0.02)
    assert rig.store.get_campaign(a).status == S.COMPLETED
    assert rig.store.get_campaign(b).status == S.COMPLETED
    assert not any(seen_together)
    assert len(rig.sim.state.sent()) == 6


async def test_a_campaign_running_in_another_process_is_shown_as_such(rig: Rig) -> None:
    from datetime import timedelta

    from textual.widgets import Static

    from waha_tui.models import utcnow

    cid = rig.add("Elsewhere", 5, status=S.RUNNING, done=2)
    rig.force(cid, lease_owner="other-host:4242:abcd", lease_until=utcnow() + timedelta(hours=1))
    async with rig.app().run_test(size=(120, 30)) as pilot:
        await select(pilot, cid)
        await wait_for(pilot, lambda: main_screen(pilot).campaigns[cid].status == S.RUNNING)
        info = str(pilot.app.screen.query_one("#row-info", Static).render())
        assert "in another process (other-host:4242)" in info
        assert "Resume" not in footer_keys(pilot)
        assert "Pause" in footer_keys(pilot)
        await pilot.press("p")  # the other runner sees the Paused status and stops there
        await wait_for(pilot, lambda: rig.store.get_campaign(cid).status == S.PAUSED)
    assert rig.sim.state.sent() == []


async def test_ctrl_q_asks_like_q_while_a_campaign_runs(rig: Rig) -> None:
    cid = rig.add("Long", 40, status=S.PAUSED, delay=(0.1, 0.1))
    async with rig.app().run_test(size=(120, 30)) as pilot:
        await select(pilot, cid)
        await pilot.press("r")
        await wait_for(pilot, lambda: len(rig.sim.state.sent()) >= 2)
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: not pilot.app.is_running, timeout=10)
    camp = rig.store.get_campaign(cid)
    assert (camp.status, camp.pause_reason) == (S.PAUSED, "stopped with the dashboard")
    assert camp.next_index == len(rig.sim.state.sent())


async def test_impaired_scheduling_is_shown_and_clears_when_the_database_is_back(
    rig: Rig,
) -> None:
    """Issue 12, item 6: the scheduler used to die silently inside the dashboard."""
    cid = rig.add("Later", 2)
    rig.force(cid, scheduled_at=datetime(2099, 1, 1, tzinfo=UTC))
    other = Store(rig.store.target)  # another process breaks the database
    try:
        async with rig.app(run_scheduler=True, scheduler_interval=0.05).run_test(
            size=(80, 24)
        ) as pilot:
            await wait_for(pilot, lambda: cid in main_screen(pilot).campaigns)
            line = pilot.app.screen.query_one("#scheduler-line", Static)
            assert not line.display
            with other.write() as conn:
                conn.exec_driver_sql("ALTER TABLE campaign RENAME TO campaign_away")
            await wait_for(pilot, lambda: line.display)
            assert "scheduling impaired" in str(line.render())
            with other.write() as conn:
                conn.exec_driver_sql("ALTER TABLE campaign_away RENAME TO campaign")
            rig.force(cid, scheduled_at=datetime(2020, 1, 1, tzinfo=UTC))
            await wait_for(pilot, lambda: not line.display, timeout=15)
            await wait_for(pilot, lambda: rig.store.get_campaign(cid).status == S.COMPLETED)
    finally:
        other.close()
