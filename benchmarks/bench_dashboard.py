"""The dashboard on a big database: launch, sorting, refresh tick, keypress latency, memory,
idle CPU.

    python benchmarks/bench_dashboard.py            # 100,000 campaigns, 10,000,000 recipients
    python benchmarks/bench_dashboard.py --campaigns 10000 --recipients 1000000
    python benchmarks/bench_dashboard.py --small    # 20 campaigns (the smoke test)

The database is built once with bulk SQLAlchemy Core inserts and cached under
/tmp/waha_tui_bench keyed by its size; every measurement runs on a throwaway copy.
Each measurement runs the real `WahaTuiApp` headless (`app.run_test()`) in a child process
of its own, so import time, the database build and the other measurements do not leak into
its timings or its peak RSS. The WAHA simulator runs in one more child process.

Headless Textual builds every frame but writes nothing; the frame probe here also renders
each frame to the terminal string (`render_segments`), so the cost of a real terminal's
output is in the figures (minus the write itself).

Baselines, measured in the same run: an empty Textual `App` (launch, idle CPU, peak RSS),
a bare `sqlite3` SELECT of the same page of campaign rows (refresh tick, sorting), the same
keypresses with no campaign running (keypress latency).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from _common import (
    DbSize,
    cached_database,
    figure,
    heading,
    median,
    ms,
    pct,
    peak_rss_mb,
    python_cmd,
    ru_maxrss_mb,
    simulator_process,
    target,
    working_copy,
)

TARGET_LAUNCH_S = 1.0
TARGET_TICK_MS = 20.0
TARGET_KEY_MS = 100.0
TARGET_SORT_MS = 100.0
TARGET_RSS_MB = 250.0
TARGET_IDLE_PCT = 2.0
SIZE = (120, 40)  # a common terminal; the table shows ~30 rows
RESULT = "RESULT "


# =============================================================================================
# In the child process: probes on the event loop and on the app
# =============================================================================================


class LoopMonitor:
    """Times every callback the asyncio loop runs (Handle._run): busy time, longest stretch."""

    def __init__(self) -> None:
        self.busy = 0.0
        self.longest = 0.0
        self.stalls: list[float] = []  # callbacks over 50 ms, in seconds

    def install(self) -> None:
        original = asyncio.events.Handle._run
        monitor = self
        self.gc_pauses: list[tuple[int, float]] = []  # (generation, seconds)
        gc_started = [0.0]

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                gc_started[0] = time.perf_counter()
                return
            spent = time.perf_counter() - gc_started[0]
            monitor.gc_pauses.append((info["generation"], spent))
            if spent > 0.05:
                log(
                    f"gc generation {info['generation']}: {spent * 1000:.0f} ms, "
                    f"{info['collected']} collected, {len(gc.get_objects(2)):,} objects in "
                    f"generation 2, {gc.get_freeze_count():,} frozen"
                )

        gc.callbacks.append(on_gc)

        def _run(handle: asyncio.events.Handle) -> None:
            started = time.perf_counter()
            try:
                original(handle)
            finally:
                spent = time.perf_counter() - started
                monitor.busy += spent
                if spent > monitor.longest:
                    monitor.longest = spent
                if spent > 0.05:
                    monitor.stalls.append(spent)
                    # Which callback (shown with --verbose): where to point a profiler.
                    log(f"loop callback of {spent * 1000:.0f} ms: {handle!r:.300}")

        asyncio.events.Handle._run = _run  # type: ignore[method-assign]

    def mark(self) -> tuple[float, float, float]:
        """(busy so far, wall clock, longest callback since the last mark); resets `longest`."""
        longest, self.longest = self.longest, 0.0
        return self.busy, time.perf_counter(), longest


@dataclass
class AppProbe:
    """Frames, reloads and cursor moves of a running app, seen from inside its loop."""

    app: Any
    frames: int = 0
    frame_times: list[float] = field(default_factory=list)
    painted_at: float | None = None  # first frame with rows in the campaign table
    rows_at: float | None = None  # first time the table had rows (end of show())
    repaint_seconds: list[tuple[float, float]] = field(default_factory=list)  # (at, spent)
    shows: list[float] = field(default_factory=list)
    show_spans: list[tuple[float, float]] = field(default_factory=list)
    syncs: list[float] = field(default_factory=list)
    width_updates: list[float] = field(default_factory=list)  # DataTable column widths
    db_reads: list[tuple[float, float]] = field(default_factory=list)  # (start, end)
    frame_waiters: list[Callable[[float], None]] = field(default_factory=list)

    def install(self, table_rows: Callable[[], int]) -> None:
        from textual._compositor import CompositorUpdate

        app = self.app
        original_display = app._display

        def display(screen: Any, renderable: Any) -> None:
            original_display(screen, renderable)
            if renderable is None or app._batch_count:
                return
            if isinstance(renderable, CompositorUpdate):
                renderable.render_segments(app.console)  # what a real terminal would be sent
            now = time.perf_counter()
            self.frames += 1
            self.frame_times.append(now)
            if self.painted_at is None:
                try:
                    if table_rows() > 0:
                        self.painted_at = now
                except Exception:
                    pass
            waiters, self.frame_waiters = self.frame_waiters, []
            for waiter in waiters:
                waiter(now)

        app._display = display

    def wrap_screen(self, screen: Any, table_rows: Callable[[], int]) -> None:
        """Times show(), the repaint cycle, and marks when the table first had rows."""
        probe = self
        if hasattr(screen, "show"):
            original_show = screen.show

            def show(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return original_show(*args, **kwargs)
                finally:
                    now = time.perf_counter()
                    probe.shows.append(now - started)
                    probe.show_spans.append((started, now))
                    if probe.rows_at is None and table_rows() > 0:
                        probe.rows_at = now

            screen.show = show
        original_update = screen._on_timer_update

        def on_timer_update() -> None:
            started = time.perf_counter()
            try:
                original_update()
            finally:
                probe.repaint_seconds.append((started, time.perf_counter() - started))

        # Must be set before the screen creates its update timer (on first refresh).
        screen._on_timer_update = on_timer_update

    def wrap_table(self, table: Any) -> None:
        probe = self
        original_widths = getattr(table, "_update_column_widths", None)
        if original_widths is not None:

            def update_column_widths(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return original_widths(*args, **kwargs)
                finally:
                    probe.width_updates.append(time.perf_counter() - started)

            table._update_column_widths = update_column_widths
        if not hasattr(table, "sync"):
            return
        original_sync = table.sync

        def sync(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original_sync(*args, **kwargs)
            finally:
                probe.syncs.append(time.perf_counter() - started)

        table.sync = sync

    def wrap_store(self, store: Any) -> None:
        probe = self
        for name in ("list_campaigns", "campaign_page"):
            original = getattr(store, name, None)
            if original is None:
                continue

            def timed(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return _original(*args, **kwargs)
                finally:
                    probe.db_reads.append((started, time.perf_counter()))

            setattr(store, name, timed)

    async def next_frame(self, timeout: float = 2.0) -> float | None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[float] = loop.create_future()
        self.frame_waiters.append(lambda at: fut.done() or fut.set_result(at))
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return None


async def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


_T0 = time.perf_counter()


def log(message: str) -> None:
    """Progress of a child phase, on stderr (shown with --verbose, or when it fails)."""
    print(f"[{time.perf_counter() - _T0:7.2f}s] {message}", file=sys.stderr, flush=True)


def exit_soon(seconds: float) -> None:
    """A watchdog: leave the process after `seconds` even if the app never finishes closing."""

    def bail() -> None:
        time.sleep(seconds)
        log(f"the app did not close within {seconds:g} s; leaving")
        os._exit(0)

    threading.Thread(target=bail, daemon=True).start()


def emit(result: dict[str, Any]) -> None:
    result["peak_rss_mb"] = peak_rss_mb()
    result["ru_maxrss_mb"] = ru_maxrss_mb()
    print(RESULT + json.dumps(result), flush=True)


# -- launching the real app --------------------------------------------------------------------


@dataclass
class Launched:
    app: Any
    service: Any
    probe: AppProbe
    monitor: LoopMonitor
    t0: float
    service_open: float


def make_app(db: str, sim_url: str, monitor: LoopMonitor, **app_kwargs: Any) -> Launched:
    from waha_tui.config import Settings
    from waha_tui.service import CampaignService
    from waha_tui.tui.app import WahaTuiApp

    t_open = time.perf_counter()
    service = CampaignService.open(Settings(db=db, waha_url=sim_url))
    t0 = time.perf_counter()  # "from constructing the app"
    app = WahaTuiApp(service, **app_kwargs)
    probe = AppProbe(app)
    screen = getattr(app, "main", None)

    def table_rows() -> int:
        scr = screen if screen is not None else app.screen
        return scr.query_one("#campaigns").row_count

    probe.install(table_rows)
    if screen is not None:
        probe.wrap_screen(screen, table_rows)
    probe.wrap_store(service.store)
    return Launched(app, service, probe, monitor, t0, t0 - t_open)


async def wait_painted(launched: Launched, timeout: float = 300.0) -> dict[str, Any]:
    probe = launched.probe
    await wait_until(lambda: probe.painted_at is not None, timeout, "the first painted table")
    table = launched.app.main.query_one("#campaigns")
    launched.probe.wrap_table(table)
    assert probe.painted_at is not None
    return {
        "launch_to_rows_s": (probe.rows_at or probe.painted_at) - launched.t0,
        "launch_to_painted_s": probe.painted_at - launched.t0,
        "service_open_s": launched.service_open,
        "launch_longest_callback_s": launched.monitor.mark()[2],
        "rows": table.row_count,
    }


# -- phase: baseline (an empty Textual App) ---------------------------------------------------


async def phase_baseline(args: argparse.Namespace) -> None:
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    monitor = LoopMonitor()
    monitor.install()
    t0 = time.perf_counter()
    app: App[None] = App()
    probe = AppProbe(app)
    probe.install(lambda: 1)
    async with app.run_test(size=SIZE):
        await wait_until(lambda: probe.painted_at is not None, 60, "the first frame")
        assert probe.painted_at is not None
        launch = probe.painted_at - t0
        idle = await measure_idle(probe, monitor, args.settle, args.idle_seconds)
    rss_empty = peak_rss_mb()

    # Keys on a plain DataTable of as many rows, filled once and never refreshed: what
    # Textual itself costs per keypress.
    class TableApp(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable(cursor_type="row", id="campaigns")

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.add_columns(*[f"col{i}" for i in range(9)])
            table.add_rows(
                [
                    (
                        str(i),
                        f"Campaign {i}",
                        "default",
                        "Completed",
                        "████████ 100/100 sent",
                        "0",
                        "-",
                        "01-01 10:00",
                        "",
                    )
                    for i in range(min(args.campaigns, 10_000))
                ]
            )
            table.focus()

    table_app = TableApp()
    table_probe = AppProbe(table_app)
    table_probe.install(lambda: table_app.query_one(DataTable).row_count)
    async with table_app.run_test(size=SIZE):
        await wait_until(lambda: table_probe.painted_at is not None, 60, "the table")
        await asyncio.sleep(args.settle)
        table = table_app.query_one(DataTable)
        window = max(1, min(20, table.row_count - 1))
        presser = KeyPresser(table_app, table, table_probe, random.Random(11))
        plain_keys = await presser.press(args.presses, (0.05, 0.15), window)
    emit({"launch_s": launch, **idle, "keys_plain_table": plain_keys, "rss_empty_mb": rss_empty})


async def measure_idle(
    probe: AppProbe, monitor: LoopMonitor, settle: float, seconds: float
) -> dict[str, Any]:
    await asyncio.sleep(settle)
    frames0, shows0 = probe.frames, len(probe.shows)
    busy0, wall0, _ = monitor.mark()
    cpu0 = time.process_time()
    await asyncio.sleep(seconds)
    cpu = time.process_time() - cpu0
    busy1, wall1, longest = monitor.mark()
    wall = wall1 - wall0
    return {
        "idle_cpu_pct": 100 * cpu / wall,
        "idle_loop_busy_pct": 100 * (busy1 - busy0) / wall,
        "idle_frames_per_s": (probe.frames - frames0) / wall,
        "idle_reloads_per_s": (len(probe.shows) - shows0) / wall,
        "idle_seconds": wall,
        "idle_longest_callback_s": longest,
    }


# -- phase: idle ------------------------------------------------------------------------------


async def phase_idle(args: argparse.Namespace) -> None:
    monitor = LoopMonitor()
    monitor.install()
    launched = make_app(args.db, args.sim_url, monitor)
    async with launched.app.run_test(size=SIZE):
        launch = await wait_painted(launched)
        idle = await measure_idle(launched.probe, monitor, args.settle, args.idle_seconds)
    await launched.service.aclose()
    emit({**launch, **idle})


# -- phase: refresh ---------------------------------------------------------------------------


def bare_select_seconds(db: str, order: str = "id DESC", repeats: int = 5) -> float:
    """A bare sqlite3 read of what one refresh shows: a page of 100 rows, and the count."""
    import sqlite3

    conn = sqlite3.connect(db)
    times = []
    try:
        for _ in range(repeats):
            started = time.perf_counter()
            conn.execute(f"SELECT * FROM campaign ORDER BY {order} LIMIT 100").fetchall()
            conn.execute("SELECT count(*) FROM campaign").fetchall()
            times.append(time.perf_counter() - started)
    finally:
        conn.close()
    return median(times)


async def phase_refresh(args: argparse.Namespace) -> None:
    import sqlalchemy as sa

    from waha_tui.models import utcnow
    from waha_tui.store import C

    select_s = bare_select_seconds(args.db)
    monitor = LoopMonitor()
    monitor.install()
    # The screen's own refresh timer would race with the timed reloads: push it out.
    launched = make_app(args.db, args.sim_url, monitor, refresh_interval=1e6)
    other = sa.create_engine(f"sqlite:///{args.db}")  # "another process" writing
    rng = random.Random(7)
    ticks: list[dict[str, Any]] = []
    async with launched.app.run_test(size=SIZE):
        launch = await wait_painted(launched)
        await asyncio.sleep(args.settle)
        screen, probe = launched.app.main, launched.probe
        shown = list(screen.campaigns)  # the page on screen: the rows a tick must show
        everyone = range(1, args.campaigns + 1)
        # Tick 0 changes nothing; then, in turn, `changes` campaigns picked among all (on
        # 100,000, hardly ever one on the page shown), and half of them on the page shown.
        for tick in range(2 * args.ticks + 1):
            changes = 0 if tick == 0 else min(args.changes, args.campaigns)
            kind = "none" if tick == 0 else ("anywhere" if tick % 2 else "on_page")
            share = changes // 2 if kind == "on_page" else 0
            on_page = rng.sample(shown, min(len(shown), share))
            ids = sorted(set(on_page) | set(rng.sample(everyone, changes - len(on_page))))
            with other.begin() as conn:
                if ids:
                    conn.execute(
                        sa.update(C)
                        .where(C.c.id.in_(ids))
                        .values(
                            sent=C.c.sent + 1,
                            next_index=sa.func.min(C.c.next_index + 1, C.c.total),
                            updated_at=utcnow(),
                        )
                    )
                expected = dict(
                    conn.execute(sa.select(C.c.id, C.c.sent).where(C.c.id.in_(on_page))).all()
                )
            await wait_until(lambda: not getattr(screen, "_loading", False), 30, "a quiet moment")
            await asyncio.sleep(0)  # the write above is not part of the tick
            shows0, syncs0, reads0 = len(probe.show_spans), len(probe.syncs), len(probe.db_reads)
            # The reload runs as a task of its own and is timed from the step after it ends,
            # so the loop monitor has accounted for every callback of it.
            widths0 = len(probe.width_updates)
            busy0, t0, _ = monitor.mark()
            await asyncio.create_task(screen.reload())
            _, t1, longest = monitor.mark()
            gap = args.tick_gap
            await asyncio.sleep(gap)  # the deferred work: column widths, the repaint
            busy2, t2, longest_after = monitor.mark()
            frames = [at for at in probe.frame_times if t1 <= at < t2]
            repaint = sum(spent for at, spent in probe.repaint_seconds if t0 <= at < t2)
            reads = probe.db_reads[reads0:]
            thread = sum(end - start for start, end in reads)
            shows = probe.show_spans[shows0:]
            # The reload's own synchronous parts: before the read, and from the read's end
            # to the end of show() (the model dict, the cells, the diff into the table).
            sync_parts = (reads[0][0] - t0 if reads else 0.0) + (
                shows[-1][1] - reads[-1][1] if shows and reads else 0.0
            )
            seen = all(
                getattr(screen.campaigns.get(cid), "sent", None) == sent
                for cid, sent in expected.items()
            )
            ticks.append(
                {
                    "changes": changes,
                    "kind": kind,
                    "on_page": len(on_page),
                    "wall_s": t1 - t0,
                    "db_read_s": thread,
                    "reload_sync_s": sync_parts,
                    "event_loop_s": busy2 - busy0,
                    "longest_callback_s": max(longest, longest_after),
                    "show_s": sum(end - start for start, end in shows),
                    "sync_s": sum(probe.syncs[syncs0:]),
                    "column_widths_s": sum(probe.width_updates[widths0:]),
                    "reloads": len(shows),
                    "to_frame_s": (frames[0] - t1) if frames else None,
                    "frames_after": len(frames),
                    "repaint_s": repaint,
                    "changes_seen": seen,
                }
            )
    other.dispose()
    await launched.service.aclose()
    emit({**launch, "bare_select_s": select_s, "ticks": ticks})


# -- phase: keys ------------------------------------------------------------------------------


class KeyPresser:
    """Presses keys from another thread, as a terminal driver does, and times each one
    from the press to the cursor moving (and to the next frame after that).

    Every press moves the cursor exactly once (down `window` times, then up, ...), and
    keys are handled in order, so the n-th move answers the n-th press: a press that
    times out is still matched to its own move if that comes later. After three presses
    in a row go unanswered for `timeout` seconds, or after `budget` seconds, it stops:
    the rest would only queue up behind them.
    """

    def __init__(self, app: Any, table: Any, probe: AppProbe, rng: random.Random) -> None:
        self.app, self.table, self.probe, self.rng = app, table, probe, rng
        self.loop = asyncio.get_running_loop()
        self.lock = threading.Lock()
        self.answered = threading.Event()
        self.pending: collections.deque[float] = collections.deque()
        self.latencies: list[float] = []
        self.to_frame: list[float] = []
        app.watch(table, "cursor_coordinate", self._on_move, init=False)

    def _on_move(self) -> None:
        now = time.perf_counter()
        with self.lock:
            if not self.pending:
                return
            pressed = self.pending.popleft()
            if not self.pending:
                self.answered.set()
        self.latencies.append(now - pressed)
        self.probe.frame_waiters.append(lambda at: self.to_frame.append(at - pressed))

    def _post(self, key: str) -> None:
        from textual import events

        self.app.post_message(events.Key(key, None))

    def run(
        self, presses: int, gap: tuple[float, float], window: int, timeout: float, budget: float
    ) -> dict[str, Any]:
        started = time.perf_counter()
        made = late = 0
        in_a_row = 0
        for i in range(presses):
            if i and i % 20 == 0:
                log(f"{i} presses, slowest {max(self.latencies[-20:], default=0):.3f} s")
            time.sleep(self.rng.uniform(*gap))
            key = "down" if (i // window) % 2 == 0 else "up"
            with self.lock:
                self.answered.clear()
                self.pending.append(time.perf_counter())
            self.loop.call_soon_threadsafe(self._post, key)
            made += 1
            if self.answered.wait(timeout):
                in_a_row = 0
            else:
                late += 1
                in_a_row += 1
                log(f"press {i + 1} unanswered after {timeout:g} s")
                if in_a_row >= 3:
                    break
            if time.perf_counter() - started > budget:
                break
        self.answered.wait(timeout)
        with self.lock:
            now = time.perf_counter()
            unanswered = [now - t for t in self.pending]  # lower bounds
            self.pending.clear()
        return {"made": made, "late": late, "unanswered": unanswered}

    async def press(
        self,
        presses: int,
        gap: tuple[float, float],
        window: int,
        timeout: float = 5.0,
        budget: float = 120.0,
    ) -> dict[str, Any]:
        start = len(self.latencies), len(self.to_frame)
        ran = await asyncio.to_thread(self.run, presses, gap, window, timeout, budget)
        await asyncio.sleep(0.2)  # the last frame
        lat = self.latencies[start[0] :] + ran["unanswered"]
        frames = self.to_frame[start[1] :]
        return {
            "presses": ran["made"],
            "p50_s": pct(lat, 50),
            "p95_s": pct(lat, 95),
            "p99_s": pct(lat, 99),
            "max_s": max(lat) if lat else float("nan"),
            "over_100ms": sum(1 for x in lat if x > TARGET_KEY_MS / 1000),
            "timeouts": ran["late"],
            "unanswered": len(ran["unanswered"]),
            "stopped_early": ran["made"] < presses,
            "frame_p50_s": pct(frames, 50),
            "frame_max_s": max(frames) if frames else float("nan"),
        }


def prepare_running_campaign(store: Any, count: int, row_hint: int) -> int:
    """Refill an existing campaign near the top of the table with `count` pending
    recipients and zero delay, so the running row is on screen while keys are pressed."""
    import sqlalchemy as sa
    from _common import phone_for

    from waha_tui.models import Recipient
    from waha_tui.store import C, R

    with store.read() as conn:
        newest = sa.select(C.c.id).order_by(C.c.id.desc()).limit(row_hint + 1)
        ids = list(conn.execute(newest).scalars())
    cid = ids[-1]
    base = Recipient(campaign_id=0, position=0, phone="1", chat_id="1").model_dump(exclude={"id"})
    rows = []
    for pos in range(count):
        phone = phone_for(95_000, pos)
        row = dict(base)
        row.update(
            campaign_id=cid,
            position=pos,
            phone=phone,
            chat_id=f"{phone}@c.us",
            name=f"Person {pos}",
            variables={"city": "Berlin"},
        )
        rows.append(row)
    with store.write() as conn:
        conn.execute(sa.delete(R).where(R.c.campaign_id == cid))
        conn.execute(sa.insert(R), rows)
        conn.execute(
            sa.update(C)
            .where(C.c.id == cid)
            .values(
                status="Scheduled",
                session="default",
                scheduled_at=datetime.now(UTC) + timedelta(days=3650),
                total=count,
                sent=0,
                failed=0,
                unknown=0,
                next_index=0,
                delay_min=0.0,
                delay_max=0.0,
                pause_reason=None,
                last_error=None,
                completed_at=None,
            )
        )
    return cid


async def phase_keys(args: argparse.Namespace) -> None:
    from waha_tui import events as ev
    from waha_tui.store import Store

    store = Store(args.db)
    cid = prepare_running_campaign(store, args.run_recipients, row_hint=2)
    store.close()
    monitor = LoopMonitor()
    monitor.install()
    launched = make_app(args.db, args.sim_url, monitor)
    app, probe, service = launched.app, launched.probe, launched.service
    processed: list[float] = []
    service.bus.subscribe(
        lambda e: (
            processed.append(time.perf_counter()) if isinstance(e, ev.RecipientProcessed) else None
        )
    )
    rng = random.Random(11)
    async with app.run_test(size=SIZE):
        launch = await wait_painted(launched)
        log(f"painted after {launch['launch_to_painted_s']:.2f} s")
        await asyncio.sleep(args.settle)
        table = app.main.query_one("#campaigns")
        window = max(1, min(20, table.row_count - 1))
        presser = KeyPresser(app, table, probe, rng)
        gap = (0.05, 0.15)
        log("pressing keys, nothing running")

        stalls0 = len(monitor.stalls)
        busy0, w0, _ = monitor.mark()
        idle_keys = await presser.press(args.presses, gap, window)
        busy1, w1, idle_keys["longest_callback_s"] = monitor.mark()
        idle_keys["loop_busy_pct"] = 100 * (busy1 - busy0) / (w1 - w0)
        idle_keys["stalls_over_50ms"] = len(monitor.stalls) - stalls0

        log(f"done: max {idle_keys['max_s']:.3f} s; starting campaign {cid}")
        await service.start(cid, spawn=app.spawn_runner)
        await asyncio.sleep(0.5)  # under way
        log("pressing keys, campaign running")
        n0, shows0, stalls0 = len(processed), len(probe.shows), len(monitor.stalls)
        busy0, w0, _ = monitor.mark()
        running_keys = await presser.press(args.presses, gap, window)
        busy1, w1, longest = monitor.mark()
        still_running = service.pool.is_running(cid)
        running_keys.update(
            loop_busy_pct=100 * (busy1 - busy0) / (w1 - w0),
            longest_callback_s=longest,
            stalls_over_50ms=len(monitor.stalls) - stalls0,
            runner_msgs_per_s=(len(processed) - n0) / (w1 - w0),
            reloads_per_s=(len(probe.shows) - shows0) / (w1 - w0),
            mean_show_s=(sum(probe.shows[shows0:]) / max(1, len(probe.shows) - shows0)),
            ran_throughout=still_running,
        )
        log(f"done: max {running_keys['max_s']:.3f} s; stopping the campaign")
        await service.pool.stop_all("benchmark done", grace=10)
        running_keys["screen_queue_at_end"] = app.main._message_queue.qsize()
        # The figures first: an app whose screen queue is flooded may take long to close.
        emit({**launch, "keys_idle": idle_keys, "keys_running": running_keys})
        exit_soon(30)
        log("closing the app")
    await service.aclose()
    log("closed")


# -- phase: sort ------------------------------------------------------------------------------


async def phase_sort(args: argparse.Namespace) -> None:
    """Every sort, by its key (s: the next sort, S: reversed), and a filter typed in, each
    timed from the key to the table showing the new order (and to the next frame)."""
    from textual import events

    from waha_tui.tui.columns import SORTS

    monitor = LoopMonitor()
    monitor.install()
    # No refresh timer: only the keys read.
    launched = make_app(args.db, args.sim_url, monitor, refresh_interval=1e6)
    app, probe = launched.app, launched.probe
    async with app.run_test(size=SIZE):
        launch = await wait_painted(launched)
        await asyncio.sleep(args.settle)
        screen = app.main

        def settled() -> bool:
            return screen._intent is None and not screen._loading

        async def timed(keys: list[str], check: Callable[[], bool]) -> dict[str, Any]:
            for key in keys[:-1]:
                app.post_message(events.Key(key, key if len(key) == 1 else None))
                await asyncio.sleep(0.05)  # typed, not pasted
            reads0 = len(probe.db_reads)
            busy0, _, _ = monitor.mark()
            key = keys[-1]
            started = time.perf_counter()
            app.post_message(events.Key(key, key if len(key) == 1 else None))
            await wait_until(lambda: settled() and check(), 60, f"the table after {keys}")
            shown_at = time.perf_counter()
            frame = await probe.next_frame()
            busy1, _, longest = monitor.mark()
            reads = probe.db_reads[reads0:]
            return {
                "key_to_table_s": shown_at - started,
                "key_to_frame_s": (frame or shown_at) - started,
                "db_read_s": sum(end - start for start, end in reads),
                "reads": len(reads),
                "event_loop_s": busy1 - busy0,
                "longest_callback_s": longest,
                "rows": len(screen.campaigns),
            }

        sorts = []
        for step in range(len(SORTS)):
            want = SORTS[(step + 1) % len(SORTS)]
            forward = await timed(["s"], lambda w=want: screen._shown_sort == (w, w.descending))
            back = await timed(["S"], lambda w=want: screen._shown_sort == (w, not w.descending))
            sorts.append({"sort": want.label, "forward": forward, "reversed": back})
            log(
                f"sort {want.label}: {ms(forward['key_to_table_s']):.0f} ms, reversed "
                f"{ms(back['key_to_table_s']):.0f} ms"
            )
        needle = "promo"
        typed = await timed(
            ["slash", *needle], lambda: screen.filter_text == needle and screen.count > 0
        )
        cleared = await timed(["escape"], lambda: screen.filter_text == "")
        last = await timed(["G"], lambda: screen.page == screen.pages - 1)
        first = await timed(["g"], lambda: screen.page == 0)
    await launched.service.aclose()
    emit(
        {
            **launch,
            "sorts": sorts,
            "filter": typed,
            "filter_cleared": cleared,
            "to_last": last,
            "to_first": first,
            "bare_page_s": bare_select_seconds(args.db),
            "bare_page_by_name_s": bare_select_seconds(args.db, "lower(name), id"),
        }
    )


PHASES = {
    "baseline": phase_baseline,
    "idle": phase_idle,
    "refresh": phase_refresh,
    "keys": phase_keys,
    "sort": phase_sort,
}


# =============================================================================================
# The orchestrator
# =============================================================================================


def run_child(args: argparse.Namespace, phase: str, db: Path | None, sim_url: str) -> dict:
    cmd = python_cmd(
        "bench_dashboard.py",
        "--phase",
        phase,
        "--sim-url",
        sim_url,
        "--idle-seconds",
        str(args.idle_seconds),
        "--settle",
        str(args.settle),
        "--ticks",
        str(args.ticks),
        "--changes",
        str(args.changes),
        "--tick-gap",
        str(args.tick_gap),
        "--presses",
        str(args.presses),
        "--run-recipients",
        str(args.run_recipients),
        "--campaigns",
        str(args.campaigns),
    )
    if db is not None:
        cmd += ["--db", str(db)]
    proc = subprocess.run(
        cmd,
        stdout=subprocess.PIPE,
        stderr=None if args.verbose else subprocess.PIPE,
        text=True,
        timeout=1800,
    )
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT) :])
    sys.stderr.write(proc.stdout + (proc.stderr or ""))
    raise RuntimeError(f"phase {phase} failed with exit code {proc.returncode}")


def orchestrate(args: argparse.Namespace) -> int:
    size = DbSize(args.campaigns, args.recipients)
    idle_size = DbSize(args.idle_campaigns, args.idle_campaigns * 100)
    big = cached_database(size)
    idle_db = cached_database(idle_size)
    with tempfile.TemporaryDirectory(prefix="bench_dashboard_") as tmp, simulator_process() as url:
        folder = Path(tmp)
        base = run_child(args, "baseline", None, url)
        refresh = run_child(args, "refresh", working_copy(big, folder, "refresh.db"), url)
        sort = run_child(args, "sort", working_copy(big, folder, "sort.db"), url)
        keys = run_child(args, "keys", working_copy(big, folder, "keys.db"), url)
        idle = run_child(args, "idle", working_copy(idle_db, folder, "idle.db"), url)

    heading(f"dashboard: launch ({size.campaigns:,} campaigns, {size.recipients:,} recipients)")
    launches = [refresh["launch_to_painted_s"], keys["launch_to_painted_s"]]
    launches.append(sort["launch_to_painted_s"])
    launch = median(launches)
    figure("dashboard.empty_app_launch_ms", ms(base["launch_s"]), "ms", "baseline: App()")
    figure(
        "dashboard.launch_to_rows_ms",
        ms(
            median(
                [refresh["launch_to_rows_s"], keys["launch_to_rows_s"], sort["launch_to_rows_s"]]
            )
        ),
        "ms",
    )
    figure(
        "dashboard.launch_to_painted_ms",
        ms(launch),
        "ms",
        f"median of {len(launches)}: {', '.join(f'{ms(x):.0f}' for x in launches)} ms",
    )
    figure(
        "dashboard.launch_longest_callback_ms",
        ms(refresh["launch_longest_callback_s"]),
        "ms",
        "longest event-loop callback during launch",
    )
    figure(
        "dashboard.service_open_ms",
        ms(refresh["service_open_s"]),
        "ms",
        "CampaignService.open, before the app is built",
    )
    target("dashboard.launch_to_painted", launch < TARGET_LAUNCH_S, f"< {TARGET_LAUNCH_S} s")

    heading("dashboard: sorting, keypress to the table in the new order (s, then S)")
    figure(
        "dashboard.sort.bare_sqlite3_page_ms",
        ms(sort["bare_page_s"]),
        "ms",
        "baseline: sqlite3 page of 100 by id + count(*)",
    )
    figure(
        "dashboard.sort.bare_sqlite3_page_by_name_ms",
        ms(sort["bare_page_by_name_s"]),
        "ms",
        "the same by lower(name), its index",
    )
    worst = 0.0
    for entry in sort["sorts"]:
        for way in ("forward", "reversed"):
            t = entry[way]
            worst = max(worst, t["key_to_table_s"])
            label = entry["sort"].replace(" ", "_")
            figure(
                f"dashboard.sort.{label}.{way}_ms",
                ms(t["key_to_table_s"]),
                "ms",
                f"db {ms(t['db_read_s']):.1f} ms in {t['reads']} reads; loop "
                f"{ms(t['event_loop_s']):.1f} ms; to frame {ms(t['key_to_frame_s']):.0f} ms",
            )
    figure("dashboard.sort.worst_ms", ms(worst), "ms", "the slowest of the above")
    for name in ("filter", "filter_cleared", "to_last", "to_first"):
        t = sort[name]
        figure(
            f"dashboard.{name}_ms",
            ms(t["key_to_table_s"]),
            "ms",
            f"db {ms(t['db_read_s']):.1f} ms in {t['reads']} reads; loop "
            f"{ms(t['event_loop_s']):.1f} ms",
        )
    target("dashboard.sort", worst < TARGET_SORT_MS / 1000, f"< {TARGET_SORT_MS:.0f} ms")

    heading(f"dashboard: one refresh tick, {args.changes} campaigns changed by another connection")
    ticks = [t for t in refresh["ticks"] if t["kind"] == "anywhere"]
    page_ticks = [t for t in refresh["ticks"] if t["kind"] == "on_page"]
    none = [t for t in refresh["ticks"] if t["kind"] == "none"]

    def tick_figure(key: str, field_name: str, note: str = "", among: Any = None) -> float:
        values = [t[field_name] for t in (ticks if among is None else among)]
        value = ms(median(values))
        spread = f"median of {len(values)}, max {ms(max(values)):.1f}"
        figure(f"dashboard.tick.{key}_ms", value, "ms", (note + "; " if note else "") + spread)
        return value

    figure(
        "dashboard.tick.bare_sqlite3_select_ms",
        ms(refresh["bare_select_s"]),
        "ms",
        "baseline: sqlite3 page of 100 by id + count(*)",
    )
    tick_figure("db_read", "db_read_s", "store read in the worker thread")
    tick_figure("reload_wall", "wall_s", "MainScreen.reload(), start to end")
    tick_figure("reload_sync", "reload_sync_s", "reload's synchronous parts: the page + show()")
    tick_figure("show", "show_s", "show(): cells for the changed rows + sync")
    tick_figure("sync", "sync_s", "KeyedTable.sync()")
    tick_figure("column_widths", "column_widths_s", "DataTable re-measuring columns (deferred)")
    repainted = sum(1 for t in ticks if t["frames_after"])
    tick_figure("repaint", "repaint_s", f"screen updates ({repainted} of {len(ticks)} drew)")
    tick_figure("longest_callback", "longest_callback_s", "longest single loop callback")
    loop_ms = tick_figure(
        "event_loop",
        "event_loop_s",
        f"all loop time from the reload to {args.tick_gap:g} s after it",
    )
    if page_ticks:
        half = page_ticks[0]["on_page"]
        tick_figure(
            "on_page.reload_sync", "reload_sync_s", f"{half} of them on the page", page_ticks
        )
        tick_figure("on_page.repaint", "repaint_s", "", page_ticks)
        tick_figure("on_page.event_loop", "event_loop_s", "", page_ticks)
    if none:
        figure(
            "dashboard.tick_nochange.event_loop_ms",
            ms(none[0]["event_loop_s"]),
            "ms",
            "the same with nothing changed",
        )
        figure("dashboard.tick_nochange.reload_sync_ms", ms(none[0]["reload_sync_s"]), "ms")
    if not all(t["changes_seen"] for t in ticks + page_ticks):
        print("warning: a reload did not show every change", flush=True)
    target(
        "dashboard.tick.event_loop",
        loop_ms < TARGET_TICK_MS,
        f"< {TARGET_TICK_MS:.0f} ms event-loop time",
    )

    heading("dashboard: keypress latency (press to cursor moved), keys pressed from a thread")
    k_idle, k_run = keys["keys_idle"], keys["keys_running"]
    plain = base["keys_plain_table"]
    figure(
        "dashboard.keys_plain_datatable.p50_ms",
        ms(plain["p50_s"]),
        "ms",
        f"baseline: a plain DataTable of {min(args.campaigns, 10_000):,} rows, no refresh",
    )
    figure("dashboard.keys_plain_datatable.max_ms", ms(plain["max_s"]), "ms")
    figure("dashboard.keys_idle.p50_ms", ms(k_idle["p50_s"]), "ms", "baseline: nothing running")
    figure("dashboard.keys_idle.max_ms", ms(k_idle["max_s"]), "ms", f"{k_idle['presses']} presses")
    figure(
        "dashboard.keys_running.p50_ms",
        ms(k_run["p50_s"]),
        "ms",
        "a zero-delay campaign running in the app",
    )
    figure("dashboard.keys_running.p95_ms", ms(k_run["p95_s"]), "ms")
    figure("dashboard.keys_running.p99_ms", ms(k_run["p99_s"]), "ms")
    figure("dashboard.keys_running.max_ms", ms(k_run["max_s"]), "ms", f"{k_run['presses']} presses")
    figure("dashboard.keys_running.over_100ms", k_run["over_100ms"], "presses")
    figure(
        "dashboard.keys_running.unanswered_after_5s",
        k_run["timeouts"],
        "presses",
        "stopped early after 3 in a row" if k_run["stopped_early"] else "",
    )
    figure(
        "dashboard.keys_running.to_frame_p50_ms",
        ms(k_run["frame_p50_s"]),
        "ms",
        "press to the next frame after the move",
    )
    figure(
        "dashboard.keys_running.loop_busy_pct",
        k_run["loop_busy_pct"],
        "%",
        f"idle: {k_idle['loop_busy_pct']:.1f} %",
    )
    figure("dashboard.keys_running.longest_callback_ms", ms(k_run["longest_callback_s"]), "ms")
    figure(
        "dashboard.keys_running.runner_msgs_per_s",
        k_run["runner_msgs_per_s"],
        "msg/s",
        "the campaign's pace meanwhile",
    )
    figure(
        "dashboard.keys_running.reloads_per_s",
        k_run["reloads_per_s"],
        "/s",
        f"mean show() {ms(k_run['mean_show_s']):.1f} ms",
    )
    figure(
        "dashboard.keys_running.screen_queue_at_end",
        k_run["screen_queue_at_end"],
        "msgs",
        "messages waiting in MainScreen's queue",
    )
    if not k_run["ran_throughout"]:
        print("warning: the campaign finished before the last press", flush=True)
    target(
        "dashboard.keys_running.max",
        k_run["over_100ms"] == 0 and k_run["timeouts"] == 0,
        f"no press waits > {TARGET_KEY_MS:.0f} ms",
    )

    heading("dashboard: memory")
    rss = max(refresh["peak_rss_mb"], keys["peak_rss_mb"], sort["peak_rss_mb"])
    figure("dashboard.peak_rss_mb", rss, "MiB", "VmHWM, max of the refresh, sort, keys children")
    figure(
        "dashboard.ru_maxrss_mb",
        max(refresh["ru_maxrss_mb"], keys["ru_maxrss_mb"], sort["ru_maxrss_mb"]),
        "MiB",
        "getrusage ru_maxrss of the same children",
    )
    figure("dashboard.empty_app_peak_rss_mb", base["rss_empty_mb"], "MiB", "baseline: App()")
    target("dashboard.peak_rss", rss < TARGET_RSS_MB, f"< {TARGET_RSS_MB:.0f} MB")

    heading(f"dashboard: idle, {idle_size.campaigns:,} campaigns, nothing running")
    figure(
        "dashboard.idle_cpu_pct",
        idle["idle_cpu_pct"],
        "% core",
        f"process CPU over {idle['idle_seconds']:.1f} s",
    )
    figure("dashboard.empty_app_idle_cpu_pct", base["idle_cpu_pct"], "% core", "baseline: App()")
    figure("dashboard.idle_loop_busy_pct", idle["idle_loop_busy_pct"], "%")
    figure("dashboard.idle_frames_per_s", idle["idle_frames_per_s"], "/s")
    figure("dashboard.idle_reloads_per_s", idle["idle_reloads_per_s"], "/s")
    target(
        "dashboard.idle_cpu",
        idle["idle_cpu_pct"] < TARGET_IDLE_PCT,
        f"< {TARGET_IDLE_PCT:.0f} % of a core",
    )
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--campaigns", type=int, default=100_000)
    p.add_argument("--recipients", type=int, default=10_000_000)
    p.add_argument("--idle-campaigns", type=int, default=1_000)
    p.add_argument("--idle-seconds", type=float, default=5.0)
    p.add_argument("--settle", type=float, default=2.0, help="seconds after launch first")
    p.add_argument("--ticks", type=int, default=5, help="refresh ticks to time")
    p.add_argument("--changes", type=int, default=100, help="campaigns changed per tick")
    p.add_argument("--tick-gap", type=float, default=1.0, help="seconds watched after a tick")
    p.add_argument("--presses", type=int, default=100, help="keypresses per measurement")
    p.add_argument(
        "--run-recipients",
        type=int,
        default=20_000,
        help="recipients of the campaign running during the keypresses",
    )
    p.add_argument("--small", action="store_true", help="tiny sizes (the smoke test)")
    p.add_argument("--verbose", action="store_true", help="show the children's progress")
    p.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    p.add_argument("--db", help=argparse.SUPPRESS)
    p.add_argument("--sim-url", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.small:
        args.campaigns, args.recipients, args.idle_campaigns = 20, 1000, 20
        args.idle_seconds, args.settle, args.ticks = 0.5, 0.2, 1
        args.changes, args.presses, args.run_recipients = 10, 6, 2000
        args.tick_gap = 0.3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.phase:
        asyncio.run(PHASES[args.phase](args))
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    raise SystemExit(main())
