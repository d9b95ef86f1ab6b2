"""`waha-tui demo`: the whole product against the simulator, with no WhatsApp account.

Builds a fresh database (never ./campaigns.db) with campaigns in every interesting state,
made by the real runner against the simulator, then opens the dashboard.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from waha_tui.config import Settings
from waha_tui.listener import Listener
from waha_tui.models import Campaign, utcnow
from waha_tui.pacing import local_zone
from waha_tui.phones import chat_id_for
from waha_tui.runner import RunnerConfig, RunnerPool
from waha_tui.service import CampaignService
from waha_tui.simulator import SimState, Simulator, SimulatorServer
from waha_tui.simulator.state import AckPlan
from waha_tui.status import CampaignStatus
from waha_tui.store import C, NewRecipient, Store, StoreError
from waha_tui.waha import WahaClient

FIRST = [
    "Ana",
    "Budi",
    "Chen",
    "Dewi",
    "Emma",
    "Farid",
    "Gita",
    "Hugo",
    "Ines",
    "Joko",
    "Kai",
    "Lena",
    "Mira",
    "Nadia",
    "Omar",
    "Putri",
    "Rafael",
    "Sari",
    "Tomas",
    "Wulan",
]
CITIES = ["Jakarta", "Bandung", "Berlin", "Lisbon", "Surabaya", "Porto", "Hamburg", "Medan"]
DEMO_DELAY = (1.0, 3.0)
RECONNECT_AFTER = 8.0
WINDOW_OPENS_IN = timedelta(minutes=3)  # "Evening reminders" waits for its window till then
REPLY_AFTER = 14.0  # someone answers "Spring sale"
OPT_OUT_AFTER = 20.0  # someone asks "Welcome series" never to write again
# WhatsApp's acks as the demo's simulator sends them: most delivered within a second, most
# of those read, a few never acknowledged, one in thirty refused after the 201.
DEMO_ACKS = AckPlan(
    server=0.1, device=0.4, read=1.5, read_share=0.6, none_share=0.05, error_share=0.03, seed=7
)
S = CampaignStatus


@dataclass
class Demo:
    server: SimulatorServer
    service: CampaignService
    db_path: Path
    # What the demo is at now, in a line: the dashboard shows it while it is true.
    banner: Callable[[], str]
    # (seconds after the dashboard opens, action returning the new banner text)
    timeline: list[tuple[float, Callable[[], str]]] = field(default_factory=list)
    temporary: Path | None = None  # the folder made for it, removed unless kept
    # Listening since before the demo's first send (so no ack of the campaigns it sends
    # while it is built is missed); the dashboard takes it over.
    build_listener: Listener | None = None

    async def aclose_listener(self) -> None:
        if self.build_listener is not None:
            listener, self.build_listener = self.build_listener, None
            await listener.aclose()

    def close(self, *, keep: bool = False) -> None:
        self.server.stop()
        if self.temporary is not None and not keep:
            shutil.rmtree(self.temporary, ignore_errors=True)


def _people(count: int, seed: int) -> list[NewRecipient]:
    rng = random.Random(seed)
    people = []
    for i in range(count):
        phone = f"6281{seed:02d}{i:06d}"
        name = rng.choice(FIRST) if rng.random() > 0.15 else None  # some have no name
        people.append(NewRecipient(phone, chat_id_for(phone), name, {"city": rng.choice(CITIES)}))
    return people


def _campaign(
    name: str,
    session: str,
    text: str,
    *,
    delay_min: float = DEMO_DELAY[0],
    delay_max: float = DEMO_DELAY[1],
    scheduled_at: datetime | None = None,
) -> Campaign:
    return Campaign(
        name=name,
        session=session,
        template_text=text,
        default_name="there",
        list_name="demo contacts",
        delay_min=delay_min,
        delay_max=delay_max,
        scheduled_at=scheduled_at or utcnow(),
    )


async def build_demo(db_dir: Path | None = None) -> Demo:
    folder = db_dir or Path(tempfile.mkdtemp(prefix="waha-tui-demo-"))
    db_path = folder / "demo.db"
    state = SimState(
        sessions={
            "default": "WORKING",
            "sales": "WORKING",
            "support": "WORKING",
            "alerts": "WORKING",
            "north": "WORKING",
            "south": "WORKING",
        },
        start_delay=1.0,
    )
    state.set_acks(DEMO_ACKS)
    sim = Simulator(state)
    server = SimulatorServer(sim).start()
    store = Store(db_path)
    client = WahaClient(server.url)
    fast = RunnerConfig(lease_seconds=15, unreachable_backoff=(0.2,), ambiguous_retries=(0.2,))
    quick = CampaignService(store, client, RunnerPool(store, client, config=fast))
    build_listener = quick.listener()
    build_listener.start()
    for _ in range(100):  # its acks must not be missed: listening before the first send
        if build_listener.state.phase == "live":
            break
        await asyncio.sleep(0.02)

    # Completed: really sent, so its recipients carry WAHA message ids.
    done = store.create_campaign(
        _campaign(
            "Spring sale",
            "default",
            "Hi {name}! *20% off* everything in {city} this week.",
            delay_min=0,
            delay_max=0,
        ),
        _people(12, 1),
    )
    await quick.start(done)
    await quick.pool.wait(done)

    # Paused half-way: the 'sales' session drops after 9 messages.
    state.stop_after("sales", 9)
    paused = store.create_campaign(
        _campaign(
            "Welcome series",
            "sales",
            "Welcome aboard, {name}! Reply STOP to opt out.",
            delay_min=0,
            delay_max=0,
        ),
        _people(20, 2),
    )
    await quick.start(paused)
    await quick.pool.wait(paused)
    stopped_at = store.get_campaign(paused)
    left = stopped_at.total - stopped_at.next_index
    # Give it demo-speed delays for when it is resumed.
    with store.write() as conn:
        conn.execute(
            C.update()
            .where(C.c.id == paused)
            .values(delay_min=DEMO_DELAY[0], delay_max=DEMO_DELAY[1])
        )

    # Due now: the dashboard's scheduler starts it at once, so it is Running on screen.
    store.create_campaign(
        _campaign(
            "Order updates",
            "default",
            "Hello {name}, your order is on its way to {city}.",
            scheduled_at=utcnow(),
        ),
        _people(40, 3),
    )
    # A minute ahead, on its own session.
    store.create_campaign(
        _campaign(
            "Weekend promo",
            "support",
            "{name}, the weekend market opens Saturday at 9.",
            scheduled_at=utcnow() + timedelta(minutes=1),
        ),
        _people(25, 4),
    )
    # Due now but outside its send window, which opens a few minutes after the demo
    # starts: Running, waiting, "outside send window until 14:35 (Europe/Berlin)".
    zone = local_zone() or "UTC"
    opens = (datetime.now(ZoneInfo(zone)) + WINDOW_OPENS_IN).replace(second=0, microsecond=0)
    closes = opens + timedelta(hours=2)
    evening = _campaign(
        "Evening reminders",
        "alerts",
        "{name}, your appointment in {city} is tomorrow.",
        scheduled_at=utcnow(),
    )
    evening.send_window = f"{opens:%H:%M}-{closes:%H:%M}"
    evening.timezone = zone
    store.create_campaign(evening, _people(15, 5))
    # Due now, over two numbers: 'north' sends two of every three, 'south' the third,
    # each at its own pace ("north +1" in the table; details shows the split).
    openings = _campaign(
        "Store openings",
        "north",
        "{name}, a new store opens in {city} on Monday!",
        scheduled_at=utcnow(),
    )
    openings.sessions = [["north", 2], ["south", 1]]
    store.create_campaign(openings, _people(30, 6))
    await client.aclose()

    service = CampaignService.open(Settings(db=str(db_path), waha_url=server.url))

    def reconnect() -> str:
        state.set_status("sales", "WORKING")
        return "session 'sales' is WORKING again: press r on “Welcome series” to resume it"

    spring = store.recipients(done)
    welcome = store.recipients(paused)

    def reply() -> str:
        who = spring[3]
        sim.reply("default", who.chat_id, f"Is the sale on in {who.variables['city']} too?")
        return (
            f"{who.name or who.phone} replied to “Spring sale”: its Repl column counts it; "
            "enter, then the recipient, shows the reply"
        )

    def opt_out() -> str:
        who = welcome[1]
        sim.reply("sales", who.chat_id, "STOP")
        return (
            f"{who.phone} answered STOP to “Welcome series”: on the opt-out list now, never "
            "messaged again by any campaign"
        )

    def banner() -> str:
        """The line at the top follows the story: it never tells to do what is done."""
        where = f"DEMO · simulated WAHA at {server.url}"
        sales = state.get("sales")
        try:
            status, _ = service.store.status_and_owner(paused)
        except StoreError:
            return f"{where} · ? shows every key"
        if status == S.PAUSED and (sales is None or sales.status != "WORKING"):
            return f"{where} · session 'sales' dropped and reconnects in a few seconds"
        if status == S.PAUSED:
            return (
                f"DEMO · session 'sales' is WORKING again: select “Welcome series” (id "
                f"{paused}) and press r to resume it."
            )
        if status in (S.SCHEDULED, S.RUNNING):
            return (
                f"DEMO · “Welcome series” is sending again: only the {left} recipients not "
                "yet messaged get one (enter shows them)."
            )
        if status == S.COMPLETED:
            return (
                "DEMO · “Welcome series” completed: each recipient got one message, none "
                "twice. N creates a campaign; ? shows every key."
            )
        return f"{where} · ? shows every key"

    return Demo(
        server,
        service,
        db_path,
        banner,
        [(RECONNECT_AFTER, reconnect), (REPLY_AFTER, reply), (OPT_OUT_AFTER, opt_out)],
        temporary=None if db_dir else folder,
        build_listener=build_listener,
    )


def run_demo(*, keep: bool = False) -> None:
    """The dashboard on a demo; its temporary folder is removed when it quits, unless
    `keep`."""
    from waha_tui.tui.app import WahaTuiApp

    async def main() -> Path:
        demo = await build_demo()
        try:
            app = WahaTuiApp(
                demo.service,
                install_signals=True,
                banner=demo.banner,
                timeline=demo.timeline,
                listener=demo.build_listener,  # listening since the demo's first send
            )
            await app.run_async()
        finally:
            await demo.service.stop_all("stopped with the dashboard")
            await demo.aclose_listener()
            await demo.service.aclose()
            demo.close(keep=keep)
        return demo.db_path

    db_path = asyncio.run(main())
    if keep:
        with contextlib.suppress(OSError):  # the terminal may be gone
            print(
                f"The demo database is kept at {db_path}: "
                f"try `waha-tui --db {db_path} campaign list`."
            )
