"""Runner overhead: a zero-delay campaign against the simulator vs a bare httpx loop.

    python benchmarks/bench_runner.py               # 5,000 recipients, simulator in a child
    python benchmarks/bench_runner.py --in-process  # simulator on a thread of this process
    python benchmarks/bench_runner.py --small       # 50 recipients (the smoke test)

Both the baseline and the runner talk to the same simulator in the same run. The baseline
is one `httpx.AsyncClient` posting the same `/api/sendText` payloads one after the other;
the runner is `RunnerPool.start` + `wait` on a real store file. Requests and database
transactions are counted on the client side (an httpx event hook, SQLAlchemy `begin`
events), so the per-message figures show what the runner does besides sending.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from _common import add_campaign, figure, heading, median, sim_reset, simulator_process, target

from waha_tui import events as ev
from waha_tui.render import render
from waha_tui.runner import RunnerConfig, RunnerPool
from waha_tui.store import Store
from waha_tui.waha import WahaClient

TARGET_RATIO = 0.8
TEMPLATE = "Hi {name}, see you in {city}!"


@contextlib.contextmanager
def simulator(in_process: bool) -> Iterator[str]:
    if not in_process:
        with simulator_process() as url:
            yield url
        return
    from waha_tui.simulator import SimState, Simulator, SimulatorServer

    with SimulatorServer(Simulator(SimState())) as server:
        yield server.url


def payloads(store: Store, cid: int) -> list[dict[str, Any]]:
    camp = store.get_campaign(cid)
    return [
        {
            "session": camp.session,
            "chatId": r.chat_id,
            "text": render(
                camp.template_text, r.variables, name=r.name, default_name=camp.default_name
            ),
        }
        for r in store.recipients(cid)
    ]


async def bare_loop(
    url: str, bodies: list[dict[str, Any]], *, with_ids: bool = False
) -> tuple[float, int]:
    """Seconds for the sequential sends; requests made (counted like the runner's).
    `with_ids`: each send first asks WAHA for a pre-generated id, as the runner must."""
    requests = 0

    async def count(_request: httpx.Request) -> None:
        nonlocal requests
        requests += 1

    async with httpx.AsyncClient(base_url=url, event_hooks={"request": [count]}) as client:
        for body in bodies[:200]:  # connect and warm up outside the timing
            (await client.post("/api/sendText", json=body)).raise_for_status()
        requests = 0
        started = time.perf_counter()
        for body in bodies:
            if with_ids:
                got = await client.get(f"/api/{body['session']}/new-message-id")
                body = {**body, "id": got.raise_for_status().json()["id"]}
            resp = await client.post("/api/sendText", json=body)
            resp.raise_for_status()
        return time.perf_counter() - started, requests


async def client_loops(url: str, bodies: list[dict[str, Any]]) -> dict[str, float]:
    """The same sends through the package's WahaClient, without the runner around it:
    where between the bare loop and the runner the time goes."""
    out: dict[str, float] = {}
    async with WahaClient(url) as client:
        for body in bodies[:200]:
            await client.send_text(body["session"], body["chatId"], body["text"])
        started = time.perf_counter()
        for body in bodies:
            await client.send_text(body["session"], body["chatId"], body["text"])
        out["send_text"] = time.perf_counter() - started
        started = time.perf_counter()
        for body in bodies:
            message_id = await client.new_message_id(body["session"])
            await client.send_text(
                body["session"], body["chatId"], body["text"], message_id=message_id
            )
        out["new_message_id+send_text"] = time.perf_counter() - started
    return out


async def runner_run(url: str, store: Store, cid: int) -> dict[str, Any]:
    client = WahaClient(url)
    paths: collections.Counter[str] = collections.Counter()

    async def count(request: httpx.Request) -> None:
        paths[f"{request.method} {request.url.path}"] += 1

    http = getattr(client, "_http", None)
    if isinstance(http, httpx.AsyncClient):
        http.event_hooks["request"].append(count)
    tx = collections.Counter[str]()
    event.listen(store.engine, "begin", lambda _conn: tx.update(["write"]))
    event.listen(store.read_engine, "begin", lambda _conn: tx.update(["read"]))
    threads = 0
    inside = awaited = 0.0
    real_to_thread = asyncio.to_thread

    async def counted_to_thread(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        nonlocal threads, inside, awaited

        def timed() -> Any:
            nonlocal inside
            begun = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                inside += time.perf_counter() - begun

        threads += 1
        begun = time.perf_counter()
        try:
            return await real_to_thread(timed)
        finally:
            awaited += time.perf_counter() - begun

    pool = RunnerPool(store, client, config=RunnerConfig(lease_seconds=15))
    ends: list[ev.CampaignEvent] = []
    pool.bus.subscribe(lambda e: ends.append(e) if not isinstance(e, ev.RecipientProcessed) else 0)
    asyncio.to_thread = counted_to_thread  # type: ignore[assignment]
    try:
        started = time.perf_counter()
        await pool.start(cid)
        end = await pool.wait(cid)
        elapsed = time.perf_counter() - started
    finally:
        asyncio.to_thread = real_to_thread  # type: ignore[assignment]
        await client.aclose()
    return {
        "seconds": elapsed,
        "end": end,
        "paths": paths,
        "tx": tx,
        "threads": threads,
        "in_thread": inside,
        "awaiting_threads": awaited,
    }


MODES = {
    "ids": "WAHA hands out pre-generated message ids (NOWEB, GOWS): the runner stores each "
    "id before its send and writes outcomes behind the sends",
    "no_ids": "WAHA without pre-generated ids (WEBJS, or older): each recipient is marked "
    "`sending` before its send and its outcome written after, both before the next send",
}


def sim_setup(url: str, args: argparse.Namespace, message_ids: bool) -> None:
    """After a reset: message ids on or off, and the WAHA latency asked for."""
    body = {"message_ids": message_ids, "latency": args.latency_ms / 1000}
    httpx.post(f"{url}/_sim/faults", json=body, timeout=10).raise_for_status()


async def measure_mode(args: argparse.Namespace, url: str, tmp: Path, mode: str) -> int:
    n = args.recipients
    with_ids = mode == "ids"
    heading(f"runner [{mode}]: {MODES[mode]}")
    bare_rates: list[float] = []
    proto_rates: list[float] = []
    runner_rates: list[float] = []
    client_rates: dict[str, list[float]] = {}
    last: dict[str, Any] = {}
    for round_no in range(args.rounds):
        store = Store(tmp / f"{mode}{round_no}.db")
        cid = add_campaign(store, f"bench {round_no}", n, seed=round_no, template=TEMPLATE)
        bodies = payloads(store, cid)
        sim_reset(url)
        sim_setup(url, args, with_ids)
        seconds, _ = await bare_loop(url, bodies)
        bare_rates.append(n / seconds)
        if with_ids:
            sim_reset(url)
            sim_setup(url, args, with_ids)
            seconds, _ = await bare_loop(url, bodies, with_ids=True)
            proto_rates.append(n / seconds)
            sim_reset(url)
            sim_setup(url, args, with_ids)
            loops = await client_loops(url, bodies)
            for name, spent in loops.items():
                client_rates.setdefault(name, []).append(n / spent)
        sim_reset(url)
        sim_setup(url, args, with_ids)
        last = await runner_run(url, store, cid)
        camp = store.get_campaign(cid)
        store.close()
        if not isinstance(last["end"], ev.Completed) or camp.sent != n:
            print(f"runner did not complete: {last['end']!r} sent={camp.sent}", flush=True)
            return 1
        runner_rates.append(n / last["seconds"])
        if args.rounds > 1:
            figure(f"runner.{mode}.round{round_no + 1}.runner_msgs_per_s", runner_rates[-1])

    bare, runner = median(bare_rates), median(runner_rates)
    key = f"runner.{mode}"
    figure(f"{key}.bare_loop_msgs_per_s", bare, "msg/s", "httpx: POST /api/sendText")
    if with_ids:
        proto = median(proto_rates)
        figure(
            f"{key}.bare_loop_with_ids_msgs_per_s",
            proto,
            "msg/s",
            "httpx: GET new-message-id + POST /api/sendText",
        )
        for name, rates in client_rates.items():
            figure(
                f"{key}.waha_client[{name}]_msgs_per_s",
                median(rates),
                "msg/s",
                "WahaClient alone, sequential, no store",
            )
    else:
        proto = bare
    figure(f"{key}.runner_msgs_per_s", runner, "msg/s", "RunnerPool.start + wait")
    figure(f"{key}.ratio_to_sendtext_loop", runner / bare, "x", "runner / sendText loop")
    ratio = runner / proto
    figure(
        f"{key}.ratio",
        ratio,
        "x",
        "runner / the bare loop making the same WAHA requests",
    )
    figure(f"{key}.runner_ms_per_msg", 1000 / runner, "ms")
    figure(f"{key}.overhead_ms_per_msg", 1000 / runner - 1000 / proto, "ms", "runner - baseline")
    target(
        f"{key}.ratio",
        ratio >= TARGET_RATIO,
        f">= {TARGET_RATIO}x the bare loop making the same WAHA requests",
    )

    paths: collections.Counter[str] = last["paths"]
    figure(f"{key}.http_requests_per_msg", sum(paths.values()) / n, "req", "last round")
    for path, count in paths.most_common():
        figure(f"{key}.http[{path}]", count / n, "req/msg", f"{count:,} in all")
    tx = last["tx"]
    figure(f"{key}.db_write_transactions_per_msg", tx["write"] / n, "tx", "BEGIN IMMEDIATE")
    figure(f"{key}.db_read_transactions_per_msg", tx["read"] / n, "tx")
    figure(f"{key}.to_thread_calls_per_msg", last["threads"] / n, "calls")
    figure(f"{key}.db_ms_per_msg", 1000 * last["in_thread"] / n, "ms", "inside store calls")
    figure(
        f"{key}.awaiting_db_ms_per_msg",
        1000 * last["awaiting_threads"] / n,
        "ms",
        "the runner waiting on them (+ thread hop, GIL)",
    )
    return 0


async def main_async(args: argparse.Namespace) -> int:
    n = args.recipients
    with (
        tempfile.TemporaryDirectory(prefix="bench_runner_") as tmp,
        simulator(args.in_process) as url,
    ):
        heading(
            f"runner: {n:,} recipients, zero delay, simulator "
            f"{'on a thread of this process' if args.in_process else 'in its own process'}"
            f", answering each request after {args.latency_ms:g} ms"
        )
        for mode in ("ids", "no_ids"):
            code = await measure_mode(args, url, Path(tmp), mode)
            if code:
                return code
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--recipients", type=int, default=5000)
    p.add_argument("--rounds", type=int, default=1, help="repeat baseline+runner; median")
    p.add_argument("--in-process", action="store_true", help="simulator on a thread here")
    p.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="the simulator answers each request this much later (a real WAHA takes "
        "100 ms or more per send)",
    )
    p.add_argument("--small", action="store_true", help="50 recipients (smoke test)")
    args = p.parse_args(argv)
    if args.small:
        args.recipients = 50
    return args


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
