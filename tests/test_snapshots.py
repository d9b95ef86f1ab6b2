"""Snapshots of each screen, with time, ids and message ids frozen so they are deterministic.

Regenerate after an intended change with: python -m pytest tests/test_snapshots.py
--snapshot-update (then look at the report before committing).
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from textual.pilot import Pilot
from textual.widgets import Static

from tests.tui_helpers import FROZEN, SIZE_IDS, SIZES, Rig, make_rig
from waha_tui import delivery
from waha_tui.history import Entry, Kind, record
from waha_tui.status import CampaignStatus
from waha_tui.store import R
from waha_tui.tui.widgets.keyed_table import KeyedTable
from waha_tui.waha.envelope import Ack, AckEvent, WahaEvent

S = CampaignStatus
pytestmark = pytest.mark.usefixtures("utc")  # every snapshot
SIZE = (80, 24)  # the smallest terminal an operator may have
WIDE = (120, 40)


def every_status(tmp_path: Path) -> Rig:
    rig = make_rig(tmp_path, sessions={"default": "WORKING", "sales": "STOPPED"})
    rig.add("Spring sale", 12, status=S.COMPLETED, done=12)
    rig.add(
        "Welcome [series]",
        20,
        status=S.PAUSED,
        done=9,
        session="sales",
        reason="session 'sales' is STOPPED: start it and scan the QR code, then resume",
        seed=1,
        delay=(30.0, 60.0),
    )
    running = rig.add("Order updates", 40, status=S.RUNNING, done=17, seed=2, delay=(30.0, 60.0))
    rig.add("Weekend promo", 25, seed=3, delay=(30.0, 60.0))
    rig.add("Old list", 8, status=S.CANCELLED, done=3, seed=4)
    rig.add("Broken", 5, status=S.FAILED, done=1, seed=5)
    for ended in (1, 5, 6):  # when they ran: the rate they averaged
        rig.force(ended, started_at=FROZEN, completed_at=FROZEN)
    rig.freeze_times()
    # Running in another process that holds a live lease, so start-up leaves it Running.
    rig.force(
        running, lease_owner="other-host:4242:abcd1234", lease_until=FROZEN + timedelta(days=3650)
    )
    rig.force(6, last_error="unexpected error: disk full", failed=1)
    with rig.store.write() as conn:
        conn.execute(
            sa.update(R)
            .where(R.c.campaign_id == 2, R.c.position == 3)
            .values(
                status="failed",
                message_id=None,
                error="WAHA error (HTTP 500): 2 UNKNOWN: server returned error 463",
            )
        )
        conn.execute(
            sa.update(R)
            .where(R.c.campaign_id == 2, R.c.position == 5)
            .values(
                status="unknown",
                message_id=None,
                error="no answer from WAHA within 30 s; not re-sent automatically",
            )
        )
    after_the_sends(rig)
    return rig


def after_the_sends(rig: Rig) -> None:
    """What WhatsApp said after the sends, as the listener writes it (delivery.apply):
    most delivered, some read; one reply (written as it would be: a reply is matched only
    within 30 days of its send, and these sends are frozen in the past); one not confirmed."""
    at = FROZEN + timedelta(minutes=2)

    def acks(cid: int, level: Ack, positions: range | list[int]) -> list[WahaEvent]:
        return [AckEvent("default", f"true_x_{cid}_{p}", level, "", at) for p in positions]

    delivery.apply(
        rig.store,
        [
            *acks(1, Ack.DEVICE, range(11)),
            *acks(1, Ack.READ, range(7)),
            *acks(2, Ack.DEVICE, [0, 1, 2, 4, 6, 7]),
            *acks(2, Ack.READ, [0, 1, 2]),
            *acks(3, Ack.SERVER, [16]),
            *acks(3, Ack.DEVICE, range(16)),
            *acks(3, Ack.READ, range(10)),
        ],
    )
    with rig.store.write() as conn:
        conn.execute(
            sa.update(R)
            .where(R.c.campaign_id == 1, R.c.position == 2)
            .values(replied_at=at, reply_text="Is the sale on Sunday too?")
        )
        conn.execute(
            sa.update(R).where(R.c.campaign_id == 2, R.c.position == 8).values(unconfirmed=True)
        )
    rig.force(1, replied=1)
    rig.force(2, unconfirmed=1)


async def settled(pilot: Pilot) -> None:
    """Wait for the sessions line (fetched from the simulator) and the first table load."""
    deadline = time.monotonic() + 10
    while "WORKING" not in str(pilot.app.screen.query_one("#waha-line", Static).render()):
        assert time.monotonic() < deadline, "the sessions line never loaded"
        await pilot.pause(0.05)
    await pilot.pause(0.1)


async def select_campaign(pilot: Pilot, campaign_id: int) -> None:
    """The cursor on this campaign (ids 1-6 as every_status adds them), wherever its row."""
    await settled(pilot)
    table = pilot.app.screen.query_one("#campaigns", KeyedTable)
    table.move_cursor(row=table.get_row_index(str(campaign_id)))
    await pilot.pause(0.1)


def test_main_screen_with_every_status(snap_compare, tmp_path: Path) -> None:
    rig = every_status(tmp_path)
    assert snap_compare(
        rig.app(session_interval=3600),
        terminal_size=SIZE,
        run_before=lambda pilot: select_campaign(pilot, 2),
    )


def test_main_screen_at_120x40_shows_more_columns(snap_compare, tmp_path: Path) -> None:
    rig = every_status(tmp_path)
    assert snap_compare(
        rig.app(session_interval=3600),
        terminal_size=WIDE,
        run_before=lambda pilot: select_campaign(pilot, 2),
    )


def test_main_screen_under_no_color(
    snap_compare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without colours the highlighted row still stands out from the header and the rest."""
    monkeypatch.setenv("NO_COLOR", "1")
    rig = every_status(tmp_path)
    assert snap_compare(
        rig.app(session_interval=3600),
        terminal_size=SIZE,
        run_before=lambda pilot: select_campaign(pilot, 3),
    )


def test_details_screen(snap_compare, tmp_path: Path) -> None:
    rig = every_status(tmp_path)

    async def open_details(pilot: Pilot) -> None:
        await select_campaign(pilot, 2)
        await pilot.press("enter")
        await pilot.pause(0.5)

    assert snap_compare(
        rig.app(session_interval=3600), terminal_size=(100, 30), run_before=open_details
    )


def test_details_screen_at_80x24_with_a_failed_recipient_highlighted(
    snap_compare, tmp_path: Path
) -> None:
    """The Error column is cut at 80 wide: the highlighted recipient's error shows whole
    under the table."""
    rig = every_status(tmp_path)

    async def open_details(pilot: Pilot) -> None:
        await select_campaign(pilot, 2)
        await pilot.press("enter")
        await pilot.pause(0.5)
        # The cursor starts on the next recipient (#10): up to #4.
        await pilot.press(*["up"] * 6)
        await pilot.pause(0.2)

    assert snap_compare(rig.app(session_interval=3600), terminal_size=SIZE, run_before=open_details)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_details_history(size: tuple[int, int], snap_compare, tmp_path: Path) -> None:
    """The history of a campaign, at the smallest terminal."""
    rig = every_status(tmp_path)
    with rig.store.write() as conn:
        for entry in (
            Entry(Kind.CLAIMED, "on session 'sales', from recipient 1 of 20"),
            Entry(Kind.WAITING, "waiting for session 'sales' (STARTING)"),
            Entry(
                Kind.PAUSED,
                "session 'sales' is STOPPED: start it and scan the QR code, then resume",
            ),
        ):
            record(conn, 2, entry)
    rig.freeze_times()

    async def open_history(pilot: Pilot) -> None:
        await select_campaign(pilot, 2)
        await pilot.press("enter")
        await pilot.pause(0.5)
        await pilot.press("h")
        await pilot.pause(0.5)

    assert snap_compare(rig.app(session_interval=3600), terminal_size=size, run_before=open_history)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_confirmation_modal(size: tuple[int, int], snap_compare, tmp_path: Path) -> None:
    rig = every_status(tmp_path)

    async def ask(pilot: Pilot) -> None:
        await select_campaign(pilot, 4)
        await pilot.press("c")
        await pilot.pause(0.2)

    assert snap_compare(rig.app(session_interval=3600), terminal_size=size, run_before=ask)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_help_screen(size: tuple[int, int], snap_compare, tmp_path: Path) -> None:
    rig = every_status(tmp_path)

    async def help_(pilot: Pilot) -> None:
        await settled(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.2)

    assert snap_compare(rig.app(session_interval=3600), terminal_size=size, run_before=help_)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_refusal_toast(size: tuple[int, int], snap_compare, tmp_path: Path) -> None:
    rig = every_status(tmp_path)

    async def refuse(pilot: Pilot) -> None:
        await select_campaign(pilot, 2)
        await pilot.press("r")
        deadline = time.monotonic() + 10
        while not pilot.app._notifications:
            assert time.monotonic() < deadline, "no toast"
            await pilot.pause(0.05)
        await pilot.pause(0.3)

    assert snap_compare(rig.app(session_interval=3600), terminal_size=size, run_before=refuse)
