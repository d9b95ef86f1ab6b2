"""One `waha-tui run` driving 200 sessions at once, against a bare concurrent httpx loop;
and the same process's CPU while every campaign waits in a 30-60 s delay.

    python benchmarks/bench_many.py            # 200 campaigns x 50 messages, sends take 20 ms
    python benchmarks/bench_many.py --small    # 10 campaigns x 5 messages (the smoke test)

The simulator runs in a child process with one WORKING session per campaign, handing out
pre-generated message ids and answering each send after --latency-ms. `waha-tui run
--no-events` runs in another child, on a real store file, as an operator starts it: its
scheduler claims every due campaign and its RunnerPool drives them all at once.

- Throughput: the baseline is a bare httpx loop with one worker per campaign, each making
  the same requests (`GET /api/{session}/new-message-id`, then `POST /api/sendText` with
  that id) for the same messages, all at once: through one `httpx.AsyncClient`, and through
  a client per worker; the ratio is to the faster. All are timed by the simulator's own
  stamps, from the first message it accepted to the last.
- Idle: the same campaigns with a 30-60 s delay; once every one has sent its first message
  and waits, the child's CPU time (utime + stime from /proc) over --idle-seconds. Baseline:
  the same command on the same campaigns scheduled far ahead (nothing to run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from _common import ROOT, figure, heading, sim_messages, sim_reset, simulator_process, target

from waha_tui.models import Campaign
from waha_tui.store import NewRecipient, Store

TARGET_RATIO = 0.8
TARGET_IDLE_PCT = 2.0
TEMPLATE = "Hi {name}, see you in {city}!"


def session_name(i: int) -> str:
    return f"s{i:03d}"


def phone(campaign: int, position: int) -> str:
    return f"49{campaign:05d}{position:06d}"


def sim_setup(url: str, args: argparse.Namespace) -> None:
    """After a reset (which drops the faults): ids on, the latency asked for."""
    body = {"message_ids": True, "latency": args.latency_ms / 1000}
    httpx.post(f"{url}/_sim/faults", json=body, timeout=10).raise_for_status()


def sim_sessions(url: str, count: int) -> None:
    with httpx.Client(base_url=url, timeout=10) as http:
        for i in range(count):
            got = http.post(f"/_sim/sessions/{session_name(i)}/status", json={"status": "WORKING"})
            got.raise_for_status()


def make_db(
    path: Path, args: argparse.Namespace, *, messages: int, delay: tuple[float, float], due: bool
) -> None:
    store = Store(path)
    when = datetime.now(UTC) + (timedelta(seconds=-1) if due else timedelta(days=3650))
    for i in range(args.campaigns):
        people = [
            NewRecipient(phone(i, p), f"{phone(i, p)}@c.us", f"Person {p}", {"city": "Berlin"})
            for p in range(messages)
        ]
        store.create_campaign(
            Campaign(
                name=f"many {i}",
                session=session_name(i),
                template_text=TEMPLATE,
                default_name="there",
                delay_min=delay[0],
                delay_max=delay[1],
                scheduled_at=when,
            ),
            people,
        )
    store.close()


def bodies(args: argparse.Namespace) -> list[list[dict[str, Any]]]:
    """Per campaign, the sendText bodies the runner sends (the template rendered)."""
    return [
        [
            {
                "session": session_name(i),
                "chatId": f"{phone(i, p)}@c.us",
                "text": f"Hi Person {p}, see you in Berlin!",
            }
            for p in range(args.messages)
        ]
        for i in range(args.campaigns)
    ]


async def bare_loop(url: str, work: list[list[dict[str, Any]]], *, per_worker: bool) -> None:
    """One worker per campaign, all at once, each making the runner's two requests per
    message in order: through one `httpx.AsyncClient` (one pool of as many connections),
    or `per_worker`, a client each (a pool per session, as WahaClient keeps)."""
    n = len(work)
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with contextlib.AsyncExitStack() as stack:
        if per_worker:
            clients = [
                await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=60))
                for _ in range(n)
            ]
        else:
            one = httpx.AsyncClient(base_url=url, limits=limits, timeout=60)
            clients = [await stack.enter_async_context(one)] * n

        async def worker(client: httpx.AsyncClient, messages: list[dict[str, Any]]) -> None:
            for body in messages:
                got = await client.get(f"/api/{body['session']}/new-message-id")
                body = {**body, "id": got.raise_for_status().json()["id"]}
                (await client.post("/api/sendText", json=body)).raise_for_status()

        await asyncio.gather(*(worker(c, m) for c, m in zip(clients, work, strict=True)))


def stamped_rate(url: str, expected: int) -> tuple[float, int]:
    """Messages per second between the first and the last message the simulator accepted;
    and how many distinct (session, chat) it accepted."""
    sent = sim_messages(url)
    if len(sent) < 2:
        return float("nan"), len(sent)
    stamps = sorted(m["at"] for m in sent)
    distinct = len({(m["session"], m["chatId"]) for m in sent})
    if len(sent) != expected:
        print(f"(the simulator accepted {len(sent)} messages, expected {expected})", flush=True)
    return (len(sent) - 1) / (stamps[-1] - stamps[0]), distinct


def start_run(code: Path, db: Path, url: str, log: Path) -> subprocess.Popen[bytes]:
    """`waha-tui run --no-events` from the checkout `code`, as an operator starts it."""
    env = {**os.environ, "WAHA_URL": url, "WAHA_TUI_DB": str(db), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("WAHA_API_KEY", None)
    env.pop("PYTHONPATH", None)  # `-m` from `code` imports that checkout's package
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "waha_tui", "run", "--no-events"],
            cwd=code,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop_run(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # pauses what runs, as Ctrl-C does
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def db_count(db: Path, where: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return int(conn.execute(f"SELECT count(*) FROM campaign WHERE {where}").fetchone()[0])
    finally:
        conn.close()


def wait_for(check: Any, proc: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc.poll() is not None:
            raise RuntimeError(f"`waha-tui run` exited with {proc.returncode} before {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not {what} within {timeout:g} s")
        time.sleep(0.2)


def log_tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def throughput(args: argparse.Namespace, url: str, tmp: Path) -> int:
    n, total = args.campaigns, args.campaigns * args.messages
    heading(
        f"many: {n} campaigns x {args.messages} messages on {n} sessions, zero delay, "
        f"pre-generated ids, each send answered after {args.latency_ms:g} ms"
    )
    sim_reset(url)
    sim_setup(url, args)
    asyncio.run(bare_loop(url, bodies(args), per_worker=False))
    one_pool, bare_distinct = stamped_rate(url, total)
    figure(
        "many.bare_loop_msgs_per_s",
        one_pool,
        "msg/s",
        f"one httpx.AsyncClient, {n} workers at once: new-message-id + sendText",
    )
    sim_reset(url)
    sim_setup(url, args)
    asyncio.run(bare_loop(url, bodies(args), per_worker=True))
    per_worker, per_distinct = stamped_rate(url, total)
    figure(
        "many.bare_loop_client_per_worker_msgs_per_s",
        per_worker,
        "msg/s",
        "the same with an httpx.AsyncClient per worker (a pool per session)",
    )
    bare = max(one_pool, per_worker)

    db = tmp / "many.db"
    make_db(db, args, messages=args.messages, delay=(0.0, 0.0), due=True)
    sim_reset(url)
    sim_setup(url, args)
    log = tmp / "run.log"
    began = time.perf_counter()
    proc = start_run(args.code, db, url, log)
    try:
        wait_for(
            lambda: db_count(db, "status = 'Completed'") == n,
            proc,
            args.timeout,
            "every campaign completed",
        )
        wall = time.perf_counter() - began
    except RuntimeError as exc:
        print(f"{exc}\n{log_tail(log)}", flush=True)
        return 1
    finally:
        stop_run(proc)
    runner, distinct = stamped_rate(url, total)
    if distinct != total or bare_distinct != total or per_distinct != total:
        print(f"sent: runner {distinct}, bare loops {bare_distinct}, {per_distinct}, of {total}")
        return 1
    figure("many.runner_msgs_per_s", runner, "msg/s", "`waha-tui run`, first to last message")
    figure("many.runner_wall_s", wall, "s", "from the process's launch to all Completed")
    ratio = runner / bare
    figure("many.ratio", ratio, "x", "runner / the faster of the two bare loops")
    target(
        "many.ratio", ratio >= TARGET_RATIO, f">= {TARGET_RATIO}x the faster bare concurrent loop"
    )
    return 0


def idle_cpu(args: argparse.Namespace, url: str, tmp: Path, *, waiting: bool) -> float:
    """The `run` child's CPU (% of a core) over args.idle_seconds: with every campaign
    waiting in its delay, or with nothing due."""
    n = args.campaigns
    db = tmp / ("waiting.db" if waiting else "nothing.db")
    make_db(db, args, messages=3, delay=(30.0, 60.0), due=waiting)
    sim_reset(url)
    sim_setup(url, args)
    log = tmp / ("waiting.log" if waiting else "nothing.log")
    proc = start_run(args.code, db, url, log)
    try:
        if waiting:
            wait_for(
                lambda: db_count(db, "sent = 1 AND next_send_at IS NOT NULL") == n,
                proc,
                args.timeout,
                "every campaign sent its first message and waits",
            )
        else:
            wait_for(lambda: Path(f"{db}-wal").exists(), proc, args.timeout, "the store opened")
        time.sleep(args.settle)
        sent_before = len(sim_messages(url))
        cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
        time.sleep(args.idle_seconds)
        cpu1, t1 = cpu_seconds(proc.pid), time.perf_counter()
        sent_during = len(sim_messages(url)) - sent_before
        if waiting and sent_during:
            print(f"({sent_during} messages went out during the idle measurement)", flush=True)
    except RuntimeError as exc:
        print(f"{exc}\n{log_tail(log)}", flush=True)
        return float("nan")
    finally:
        stop_run(proc)
    return 100 * (cpu1 - cpu0) / (t1 - t0)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_many_") as folder, simulator_process() as url:
        tmp = Path(folder)
        sim_sessions(url, args.campaigns)
        if args.phase in ("all", "throughput"):
            code = throughput(args, url, tmp)
            if code or args.phase == "throughput":
                return code
        heading(
            f"many idle: {args.campaigns} campaigns each waiting in a 30-60 s delay, "
            f"CPU of `waha-tui run` over {args.idle_seconds:g} s"
        )
        nothing = idle_cpu(args, url, tmp, waiting=False)
        figure(
            "many.idle.nothing_to_run_cpu_pct",
            nothing,
            "% core",
            "baseline: the same process, the campaigns scheduled far ahead",
        )
        busy = idle_cpu(args, url, tmp, waiting=True)
        figure("many.idle_cpu_pct", busy, "% core", "every campaign waiting in its delay")
        target(
            "many.idle_cpu",
            busy < TARGET_IDLE_PCT,
            f"< {TARGET_IDLE_PCT:g} % of a core with {args.campaigns} campaigns waiting",
        )
        if busy != busy:  # NaN: the measurement failed
            return 1
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--campaigns", type=int, default=200, help="one session each")
    p.add_argument("--messages", type=int, default=50, help="per campaign")
    p.add_argument("--latency-ms", type=float, default=20.0, help="each send's answer")
    p.add_argument("--idle-seconds", type=float, default=20.0)
    p.add_argument("--settle", type=float, default=3.0, help="before the idle measurement")
    p.add_argument("--timeout", type=float, default=600.0, help="for each phase")
    p.add_argument(
        "--code",
        type=Path,
        default=ROOT,
        help="the checkout whose `waha-tui run` is measured (e.g. an export of an older "
        "commit, for a before/after)",
    )
    p.add_argument("--phase", choices=("all", "throughput", "idle"), default="all")
    p.add_argument("--small", action="store_true", help="10 campaigns x 5 (smoke test)")
    args = p.parse_args(argv)
    if args.small:
        args.campaigns, args.messages = 10, 5
        args.idle_seconds, args.settle = 1.0, 0.5
    return args


if __name__ == "__main__":
    raise SystemExit(main())
