"""Shared pieces of the benchmark scripts: figure lines, the simulator process, test data.

Every script prints its figures as lines of the form

    <script>.<figure>  <value>  <unit>  <note>

so a reader can compare them by eye and the smoke test can check they are there. Each
figure that has a target also gets a `... target ... OK|MISS` line.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import astuple, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = Path(os.environ.get("WAHA_TUI_BENCH_CACHE", "/tmp/waha_tui_bench"))
# Bump when the shape of generated data changes, so stale caches are not reused.
# 3: every sent recipient's message id is unique and its `wa_id` (what acks match) is set.
DATA_VERSION = 3


# -- figure lines ----------------------------------------------------------------------------


def figure(key: str, value: float | int | str, unit: str = "", note: str = "") -> None:
    if isinstance(value, float):
        shown = f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    else:
        shown = f"{value:,}" if isinstance(value, int) else str(value)
    line = f"{key:<46} {shown:>14}  {unit:<8}"
    if note:
        line += f"  {note}"
    print(line.rstrip(), flush=True)


def target(key: str, ok: bool, text: str) -> None:
    print(f"{key + '.target':<46} {'OK' if ok else 'MISS':>14}  {text}", flush=True)


def heading(text: str) -> None:
    print(f"\n## {text}", flush=True)


def ms(seconds: float) -> float:
    return seconds * 1000.0


def pct(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ru_maxrss_mb() -> float:
    """ru_maxrss of this process (kilobytes on Linux, bytes on macOS) in MiB.

    On Linux a child keeps the parent's high-water mark across fork+exec, so in a child of
    a big process this over-reports; `peak_rss_mb` does not.
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB: VmHWM on Linux, else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return ru_maxrss_mb()


# -- the simulator in its own process --------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def simulator_process(timeout: float = 20.0) -> Iterator[str]:
    """`python -m waha_tui simulator --port N` as a child process; yields its URL.

    In its own process the server does not share the GIL with what is being measured, as a
    real WAHA would not.
    """
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("WAHA_API_KEY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "waha_tui", "simulator", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"the simulator exited with {proc.returncode}: {err}")
            try:
                if httpx.get(f"{url}/ping", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the simulator did not answer on {url} in {timeout} s")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sim_reset(url: str) -> None:
    httpx.post(f"{url}/_sim/reset", timeout=10).raise_for_status()


def sim_messages(url: str) -> list[dict[str, Any]]:
    resp = httpx.get(f"{url}/_sim/messages", timeout=30)
    resp.raise_for_status()
    return resp.json()


# -- test data -------------------------------------------------------------------------------


def phone_for(campaign_index: int, position: int) -> str:
    # Unique per (campaign, position), 13 digits, never starting with 0.
    return f"49{campaign_index % 100_000:05d}{position:06d}"


@dataclass(frozen=True)
class DbSize:
    campaigns: int
    recipients: int

    @property
    def cache_path(self) -> Path:
        name = f"dashboard_v{DATA_VERSION}_{schema_tag()}_c{self.campaigns}_r{self.recipients}.db"
        return CACHE_DIR / name


def schema_tag() -> str:
    """A short hash of the package's tables, so a schema change never reuses a stale file."""
    import hashlib

    from sqlmodel import SQLModel

    import waha_tui.models  # registers the tables; its CAMPAIGN_SORTS is read below

    parts = [
        f"{table.name}.{column.name}:{column.type}:{column.nullable}"
        for table in SQLModel.metadata.sorted_tables
        for column in table.columns
    ]
    parts += [str(index) for table in SQLModel.metadata.sorted_tables for index in table.indexes]
    # The dashboard's sort indexes, which the store makes when it opens a database.
    sorts = getattr(waha_tui.models, "CAMPAIGN_SORTS", ())
    parts += [f"sort:{name}" for name in sorts]
    # Sorted: sorted_tables orders unrelated tables by hash, which differs between runs.
    return hashlib.sha1("\n".join(sorted(parts)).encode()).hexdigest()[:8]


# Most campaigns in a long-used database are over; none is Running (a Running row would be
# "recovered" to Paused at launch, which is a write), Scheduled ones are due far in the future
# so the scheduler starts nothing.
_STATUS_MIX = (
    ("Completed", 50),
    ("Cancelled", 10),
    ("Failed", 5),
    ("Paused", 15),
    ("Scheduled", 20),
)


def _status_for(rng: random.Random) -> str:
    pick = rng.uniform(0, 100)
    for status, share in _STATUS_MIX:
        pick -= share
        if pick <= 0:
            return status
    return "Completed"


def build_database(path: Path, size: DbSize, *, seed: int = 1) -> None:
    """A store file with `size.campaigns` campaigns sharing `size.recipients` recipients.

    Bulk inserts through SQLAlchemy Core with the package's own tables, so the schema is
    whatever `Store` creates today. Written to a temporary name and renamed when complete.
    """
    import sqlalchemy as sa

    from waha_tui.models import Campaign, Recipient
    from waha_tui.store import C, R, Store
    from waha_tui.waha.message_ids import bare_or_none

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".building-{os.getpid()}")
    for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        leftover.unlink(missing_ok=True)
    Store(tmp).close()  # the schema, the meta row, WAL mode

    rng = random.Random(seed)
    now = datetime.now(UTC)
    future = now + timedelta(days=3650)
    per, extra = divmod(size.recipients, max(size.campaigns, 1))
    base_c = Campaign(name="x", template_text="x").model_dump(exclude={"id"})
    base_r = Recipient(campaign_id=0, position=0, phone="1", chat_id="1").model_dump(exclude={"id"})
    engine = sa.create_engine(f"sqlite:///{tmp}")

    @sa.event.listens_for(engine, "connect")
    def _fast(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA synchronous = OFF")
        dbapi_conn.execute("PRAGMA cache_size = -500000")  # 500 MB: the indexes stay in memory

    campaigns: list[dict[str, Any]] = []
    plans: list[tuple[int, int, str, int, int]] = []  # id, total, status, next_index, failed
    for i in range(size.campaigns):
        cid = i + 1
        total = per + (1 if i < extra else 0)
        status = _status_for(rng)
        if status in ("Completed", "Failed"):
            done = total
        elif status in ("Paused", "Cancelled"):
            done = rng.randint(0, total)
        else:
            done = 0
        failed = sum(1 for _ in range(done) if rng.random() < 0.03)
        created = now - timedelta(days=rng.uniform(1, 700))
        row = dict(base_c)
        row.update(
            id=cid,
            name=f"Campaign {cid} {rng.choice(['spring', 'news', 'promo', 'reminder'])}",
            session=rng.choice(["default", "default", "sales", "support"]),
            template_text="Hi {name}, see you in {city}!",
            default_name="there",
            list_name=f"list-{cid % 37}.csv",
            status=status,
            scheduled_at=future if status == "Scheduled" else created,
            created_at=created,
            started_at=None if status == "Scheduled" else created,
            completed_at=created if status in ("Completed", "Failed", "Cancelled") else None,
            total=total,
            sent=done - failed,
            failed=failed,
            next_index=done,
            pause_reason="paused by the operator" if status == "Paused" else None,
            last_error="session 'default' is STOPPED" if status == "Failed" else None,
            delay_min=30.0,
            delay_max=60.0,
            updated_at=created,
        )
        campaigns.append(row)
        plans.append((cid, total, status, done, failed))

    with engine.begin() as conn:
        conn.execute(sa.insert(C), campaigns)
    # Recipients as plain tuples through the driver's executemany, committed in chunks (so
    # the WAL stays small): 10,000,000 rows in minutes, where dicts through Core took an hour.
    columns = [c.name for c in R.columns if c.name != "id"]
    insert = f"INSERT INTO {R.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    variables = json.dumps({"city": "Berlin"})
    batch: list[tuple[Any, ...]] = []

    def flush() -> None:
        with engine.begin() as conn:
            conn.exec_driver_sql(insert, batch)
        batch.clear()

    for cid, total, _status, done, failed in plans:
        fail_at = set(rng.sample(range(done), failed)) if failed else set()
        for pos in range(total):
            phone = phone_for(cid, pos)
            status = ("failed" if pos in fail_at else "sent") if pos < done else "pending"
            # Unique per (campaign, position), in WEBJS's serialized shape; `wa_id` is what
            # an ack finds it by, as the store writes it wherever it writes a message id.
            message_id = f"true_{phone}@c.us_3EB0{cid:06X}{pos:06X}" if status == "sent" else None
            row = dict(base_r)
            row.update(
                campaign_id=cid,
                position=pos,
                phone=phone,
                chat_id=f"{phone}@c.us",
                name=f"Person {pos}",
                variables=variables,
                status=status,
                message_id=message_id,
                wa_id=bare_or_none(message_id),
                error="2 UNKNOWN: server returned error 463" if status == "failed" else None,
                attempts=1 if pos < done else 0,
            )
            batch.append(tuple(row[c] for c in columns))
            if len(batch) >= 200_000:
                flush()
    if batch:
        flush()
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    os.replace(tmp, path)
    for leftover in (Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        leftover.unlink(missing_ok=True)


def cached_database(size: DbSize, *, quiet: bool = False) -> Path:
    """The pristine database for `size`, built once and kept under CACHE_DIR.

    Built in a child process, so the memory it takes never shows in this one.
    """
    path = size.cache_path
    if not path.exists():
        started = time.perf_counter()
        subprocess.run(
            # The file named here: the child never works out a name of its own.
            [sys.executable, __file__, "build", str(path), *map(str, astuple(size))],
            check=True,
            cwd=ROOT,
        )
        if not quiet:
            print(
                f"(built {path} in {time.perf_counter() - started:.1f} s; cached for next runs)",
                flush=True,
            )
    return path


def working_copy(pristine: Path, folder: Path, name: str = "campaigns.db") -> Path:
    """A throwaway copy: the benchmarks write to the database, the cache stays pristine."""
    import shutil

    target_path = folder / name
    shutil.copyfile(pristine, target_path)
    os.chmod(target_path, 0o600)
    return target_path


def add_campaign(
    store: Any,
    name: str,
    count: int,
    *,
    seed: int,
    status: str = "Scheduled",
    delay: tuple[float, float] = (0.0, 0.0),
    scheduled_in_days: float = 3650.0,
    template: str = "Hi {name}, see you in {city}!",
) -> int:
    """A campaign of `count` recipients with unique phones: Scheduled far ahead, or Paused
    after it started (a resume runs it at once)."""
    import sqlalchemy as sa

    from waha_tui.models import Campaign
    from waha_tui.store import C, NewRecipient

    people = (
        NewRecipient(p, f"{p}@c.us", f"Person {i}", {"city": "Berlin"})
        for i, p in ((i, phone_for(90_000 + seed, i)) for i in range(count))
    )
    cid = store.create_campaign(
        Campaign(
            name=name,
            session="default",
            template_text=template,
            default_name="there",
            delay_min=delay[0],
            delay_max=delay[1],
            scheduled_at=datetime.now(UTC) + timedelta(days=scheduled_in_days),
        ),
        people,
    )
    if status != "Scheduled":
        # Paused mid-run: it started a day ago, so a resume runs it at once.
        earlier = datetime.now(UTC) - timedelta(days=1)
        with store.write() as conn:
            conn.execute(
                sa.update(C)
                .where(C.c.id == cid)
                .values(
                    status=status,
                    pause_reason="paused by the operator",
                    scheduled_at=earlier,
                    started_at=earlier,
                )
            )
    return cid


def python_cmd(script: str, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "benchmarks" / script), *args]


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "build":
        sys.path.insert(0, str(ROOT))
        build_database(Path(sys.argv[2]), DbSize(int(sys.argv[3]), int(sys.argv[4])))
    else:
        raise SystemExit(f"usage: {sys.argv[0]} build PATH CAMPAIGNS RECIPIENTS")
