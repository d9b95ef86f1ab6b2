"""WAHA's acks at 5,000 a second over the WebSocket while the dashboard is open on the big
database: every ack written within 1 s of its arrival, no keypress waiting over 100 ms.

    python benchmarks/bench_acks.py            # 100,000 campaigns, 10,000,000 recipients, 10 s
    python benchmarks/bench_acks.py --rate 5000 --seconds 30
    python benchmarks/bench_acks.py --small    # 20 campaigns, 1 s at 500/s (the smoke test)

Three processes besides this one:

- the ack source: the WAHA simulator (its `/ws` and its HTTP API, so the app's sessions poll
  is answered too), with a pump on its event loop that emits `message.ack` events through
  the simulator's own builder (`EventHub._ack`: WAHA's envelope and payload) at a steady
  rate, each stamped with its send time (the envelope's `timestamp`, ms);
- the bare reader (the baseline): a `websockets` client on the same `/ws`, json-decoding
  each frame and nothing more: what the source and the socket alone cost;
- the real `WahaTuiApp`, headless (`run_test`, 120x40), `listen=True`, on a working copy
  of the cached database. Each event is stamped when the feed hands it to the listener
  (`Listener._arrived`, wrapped) and when `delivery.apply`'s transaction that wrote it
  has committed (`delivery.apply`, wrapped: it returns right after the commit). Keys
  (down/up) are pressed from a thread every ~100 ms meanwhile (bench_dashboard's
  KeyPresser).

The acks: the sent recipients of a few hundred campaigns of the database, sent in an
interleaved stream as several campaigns running at once would be acknowledged (SERVER
soon after each send, DEVICE a little later, READ for half of them much later), some sent
twice, some in reverse order (READ before DEVICE before SERVER, as WAHA may), and one in a
hundred for a message that is not ours. At the end every recipient's `ack` in the database
is compared with the highest level it was sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from _common import (
    ROOT,
    DbSize,
    cached_database,
    figure,
    heading,
    ms,
    pct,
    python_cmd,
    target,
    working_copy,
)
from bench_dashboard import (
    RESULT,
    SIZE,
    KeyPresser,
    LoopMonitor,
    emit,
    exit_soon,
    log,
    make_app,
    wait_painted,
    wait_until,
)

TARGET_WRITTEN_S = 1.0
TARGET_KEY_MS = 100.0
SESSION = "default"
READY = "READY"
FOREIGN = "3EB0FFFF"  # the start of the ids of messages that are not ours (no campaign's)


# =============================================================================================
# The acks to send
# =============================================================================================


def plan_acks(db: Path, count: int, seed: int = 5) -> list[tuple[str, str, int]]:
    """`count` acks (message id, chat id, level) for the sent recipients of the database,
    in the order a WAHA would send them while several campaigns run: a campaign's sends
    are spread in time and overlap other campaigns'; each message's acks follow its send
    (SERVER ~0.3 s, DEVICE ~1-3 s, READ for half ~5-25 s later)."""
    rng = random.Random(seed)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        ids = [
            cid
            for (cid,) in conn.execute(
                "SELECT id FROM campaign WHERE sent > 0 ORDER BY id"
            ).fetchall()
        ]
        rng.shuffle(ids)
        need = count * 10 // 22 + 1  # ~2.2 acks per message
        messages: list[tuple[float, str, str]] = []  # send time, message id, chat id
        for cid in ids:
            rows = conn.execute(
                "SELECT message_id, chat_id FROM recipient WHERE campaign_id = ? AND "
                "status = 'sent' AND wa_id IS NOT NULL ORDER BY position",
                (cid,),
            ).fetchall()
            start, gap = rng.uniform(0, 60), rng.uniform(0.05, 0.3)
            messages += [(start + k * gap, mid, chat) for k, (mid, chat) in enumerate(rows)]
            if len(messages) >= need:
                break
    finally:
        conn.close()
    if not messages:
        raise SystemExit(f"error: {db} has no sent recipient with a wa_id to acknowledge")
    stream: list[tuple[float, str, str, int]] = []
    for sent, mid, chat in messages:
        draw = rng.random()
        levels = [1] if draw < 0.1 else [1, 2] if draw < 0.5 else [1, 2, 3]
        times = [
            sent + rng.uniform(0.1, 0.5),
            sent + rng.uniform(1, 3),
            sent + rng.uniform(5, 25),
        ][: len(levels)]
        if len(levels) > 1 and rng.random() < 0.03:
            levels.reverse()  # out of order: the last level first
        for when, level in zip(times, levels, strict=True):
            stream.append((when, mid, chat, level))
            if rng.random() < 0.03:
                stream.append((when + rng.uniform(0, 0.5), mid, chat, level))  # twice
        if rng.random() < 0.01:
            # Another tool's message on the same WAHA: matches no recipient of ours.
            stream.append((sent, f"true_{chat}_{FOREIGN}{rng.getrandbits(40):010X}", chat, 1))
    stream.sort()
    return [(mid, chat, level) for _, mid, chat, level in stream[:count]]


def expected_acks(plan: list[tuple[str, str, int]]) -> dict[str, int]:
    """The highest level each message was sent (the level its recipient must end at)."""
    from waha_tui.waha.message_ids import bare

    best: dict[str, int] = {}
    for mid, _chat, level in plan:
        wa = bare(mid)
        best[wa] = max(level, best.get(wa, level))
    return best


def check_database(db: Path, plan: list[tuple[str, str, int]]) -> dict[str, Any]:
    """Every recipient's ack against the highest level sent for it."""
    want = expected_acks(plan)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    found: dict[str, int | None] = {}
    try:
        wanted = sorted(want)
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for wa, ack in conn.execute(
                f"SELECT wa_id, ack FROM recipient WHERE wa_id IN ({marks})", chunk
            ):
                found[wa] = ack
        acked = conn.execute("SELECT count(*) FROM recipient WHERE ack IS NOT NULL").fetchone()[0]
        delivered, read = conn.execute("SELECT sum(delivered), sum(read) FROM campaign").fetchone()
    finally:
        conn.close()
    ours = {wa: level for wa, level in want.items() if wa in found}
    right = sum(1 for wa, level in ours.items() if found[wa] == level)
    return {
        "messages": len(ours),
        "foreign": len(want) - len(ours),
        "right": right,
        "acked_in_db": acked,
        "delivered_counted": delivered or 0,
        "delivered_expected": sum(1 for level in ours.values() if level >= 2),
        "read_counted": read or 0,
        "read_expected": sum(1 for level in ours.values() if level >= 3),
    }


# =============================================================================================
# Child: the ack source (the simulator and a pump on its loop)
# =============================================================================================


async def pump(hub: Any, plan: list[tuple[str, str, int]], rate: float) -> dict[str, Any]:
    """The plan's acks at `rate` a second, on the simulator's loop: what is due is built
    and queued each millisecond; done when every socket has written its queue."""
    from waha_tui.simulator.state import SentMessage

    messages = [SentMessage(SESSION, chat, "text", "", mid, 0.0) for mid, chat, _ in plan]
    deadline = time.monotonic() + 30
    while not hub.listeners:  # the handshake is done before the server counts the socket in
        if time.monotonic() > deadline:
            raise RuntimeError("nobody listens on /ws")
        await asyncio.sleep(0.01)
    started = time.perf_counter()
    sent, behind = 0, 0
    while sent < len(plan):
        due = min(len(plan), int((time.perf_counter() - started) * rate) + 1)
        behind = max(behind, due - sent)
        while sent < due:
            hub._ack(SESSION, messages[sent], plan[sent][2])  # WAHA's envelope, stamped now
            sent += 1
        await asyncio.sleep(0.001)
    pumped = time.perf_counter() - started
    while any(not listener.outbox.empty() for listener in hub.listeners):
        await asyncio.sleep(0.002)
    return {
        "sent": sent,
        "pump_s": pumped,
        "flushed_s": time.perf_counter() - started,
        "most_due_at_once": behind,
    }


def phase_source(args: argparse.Namespace) -> None:
    from waha_tui.simulator.server import SimulatorServer

    plan = [tuple(x) for x in json.loads(Path(args.plan).read_text())]
    server = SimulatorServer().start()
    hub = server.sim.events
    print(f"URL {server.url}", flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        if words[0] == "go":
            loop = hub._loop  # bound by the listener's handshake (the first call)
            assert loop is not None, "nobody called the simulator"
            done = asyncio.run_coroutine_threadsafe(pump(hub, plan, float(words[1])), loop)
            print(RESULT + json.dumps(done.result()), flush=True)
    server.stop()


# =============================================================================================
# Child: the bare reader (the baseline)
# =============================================================================================


async def phase_bare(args: argparse.Namespace) -> None:
    from websockets.asyncio.client import connect

    from waha_tui.waha.feed import MAX_FRAME, events_url

    lags: list[float] = []
    arrivals: list[float] = []
    async with connect(events_url(args.url), max_size=MAX_FRAME) as ws:
        print(READY, flush=True)
        while len(lags) < args.expect:
            wait = 5.0 if lags else 60.0
            try:
                raw = await asyncio.wait_for(ws.recv(), wait)
            except TimeoutError:
                break
            now = time.time()
            data = json.loads(raw)
            if data.get("event") != "message.ack":
                continue
            lags.append(now - data["timestamp"] / 1000)
            arrivals.append(now)
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else float("nan")
    emit(
        {
            "received": len(lags),
            "per_s": (len(lags) - 1) / span if span and span > 0 else float("nan"),
            "lag_p50_s": pct(lags, 50),
            "lag_p99_s": pct(lags, 99),
            "lag_max_s": max(lags, default=float("nan")),
        }
    )


# =============================================================================================
# Child: the app
# =============================================================================================


async def phase_app(args: argparse.Namespace) -> None:
    from waha_tui import delivery
    from waha_tui import listener as listener_module
    from waha_tui.waha.envelope import AckEvent

    # Stamps, from outside the production code: when the feed handed each event over,
    # and when the transaction that wrote it committed (apply returns right after).
    arrived: dict[int, float] = {}
    written: list[tuple[float, float, float]] = []  # (written at, arrival->, sent->) s
    # (events, seconds in apply, hop to it, its commit (a WAL checkpoint rides on one))
    batches: list[tuple[int, float, float, float]] = []
    commits: list[float] = []  # when a write transaction's COMMIT began
    original_arrived = listener_module.Listener._arrived
    original_apply = delivery.apply
    flushes: list[float] = []

    def arrived_hook(self: Any, events: list[Any]) -> None:
        now = time.perf_counter()
        for e in events:
            arrived[id(e)] = now
        original_arrived(self, events)

    def apply_hook(store: Any, events: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        result = original_apply(store, events, **kwargs)
        done, wall = time.perf_counter(), time.time()
        for e in events:
            at = arrived.pop(id(e), None)
            if at is not None and isinstance(e, AckEvent):
                written.append((done, done - at, wall - e.at.timestamp()))
        hop = started - flushes[-1] if flushes else 0.0
        commit = done - commits[-1] if commits and commits[-1] > started else 0.0
        batches.append((len(events), done - started, hop, commit))
        log(
            f"batch of {len(events)}: apply {ms(done - started):.0f} ms (its commit "
            f"{ms(commit):.0f} ms), hop {ms(hop):.1f} ms"
        )
        return result

    original_flush = listener_module.Listener._flush

    async def flush_hook(self: Any) -> None:
        flushes.append(time.perf_counter())
        await original_flush(self)

    listener_module.Listener._arrived = arrived_hook  # type: ignore[method-assign]
    listener_module.Listener._flush = flush_hook  # type: ignore[method-assign]
    delivery.apply = apply_hook

    monitor = LoopMonitor()
    monitor.install()
    launched = make_app(args.db, args.url, monitor)
    app = launched.app
    import sqlalchemy as sa

    sa.event.listen(
        launched.service.store.engine, "commit", lambda _conn: commits.append(time.perf_counter())
    )
    async with app.run_test(size=SIZE):
        launch = await wait_painted(launched)
        await wait_until(
            lambda: app.listener is not None and app.listener.state.phase == "live",
            30,
            "the event feed live",
        )
        await asyncio.sleep(args.settle)
        table = app.main.query_one("#campaigns")
        window = max(1, min(20, table.row_count - 1))
        presser = KeyPresser(app, table, launched.probe, random.Random(11))
        print(READY, flush=True)
        log("ready; waiting for the first ack")
        await wait_until(lambda: bool(arrived or written), 60, "the first ack")
        first = time.perf_counter()
        stalls0 = len(monitor.stalls)
        busy0, w0, _ = monitor.mark()
        keys = await presser.press(10_000, (0.05, 0.15), window, budget=args.seconds)
        busy1, w1, longest = monitor.mark()
        log(f"keys done: max {keys['max_s']:.3f} s; waiting for the writes")
        try:
            await wait_until(lambda: len(written) >= args.expect, args.seconds + 60, "the writes")
        except RuntimeError as exc:
            log(str(exc))
        last = written[-1][0] if written else first
        listener = app.listener
        assert listener is not None
        since = [x[1] for x in written]
        sent = [x[2] for x in written]
        per_second: dict[int, float] = {}
        for at, lag, _ in written:
            second = int(at - first)
            per_second[second] = max(per_second.get(second, 0.0), lag)
        sizes = [b[0] for b in batches]
        applies = [b[1] for b in batches]
        result = {
            **launch,
            "written": len(written),
            "expected": args.expect,
            "written_per_s": len(written) / (last - first) if last > first else float("nan"),
            "arrival_p50_s": pct(since, 50),
            "arrival_p99_s": pct(since, 99),
            "arrival_max_s": max(since, default=float("nan")),
            "sent_p50_s": pct(sent, 50),
            "sent_p99_s": pct(sent, 99),
            "sent_max_s": max(sent, default=float("nan")),
            "worst_by_second_s": [per_second[k] for k in sorted(per_second)],
            "batches": len(batches),
            "batch_p50": pct(sizes, 50),
            "batch_max": max(sizes, default=0),
            "apply_p50_s": pct(applies, 50),
            "apply_max_s": max(applies, default=float("nan")),
            "apply_total_s": sum(applies),
            "commit_p50_s": pct([b[3] for b in batches], 50),
            "commit_max_s": max((b[3] for b in batches), default=float("nan")),
            "commit_total_s": sum(b[3] for b in batches),
            "hop_max_s": max((b[2] for b in batches), default=float("nan")),
            "keys": keys,
            "loop_busy_pct": 100 * (busy1 - busy0) / (w1 - w0),
            "longest_callback_s": longest,
            "stalls_over_50ms": len(monitor.stalls) - stalls0,
            "frames_received": listener.feed.received,
            "frames_malformed": listener.feed.malformed,
            "frames_ignored": listener.feed.ignored,
        }
        emit(result)
        exit_soon(30)
    await launched.service.aclose()


# =============================================================================================
# The orchestrator
# =============================================================================================


class Child:
    """A child process whose stdout lines are read on a thread (so a wait has a timeout);
    its stderr goes to a file, shown when it fails (or live with --verbose)."""

    def __init__(self, cmd: list[str], verbose: bool, folder: Path, name: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("WAHA_API_KEY", None)
        self.name = name
        self.err_path = folder / f"{name}.stderr"
        self._err = None if verbose else open(self.err_path, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
            cwd=ROOT,
            env=env,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = ""
                if time.monotonic() > deadline:
                    self.fail(f"no {prefix.strip()!r} within {timeout:g} s")
            if line is None:
                self.fail(f"exited ({self.proc.wait()}) before {prefix.strip()!r}")
            if line and line.startswith(prefix):
                return line[len(prefix) :]

    def result(self, timeout: float) -> dict[str, Any]:
        return json.loads(self.wait_for(RESULT, timeout))

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def fail(self, why: str) -> None:
        err = self.err_path.read_text() if self._err is not None else ""
        raise RuntimeError(f"{self.name}: {why}\n{err[-4000:]}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._err is not None:
            self._err.close()


@contextmanager
def child(cmd: list[str], args: argparse.Namespace, folder: Path, name: str) -> Iterator[Child]:
    c = Child(cmd, args.verbose, folder, name)
    try:
        yield c
    finally:
        c.close()


def orchestrate(args: argparse.Namespace) -> int:
    size = DbSize(args.campaigns, args.recipients)
    pristine = cached_database(size)
    count = int(args.rate * args.seconds)
    plan = plan_acks(pristine, count)
    want = expected_acks(plan)
    with tempfile.TemporaryDirectory(prefix="bench_acks_") as tmp:
        folder = Path(tmp)
        plan_path = folder / "plan.json"
        plan_path.write_text(json.dumps(plan))
        db = working_copy(pristine, folder, "acks.db")
        # On disk before the app opens it: else the first WAL checkpoint's fsync waits for
        # gigabytes of the fresh copy to be written back (a second, once; no user's file).
        with open(db, "rb+") as f:
            os.fsync(f.fileno())
        source_cmd = python_cmd("bench_acks.py", "--phase", "source", "--plan", str(plan_path))
        with child(source_cmd, args, folder, "source") as source:
            url = source.wait_for("URL ", 30)
            common = ["--url", url, "--expect", str(len(plan)), "--seconds", str(args.seconds)]

            cmd = python_cmd("bench_acks.py", "--phase", "bare", *common)
            with child(cmd, args, folder, "bare reader") as bare_child:
                bare_child.wait_for(READY, 30)
                source.send(f"go {args.rate}")
                bare_sent = source.result(args.seconds * 5 + 60)
                bare = bare_child.result(60)

            cmd = python_cmd(
                "bench_acks.py", "--phase", "app", "--db", str(db), "--settle", str(args.settle)
            )
            with child(cmd + common, args, folder, "app") as app_child:
                app_child.wait_for(READY, 600)
                source.send(f"go {args.rate}")
                app_sent = source.result(args.seconds * 5 + 60)
                app = app_child.result(args.seconds + 120)
                app_child.proc.wait(timeout=60)
            source.send("quit")
        check = check_database(db, plan)

    heading(
        f"acks: {len(plan):,} acks at {args.rate:,.0f}/s over /ws, the dashboard open "
        f"({size.campaigns:,} campaigns, {size.recipients:,} recipients)"
    )
    figure(
        "acks.bare_reader_per_s",
        bare["per_s"],
        "acks/s",
        f"baseline: websockets + json.loads, {bare['received']:,} of {len(plan):,} received",
    )
    figure("acks.bare_reader_lag_p50_ms", ms(bare["lag_p50_s"]), "ms", "sent by the source ->")
    figure("acks.bare_reader_lag_p99_ms", ms(bare["lag_p99_s"]), "ms", "received and decoded")
    figure("acks.bare_reader_lag_max_ms", ms(bare["lag_max_s"]), "ms")
    figure(
        "acks.source_pump_s",
        app_sent["pump_s"],
        "s",
        f"the source's own time to emit them (bare run: {bare_sent['pump_s']:.2f} s)",
    )
    figure(
        "acks.written_per_s",
        app["written_per_s"],
        "acks/s",
        f"{app['written']:,} of {len(plan):,} written, first arrival to last commit",
    )
    figure("acks.written_within_ms.p50", ms(app["arrival_p50_s"]), "ms", "arrival at the feed ->")
    figure("acks.written_within_ms.p99", ms(app["arrival_p99_s"]), "ms", "committed")
    figure("acks.written_within_ms.max", ms(app["arrival_max_s"]), "ms")
    figure("acks.sent_to_written_ms.p50", ms(app["sent_p50_s"]), "ms", "sent by the source ->")
    figure("acks.sent_to_written_ms.p99", ms(app["sent_p99_s"]), "ms", "committed")
    figure("acks.sent_to_written_ms.max", ms(app["sent_max_s"]), "ms")
    worst = ", ".join(f"{ms(x):.0f}" for x in app["worst_by_second_s"])
    figure("acks.written_within_ms.max_by_second", worst, "ms", "the max, second by second")
    figure(
        "acks.batches",
        app["batches"],
        "",
        f"events per batch p50 {app['batch_p50']:.0f}, max {app['batch_max']}",
    )
    figure(
        "acks.apply_ms.p50",
        ms(app["apply_p50_s"]),
        "ms",
        f"delivery.apply per batch; max {ms(app['apply_max_s']):.0f} ms, "
        f"{app['apply_total_s']:.2f} s in all",
    )
    figure(
        "acks.commit_ms.p50",
        ms(app["commit_p50_s"]),
        "ms",
        f"the COMMIT of apply's transaction (with any WAL checkpoint); max "
        f"{ms(app['commit_max_s']):.0f} ms, {app['commit_total_s']:.2f} s in all",
    )
    figure(
        "acks.flush_to_apply_max_ms",
        ms(app["hop_max_s"]),
        "ms",
        "the listener's flush to apply running in its thread",
    )
    figure(
        "acks.recipients_right",
        check["right"],
        "",
        f"of {check['messages']:,} acked recipients end at the highest level sent "
        f"({check['acked_in_db']:,} with an ack in the database; "
        f"{check['foreign']} acks were for no message of ours)",
    )
    figure(
        "acks.counters_right",
        "yes"
        if (check["delivered_counted"], check["read_counted"])
        == (check["delivered_expected"], check["read_expected"])
        else "no",
        "",
        f"campaigns' delivered {check['delivered_counted']:,} (expected "
        f"{check['delivered_expected']:,}), read {check['read_counted']:,} "
        f"(expected {check['read_expected']:,})",
    )
    keys = app["keys"]
    figure(
        "acks.keys_running.p50_ms",
        ms(keys["p50_s"]),
        "ms",
        "keypress to cursor moved, acks flowing",
    )
    figure("acks.keys_running.p99_ms", ms(keys["p99_s"]), "ms")
    figure(
        "acks.keys_running.max_ms",
        ms(keys["max_s"]),
        "ms",
        f"{keys['presses']} presses, {keys['over_100ms']} over {TARGET_KEY_MS:.0f} ms",
    )
    figure(
        "acks.loop_busy_pct",
        app["loop_busy_pct"],
        "%",
        f"longest callback {ms(app['longest_callback_s']):.0f} ms, "
        f"{app['stalls_over_50ms']} over 50 ms",
    )
    foreign = sum(1 for wa in want if wa.startswith(FOREIGN))
    all_written = (
        app["written"] >= len(plan)
        and check["right"] == check["messages"] == check["acked_in_db"]
        and check["foreign"] == foreign  # every other ack found its recipient
    )
    within = app["arrival_max_s"] < TARGET_WRITTEN_S
    keys_ok = keys["over_100ms"] == 0 and keys["timeouts"] == 0
    target(
        "acks",
        all_written and within and keys_ok,
        f"every ack written ({'yes' if all_written else 'NO'}), within "
        f"{TARGET_WRITTEN_S:g} s of arrival ({'yes' if within else 'NO'}), no keypress "
        f"> {TARGET_KEY_MS:.0f} ms ({'yes' if keys_ok else 'NO'})",
    )
    return 0


PHASES = {"bare": phase_bare, "app": phase_app}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--campaigns", type=int, default=100_000)
    p.add_argument("--recipients", type=int, default=10_000_000)
    p.add_argument("--rate", type=float, default=5_000.0, help="acks per second")
    p.add_argument("--seconds", type=float, default=10.0, help="how long they flow")
    p.add_argument("--settle", type=float, default=2.0, help="seconds after launch first")
    p.add_argument("--small", action="store_true", help="tiny sizes (the smoke test)")
    p.add_argument("--verbose", action="store_true", help="show the children's progress")
    p.add_argument("--phase", choices=["source", *sorted(PHASES)], help=argparse.SUPPRESS)
    p.add_argument("--db", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--plan", help=argparse.SUPPRESS)
    p.add_argument("--expect", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.small:
        args.campaigns, args.recipients = 20, 1000
        args.rate, args.seconds, args.settle = 500.0, 1.0, 0.2
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.phase == "source":
        phase_source(args)
        return 0
    if args.phase:
        asyncio.run(PHASES[args.phase](args))
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    raise SystemExit(main())
