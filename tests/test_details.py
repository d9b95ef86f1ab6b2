"""The details screen's recipients: filtered by status (`s`, counted by the database), each
one's sent time, a cursor that follows the recipient being sent (like `tail -f`) until the
operator moves it, and a window of WINDOW rows that moves with the next recipient."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from textual.pilot import Pilot
from textual.widgets import Static

from tests.test_sessions_screen import toast_with
from tests.test_snapshots import every_status, select_campaign
from tests.test_tui import footer_keys, select, shown
from tests.tui_helpers import FROZEN, SIZE_IDS, SIZES, Rig, wait_for
from waha_tui.status import CampaignStatus, RecipientStatus
from waha_tui.store import C, NewRecipient, R, Store
from waha_tui.tui import format
from waha_tui.tui.screens.details import WINDOW, DetailsScreen
from waha_tui.tui.widgets.keyed_table import KeyedTable

S = CampaignStatus
RS = RecipientStatus
SIZE = (80, 24)


def details(pilot: Pilot) -> DetailsScreen:
    screen = pilot.app.screen
    assert isinstance(screen, DetailsScreen)
    return screen


def recipients(pilot: Pilot) -> KeyedTable:
    return details(pilot).query_one("#recipients", KeyedTable)


def title(pilot: Pilot) -> str:
    return " ".join(shown(details(pilot).query_one("#details-title", Static)).split())


def statuses(pilot: Pilot) -> list[str]:
    t = recipients(pilot)
    return [str(t.get_cell(k.value, "status")) for k in t.rows]


def set_status(rig: Rig, cid: int, status: str, *positions: int, error: str | None = None) -> None:
    with rig.store.write() as conn:
        conn.execute(
            sa.update(R)
            .where(R.c.campaign_id == cid, R.c.position.in_(positions))
            .values(
                status=status,
                message_id=None,
                wa_id=None,
                error=error,
                sent_at=None,
                ack=None,
                delivered_at=None,
                read_at=None,
            )
        )


def next_read(pilot: Pilot) -> int:
    """The next recipient, as the screen last read it."""
    camp = details(pilot).campaign
    assert camp is not None
    return camp.next_index


async def open_details(pilot: Pilot, cid: int) -> None:
    await select(pilot, cid)
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, DetailsScreen))
    await wait_for(pilot, lambda: details(pilot).campaign is not None)


async def test_s_filters_by_status_and_the_title_says_which_and_how_many(rig: Rig) -> None:
    cid = rig.add("Mixed", 40, status=S.PAUSED, done=17)
    set_status(rig, cid, RS.FAILED, 3, 9, error="WAHA error (HTTP 500)")
    set_status(rig, cid, RS.UNKNOWN, 12)
    by_status = {s: [r.position for r in rig.store.recipients(cid, status=s)] for s in RS}
    async with rig.app().run_test(size=SIZE) as pilot:
        await open_details(pilot, cid)
        await wait_for(pilot, lambda: recipients(pilot).row_count == 40)
        assert title(pilot) == "Recipients: all 40, in sending order"
        assert "Status" in footer_keys(pilot)  # at 80 columns
        for status in ("pending", "sending", "sent", "failed", "unknown", "skipped"):
            await pilot.press("s")
            expected = by_status[RS(status)]
            await wait_for(pilot, lambda s=status: title(pilot).startswith(f"Recipients: {s},"))
            await wait_for(pilot, lambda e=expected: recipients(pilot).row_count == len(e))
            t = recipients(pilot)
            assert [int(k.value) for k in t.rows] == expected
            assert set(statuses(pilot)) <= {status}
            if expected:
                assert title(pilot) == f"Recipients: {status}, {len(expected)} of 40"
            else:
                assert title(pilot) == f"Recipients: {status}, none of 40"  # says so
        await pilot.press("s")  # round to every recipient
        await wait_for(pilot, lambda: title(pilot) == "Recipients: all 40, in sending order")
        await wait_for(pilot, lambda: recipients(pilot).row_count == 40)
        # Not in the history, where it would filter nothing.
        await pilot.press("h")
        await wait_for(pilot, lambda: "Status" not in footer_keys(pilot))
    assert by_status[RS.FAILED] == [3, 9] and len(by_status[RS.PENDING]) == 23


async def test_the_cursor_follows_the_recipient_being_sent_until_moved_away(rig: Rig) -> None:
    cid = rig.add("Moving", 80, status=S.PAUSED, delay=(0.12, 0.12))
    async with rig.app().run_test(size=SIZE) as pilot:
        await open_details(pilot, cid)
        t = recipients(pilot)
        await wait_for(pilot, lambda: t.current_key == "0")  # the next one, before it runs
        await pilot.press("r")
        # Each read puts the cursor on the recipient being sent as it read it.
        await wait_for(pilot, lambda: next_read(pilot) >= 8)
        for _ in range(3):
            await wait_for(pilot, lambda: t.current_key == str(next_read(pilot)))
            await pilot.pause(0.3)
        assert "Follow" not in footer_keys(pilot)
        # Moved away: it stays there while sending goes on.
        await pilot.press("up", "up")
        mine = t.current_key
        assert mine is not None
        moved_at = rig.store.get_campaign(cid).next_index
        await wait_for(pilot, lambda: rig.store.get_campaign(cid).next_index >= moved_at + 5)
        await pilot.pause(0.6)  # a read or more after it moved on
        assert t.current_key == mine
        assert "Follow" in footer_keys(pilot)
        # n: back to the recipient being sent, and following it again.
        await pilot.press("n")
        await wait_for(pilot, lambda: t.current_key == str(next_read(pilot)))
        assert "Follow" not in footer_keys(pilot)
        now = int(t.current_key or 0)
        await wait_for(pilot, lambda: int(t.current_key or 0) >= now + 3)
        await pilot.press("p")
        await wait_for(pilot, lambda: rig.store.get_campaign(cid).status == S.PAUSED)


async def test_with_a_filter_the_cursor_follows_the_newest_matching_row(rig: Rig) -> None:
    cid = rig.add("Sent ones", 80, status=S.PAUSED, delay=(0.12, 0.12))
    async with rig.app().run_test(size=SIZE) as pilot:
        await open_details(pilot, cid)
        for _ in range(3):  # all, pending, sending, sent
            await pilot.press("s")
        await wait_for(pilot, lambda: title(pilot) == "Recipients: sent, none of 80")
        await pilot.press("r")
        t = recipients(pilot)
        await wait_for(pilot, lambda: t.row_count >= 5)
        for _ in range(3):
            await wait_for(pilot, lambda: t.current_key is not None and t.current_key == max(
                (k.value for k in t.rows), key=int))  # fmt: skip
            assert statuses(pilot)[t.cursor_row] == "sent"
            await pilot.pause(0.4)
        assert int(t.current_key or 0) >= 5
        await pilot.press("p")
        await wait_for(pilot, lambda: rig.store.get_campaign(cid).status == S.PAUSED)


async def test_a_huge_campaign_shows_a_window_that_moves_with_the_next_recipient(
    rig: Rig,
) -> None:
    total = 2 * WINDOW + 500
    cid = rig.add("Huge", total, status=S.PAUSED, done=WINDOW + 200)
    set_status(rig, cid, RS.FAILED, 5, WINDOW + 150)
    async with rig.app().run_test(size=SIZE) as pilot:
        await open_details(pilot, cid)
        t = recipients(pilot)
        await wait_for(pilot, lambda: t.row_count == WINDOW)
        keys = [int(k.value) for k in t.rows]
        assert keys == list(range(WINDOW + 150, 2 * WINDOW + 150))  # 50 before the next
        assert t.current_key == str(WINDOW + 200)
        assert title(pilot).endswith(
            f"all {total:,}, in sending order (1,000 shown, around the next)"
        )
        # The next recipient moves on (another process sends): the window moves with it,
        # and the cursor along; near the end, the window holds more of those before it.
        near_end = total - 100
        rig.force(cid, next_index=near_end, sent=near_end)
        set_status(rig, cid, RS.FAILED, 5, WINDOW + 150)  # force made every one before sent
        await wait_for(pilot, lambda: t.current_key == str(near_end))
        assert [int(k.value) for k in t.rows] == list(range(total - WINDOW, total))
        assert t.get_row_at(0)[0] == str(total - WINDOW + 1)  # the "#" column: 1-based
        # Filtered: counted by the database, though far more than the window.
        for _ in range(3):
            await pilot.press("s")
        sent = near_end - 2
        await wait_for(pilot, lambda: title(pilot).startswith(f"Recipients: sent, {sent:,} of"))
        await wait_for(pilot, lambda: t.row_count == WINDOW)
        assert [int(k.value) for k in t.rows][-1] == near_end - 1  # the newest sent ones
        assert t.current_key == str(near_end - 1)
        await pilot.press("s")
        await wait_for(pilot, lambda: title(pilot) == f"Recipients: failed, 2 of {total:,}")
        assert [k.value for k in t.rows] == ["5", str(WINDOW + 150)]


async def test_each_recipient_shows_when_it_was_sent(rig: Rig) -> None:
    cid = rig.add("Timed", 3, status=S.PAUSED)
    async with rig.app().run_test(size=SIZE) as pilot:
        await open_details(pilot, cid)
        await pilot.press("r")
        await wait_for(pilot, lambda: rig.store.get_campaign(cid).status == S.COMPLETED)
        t = recipients(pilot)
        stored = {str(r.position): r.sent_at for r in rig.store.recipients(cid)}
        assert all(stored.values())
        want = {k: v.astimezone().strftime("%H:%M:%S") for k, v in stored.items() if v}
        await wait_for(pilot, lambda: {k: str(t.get_cell(k, "sent")) for k in want} == want)


async def test_the_line_under_the_table_shows_each_recipients_text(rig: Rig) -> None:
    cid = rig.add("Varied", 4, status=S.PAUSED, text="{Hi|Hello|Hey} {name}")
    with rig.store.write() as conn:  # a campaign of this version: its choices are picked
        conn.execute(sa.update(C).where(C.c.id == cid).values(variants=["Dear {name},\nbye"]))
    async with rig.app().run_test(size=SIZE) as pilot:
        await open_details(pilot, cid)
        under = details(pilot).query_one("#recipient-error", Static)
        await pilot.press("r")
        await wait_for(pilot, lambda: rig.store.get_campaign(cid).status == S.COMPLETED)
        stored = [r.text or "" for r in rig.store.recipients(cid)]
        assert all(stored) and {t.split(" ")[0] for t in stored} <= {"Hi", "Hello", "Hey", "Dear"}
        t = recipients(pilot)
        t.focus()
        for position in (1, 2):
            t.move_cursor(row=t.get_row_index(str(position)))
            want = "text: " + stored[position].replace("\n", " ⏎ ")
            await wait_for(pilot, lambda want=want: shown(under).rstrip("\n").endswith(want))
            assert shown(under).startswith(f"#{position + 1} ")


# -- the store's window, on both databases --------------------------------------------------


def test_the_window_and_its_count_come_from_the_database(store: Store) -> None:
    from waha_tui.models import Campaign

    people = [NewRecipient(f"49{i:09d}", f"49{i:09d}@c.us", None, {}) for i in range(30)]
    cid = store.create_campaign(Campaign(name="w", template_text="x"), people)
    with store.write() as conn:
        conn.execute(
            sa.update(R).where(R.c.campaign_id == cid, R.c.position < 20).values(status=RS.SENT)
        )
        conn.execute(
            sa.update(R)
            .where(R.c.campaign_id == cid, R.c.position.in_([2, 7, 25]))
            .values(status=RS.FAILED)
        )

    def window(
        around: int, before: int, limit: int, status: str | None = None
    ) -> tuple[list[int], int | None]:
        rows, count = store.recipient_window(
            cid, around=around, before=before, limit=limit, status=status
        )
        return [r.position for r in rows], count

    assert window(10, 3, 8) == ([7, 8, 9, 10, 11, 12, 13, 14], None)
    assert window(28, 3, 8) == ([22, 23, 24, 25, 26, 27, 28, 29], None)  # more before at the end
    assert window(0, 3, 5) == ([0, 1, 2, 3, 4], None)
    assert window(20, 2, 5, RS.FAILED) == ([2, 7, 25], 3)
    assert window(20, 2, 4, RS.SENT) == ([16, 17, 18, 19], 18)  # none follow: all before
    assert window(20, 2, 4, RS.PENDING) == ([20, 21, 22, 23], 9)
    assert window(20, 2, 4, RS.SKIPPED) == ([], 0)


# -- how it looks ----------------------------------------------------------------------------


def running_campaign(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Rig:
    """The snapshots' campaigns; the third, Running elsewhere, at its 18th recipient: sent
    ones (each a sent time, today), two failed, one unknown, pending ones after it."""
    rig = every_status(tmp_path)
    monkeypatch.setattr(format, "now", lambda: FROZEN + timedelta(hours=2))
    cid = 3
    with rig.store.write() as conn:
        for position in range(17):
            conn.execute(
                sa.update(R)
                .where(R.c.campaign_id == cid, R.c.position == position)
                .values(sent_at=FROZEN + timedelta(seconds=47 * position))
            )
        conn.execute(
            sa.update(R)
            .where(R.c.campaign_id == cid, R.c.position == 17)
            .values(status=RS.SENDING, message_id="true_491502000017@c.us_3EB0C0FFEE")
        )
    set_status(rig, cid, RS.FAILED, 4, 11, error="WAHA error (HTTP 400): not a WhatsApp number")
    set_status(rig, cid, RS.UNKNOWN, 8, error="no answer from WAHA within 30 s; not re-sent")
    with rig.store.read() as conn:  # what WhatsApp said of those still sent
        delivered, read = conn.execute(
            sa.select(sa.func.count(R.c.delivered_at), sa.func.count(R.c.read_at)).where(
                R.c.campaign_id == cid
            )
        ).one()
    rig.force(cid, sent=14, failed=2, unknown=1, delivered=delivered, read=read)
    return rig


async def open_third(pilot: Pilot, presses: int = 0) -> None:
    await select_campaign(pilot, 3)
    await pilot.press("enter")
    await pilot.pause(0.5)
    for _ in range(presses):
        await pilot.press("s")
        await pilot.pause(0.3)
    await pilot.pause(0.3)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_snapshot_of_a_running_campaigns_recipients(
    snap_compare: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    utc: None,
    size: tuple[int, int],
) -> None:
    """The cursor on the recipient being sent (#18); sent times; failed and unknown ones."""
    rig = running_campaign(tmp_path, monkeypatch)
    assert snap_compare(rig.app(session_interval=3600), terminal_size=size, run_before=open_third)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_snapshot_of_the_failed_recipients_only(
    snap_compare: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    utc: None,
    size: tuple[int, int],
) -> None:
    """`s` four times: the failed ones, counted in the title."""
    rig = running_campaign(tmp_path, monkeypatch)

    async def failed_only(pilot: Pilot) -> None:
        await open_third(pilot, presses=4)

    assert snap_compare(rig.app(session_interval=3600), terminal_size=size, run_before=failed_only)


async def test_the_history_fits_80_columns_and_shows_a_long_detail_whole_under_it(
    rig: Rig,
) -> None:
    """A long detail (WAHA's words in a pause reason) is cut with … in its column, never
    pushed past the edge, and the highlighted entry's is shown whole below the table."""
    cid = rig.add("Long story", 3)
    owner = "me:1:x"
    rig.store.claim(cid, owner, 60)
    reason = (
        "session 'default' is FAILED: WAHA said the browser crashed while restoring the "
        "session; restart it from the sessions screen (w), scan the QR code if it asks, "
        "then resume"
    )
    rig.store.transition(cid, S.PAUSED, pause_reason=reason, lease_owner=None)
    async with rig.app().run_test(size=(80, 24)) as pilot:
        await select(pilot, cid)
        await pilot.press("enter", "h")
        history = details(pilot).query_one("#history", KeyedTable)
        await wait_for(pilot, lambda: history.row_count >= 3)
        widths = sum(c.get_render_width(history) for c in history.columns.values())
        assert widths <= 80 - 2  # no sideways scroll
        last = history.get_row_at(history.row_count - 1)
        detail = str(last[-1])
        assert detail.endswith("…") and reason.startswith(detail[:-1])
        history.move_cursor(row=history.row_count - 1)
        await pilot.pause(0.1)
        under = " ".join(shown(details(pilot).query_one("#recipient-error", Static)).split())
        assert under == reason


# -- retrying the unconfirmed (U) -----------------------------------------------------------


async def sent_then_unconfirmed(rig: Rig, n: int) -> int:
    """A campaign really sent to the simulator, then flagged as the feed flags it: no ack
    from WhatsApp in time."""
    from waha_tui import delivery
    from waha_tui.models import utcnow

    cid = rig.add("Quiet", n, status=S.PAUSED)
    await rig.service.resume(cid)
    await rig.service.wait(cid)
    assert rig.store.get_campaign(cid).status == S.COMPLETED
    flagged = delivery.flag_unconfirmed(
        rig.store,
        live_since=utcnow() - timedelta(hours=1),
        sessions_with_acks={"default"},
        now=utcnow() + timedelta(minutes=2),
    )
    assert flagged == n
    return cid


def question(pilot: Pilot) -> str:
    from waha_tui.tui.screens.confirm import ConfirmationModal

    assert isinstance(pilot.app.screen, ConfirmationModal)
    return " ".join(shown(pilot.app.screen.query_one("#confirm-question", Static)).split())


async def test_u_is_offered_only_with_unconfirmed_recipients_and_asks_first(rig: Rig) -> None:
    from waha_tui.tui.screens.confirm import ConfirmationModal

    plain = rig.add("Confirmed", 2, status=S.COMPLETED, done=2)
    cid = await sent_then_unconfirmed(rig, 3)
    plan = await rig.service.plan_unconfirmed_retry(cid)
    assert plan.deduped and plan.question is None  # the simulator takes pre-generated ids
    async with rig.app().run_test(size=SIZE) as pilot:
        await open_details(pilot, plain)
        assert "Retry unconfirmed" not in footer_keys(pilot)
        await pilot.press("U")
        await pilot.pause(0.3)
        assert isinstance(pilot.app.screen, DetailsScreen)  # not offered: nothing asked
        await pilot.press("escape")
        await open_details(pilot, cid)
        await wait_for(pilot, lambda: "Retry unconfirmed" in footer_keys(pilot))
        await pilot.press("U")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        said = question(pilot)
        assert said.startswith(f"Send campaign {cid} again to its 3 unconfirmed recipients?")
        assert "twice" not in said and "left Paused" in said
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, DetailsScreen))
        await pilot.pause(0.2)
        assert rig.store.get_campaign(cid).unconfirmed == 3  # kept as it was
        await pilot.press("U")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        await pilot.press("y")
        await wait_for(pilot, toast_with(pilot, f"campaign {cid}: 3 unconfirmed recipients queued"))
        await wait_for(pilot, lambda: "Retry unconfirmed" not in footer_keys(pilot))
    camp = rig.store.get_campaign(cid)
    assert (camp.status, camp.unconfirmed, camp.sent, camp.next_index) == (S.PAUSED, 0, 0, 0)
    queued = rig.store.recipients(cid)
    assert [r.status for r in queued] == [RS.PENDING] * 3
    assert all(r.message_id for r in queued)  # each goes again with its own id: deduped


async def test_u_warns_with_the_services_question_when_repeats_may_arrive_twice(
    rig: Rig,
) -> None:
    from waha_tui.tui.screens.confirm import ConfirmationModal

    rig.sim.state.message_ids = False  # a WAHA before 2026.4.3: no pre-generated ids
    cid = await sent_then_unconfirmed(rig, 2)
    asked = (await rig.service.plan_unconfirmed_retry(cid)).question
    assert asked is not None
    async with rig.app().run_test(size=SIZE) as pilot:
        await open_details(pilot, cid)
        await wait_for(pilot, lambda: "Retry unconfirmed" in footer_keys(pilot))
        await pilot.press("U")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        assert question(pilot).startswith(" ".join(asked.split()))
        await pilot.press("y")
        await wait_for(pilot, toast_with(pilot, "they may arrive twice"))
    assert [(r.status, r.message_id) for r in rig.store.recipients(cid)] == [(RS.PENDING, None)] * 2
    assert rig.store.get_campaign(cid).status == S.PAUSED


async def test_u_is_not_offered_while_the_campaign_runs(rig: Rig) -> None:
    cid = await sent_then_unconfirmed(rig, 2)
    # Running in another process that holds a live lease: start-up leaves it Running.
    rig.force(
        cid,
        status=S.RUNNING,
        lease_owner="other:1:x",
        lease_until=FROZEN + timedelta(days=3650),
    )
    async with rig.app().run_test(size=SIZE) as pilot:
        await open_details(pilot, cid)
        await pilot.pause(0.3)
        camp = details(pilot).campaign
        assert camp is not None and camp.status == S.RUNNING
        assert "Retry unconfirmed" not in footer_keys(pilot)
