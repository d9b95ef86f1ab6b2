"""Shared set-up for the dashboard tests: a real store file, the simulator, the real app."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa
from textual.pilot import Pilot

from waha_tui.models import Campaign
from waha_tui.phones import chat_id_for
from waha_tui.runner import RunnerConfig, RunnerPool
from waha_tui.service import CampaignService
from waha_tui.simulator import SimState, Simulator
from waha_tui.status import CampaignStatus
from waha_tui.store import C, E, NewRecipient, Store
from waha_tui.tui.app import WahaTuiApp, create_app
from waha_tui.waha import WahaClient

FROZEN = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
OPERATOR = ("alice", "ops-1", 4242)  # who did everything, in snapshots
# Every screen is drawn at the terminal an operator SSHes into and at a roomier one.
SIZES = [(80, 24), (120, 40)]
SIZE_IDS = ["80x24", "120x40"]


@dataclass
class Rig:
    store: Store
    sim: Simulator
    service: CampaignService

    def app(self, **kwargs: object) -> WahaTuiApp:
        kwargs.setdefault("run_scheduler", False)
        kwargs.setdefault("refresh_interval", 0.2)
        # Its WAHA is the simulator through httpx's ASGI transport: no socket for /ws.
        kwargs.setdefault("listen", False)
        return create_app(self.service, **kwargs)  # type: ignore[arg-type]

    def add(
        self,
        name: str,
        count: int = 5,
        *,
        status: CampaignStatus = CampaignStatus.SCHEDULED,
        session: str = "default",
        delay: tuple[float, float] = (0.0, 0.0),
        done: int = 0,
        reason: str | None = None,
        text: str = "Hi {name}",
        seed: int = 0,
    ) -> int:
        people = [
            NewRecipient(p, chat_id_for(p), f"Person {i}", {})
            for i, p in ((i, f"4915{seed:02d}{i:06d}") for i in range(count))
        ]
        cid = self.store.create_campaign(
            Campaign(
                name=name,
                session=session,
                template_text=text,
                delay_min=delay[0],
                delay_max=delay[1],
                scheduled_at=FROZEN,
            ),
            people,
        )
        if status != CampaignStatus.SCHEDULED or done:
            self.force(cid, status=status, next_index=done, sent=done, pause_reason=reason)
        return cid

    def force(self, cid: int, **values: object) -> None:
        """Write a campaign row as another process would (no transition check)."""
        with self.store.write() as conn:
            conn.execute(sa.update(C).where(C.c.id == cid).values(**values))
            if "next_index" in values:
                conn.execute(
                    sa.text(
                        "UPDATE recipient SET status='sent', "
                        "message_id='true_x_' || campaign_id || '_' || position, "
                        "wa_id='true_x_' || campaign_id || '_' || position "
                        "WHERE campaign_id=:c AND position < :n"
                    ),
                    {"c": cid, "n": values["next_index"]},
                )

    def freeze_times(self) -> None:
        """Times, and who did what, as they are on every machine: for snapshots."""
        with self.store.write() as conn:
            conn.execute(
                sa.update(C).values(
                    created_at=FROZEN,
                    scheduled_at=FROZEN,
                    updated_at=FROZEN,
                    created_by=f"{OPERATOR[0]}@{OPERATOR[1]}",
                    # Runs end at the same time too: the rate an ended one averaged.
                    started_at=sa.case((C.c.started_at.is_(None), None), else_=FROZEN),
                    completed_at=sa.case(
                        (C.c.completed_at.is_(None), None), else_=FROZEN + timedelta(minutes=10)
                    ),
                )
            )
            ids = conn.execute(sa.select(E.c.id).order_by(E.c.id)).scalars().all()
            for i, event_id in enumerate(ids):
                conn.execute(
                    sa.update(E)
                    .where(E.c.id == event_id)
                    .values(
                        at=FROZEN + timedelta(minutes=i),
                        os_user=OPERATOR[0],
                        host=OPERATOR[1],
                        pid=OPERATOR[2],
                    )
                )


def make_rig(
    tmp_path: Path, *, sessions: dict[str, str] | None = None, target: str | None = None
) -> Rig:
    """`target`: a database (SQLite path or PostgreSQL URL); default a new file here."""
    store = Store(target or tmp_path / "campaigns.db")
    sim = Simulator(SimState(sessions=sessions or {"default": "WORKING"}, start_delay=0.05))
    client = WahaClient("http://waha.test", transport=httpx.ASGITransport(app=sim))
    config = RunnerConfig(
        lease_seconds=15, unreachable_backoff=(0.01,), ambiguous_retries=(0.01,), poll_interval=0.05
    )
    service = CampaignService(store, client, RunnerPool(store, client, config=config))
    return Rig(store, sim, service)


async def wait_for(pilot: Pilot, check: Callable[[], object], timeout: float = 10.0) -> None:
    """Let the app run until `check()` holds; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)
