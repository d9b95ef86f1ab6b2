"""`campaign create` from a 100,000-row CSV: through the service layer and the CLI.

    python benchmarks/bench_import.py              # 100,000 rows
    python benchmarks/bench_import.py --rows 20000
    python benchmarks/bench_import.py --small      # 1,000 rows (the smoke test)

The CSV is generated (phone, name, city; phones written the way people type them, with
'+', spaces and dashes). Each measurement writes a fresh SQLite file.

- service: `CampaignService.create_campaign(CampaignDraft(...))`, in this process;
  broken down into `parse_contacts`, building the recipients, and `Store.create_campaign`.
- CLI: `python -m waha_tui --db F campaign create --contacts CSV ...` as a subprocess,
  wall time including interpreter start-up (`python -m waha_tui --help` is shown too).
- baseline: `csv.reader` over the same file plus one bare `sqlite3` `executemany` of the
  same rows into a fresh file (same columns, WAL, synchronous=NORMAL, one transaction).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from _common import ROOT, figure, heading, target

TARGET_S = 5.0
MESSAGE = "Hi {name}, see you in {city}!"
CITIES = ["Berlin", "Hamburg", "München", "Köln", "Frankfurt", "Stuttgart", "Leipzig"]


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["phone", "name", "city"])
        for i in range(rows):
            digits = f"{i:08d}"
            style = i % 3
            if style == 0:
                phone = f"+49 151 {digits[:4]} {digits[4:]}"
            elif style == 1:
                phone = f"0049-151-{digits}"
            else:
                phone = f"49151{digits}"
            w.writerow([phone, f"Person {i}", CITIES[i % len(CITIES)]])


def baseline(csv_path: Path, db: Path) -> tuple[float, float]:
    """(seconds to read the CSV with csv.reader, seconds for read + executemany)."""
    started = time.perf_counter()
    with csv_path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)
        rows = list(reader)
    read = time.perf_counter() - started
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE recipient (id INTEGER PRIMARY KEY, campaign_id INTEGER NOT NULL, "
        "position INTEGER NOT NULL, phone TEXT, chat_id TEXT, name TEXT, variables JSON, "
        "status TEXT, attempts INTEGER, UNIQUE (campaign_id, position))"
    )
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO recipient (campaign_id, position, phone, chat_id, name, variables, status, "
        "attempts) VALUES (1, ?, ?, ?, ?, ?, 'pending', 0)",
        (
            (i, phone, f"{phone}@c.us", name, json.dumps({"city": city}))
            for i, (phone, name, city) in enumerate(rows)
        ),
    )
    conn.execute("COMMIT")
    conn.close()
    return read, time.perf_counter() - started


def service_create(csv_path: Path, db: Path) -> tuple[float, int]:
    from waha_tui.service import CampaignDraft, CampaignService
    from waha_tui.store import Store
    from waha_tui.waha import WahaClient

    store = Store(db)  # opening the store is not part of the create
    service = CampaignService(store, WahaClient("http://127.0.0.1:9"))
    draft = CampaignDraft(name="import bench", message=MESSAGE, contacts_file=str(csv_path))
    started = time.perf_counter()
    cid = asyncio.run(service.create_campaign(draft))
    elapsed = time.perf_counter() - started
    total = store.get_campaign(cid).total
    store.close()
    return elapsed, total


def breakdown(csv_path: Path, db: Path) -> dict[str, float]:
    """The same steps as create_campaign, one by one (the service's own glue excluded)."""
    from waha_tui.csv_import import parse_contacts
    from waha_tui.models import Campaign
    from waha_tui.phones import chat_id_for
    from waha_tui.store import NewRecipient, Store

    out: dict[str, float] = {}
    started = time.perf_counter()
    result = parse_contacts(csv_path, template=MESSAGE)
    out["parse_contacts"] = time.perf_counter() - started
    started = time.perf_counter()
    recipients = [
        NewRecipient(c.phone, chat_id_for(c.phone), c.name, c.variables) for c in result.contacts
    ]
    out["new_recipients"] = time.perf_counter() - started
    store = Store(db)
    started = time.perf_counter()
    store.create_campaign(Campaign(name="x", template_text=MESSAGE), recipients)
    out["store.create_campaign"] = time.perf_counter() - started
    store.close()
    return out


def cli_create(csv_path: Path, db: Path) -> tuple[float, str]:
    env = {**os.environ}
    env.pop("WAHA_TUI_DB", None)
    cmd = [
        sys.executable, "-m", "waha_tui", "--db", str(db), "campaign", "create",
        "--name", "import bench cli", "--contacts", str(csv_path), "--message", MESSAGE,
    ]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"campaign create failed ({proc.returncode}): {proc.stderr.strip()}")
    return elapsed, proc.stderr.strip()


def cli_startup() -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "waha_tui", "--help"], capture_output=True, check=True, cwd=ROOT
    )
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--small", action="store_true", help="1,000 rows (the smoke test)")
    args = p.parse_args(argv)
    rows = 1000 if args.small else args.rows

    with tempfile.TemporaryDirectory(prefix="bench_import_") as tmp:
        folder = Path(tmp)
        csv_path = folder / "contacts.csv"
        write_csv(csv_path, rows)
        size_mb = csv_path.stat().st_size / 1e6
        read_s, bare_s = baseline(csv_path, folder / "bare.db")
        service_s, total = service_create(csv_path, folder / "service.db")
        if total != rows:
            print(f"error: the campaign has {total} recipients, not {rows}", flush=True)
            return 1
        parts = breakdown(csv_path, folder / "parts.db")
        startup_s = cli_startup()
        cli_s, cli_said = cli_create(csv_path, folder / "cli.db")

    heading(f"import: campaign create from a {rows:,}-row CSV ({size_mb:.2f} MB)")
    figure("import.bare_csv_reader_ms", read_s * 1000, "ms", "baseline: csv.reader, all rows")
    figure(
        "import.bare_csv_plus_executemany_ms",
        bare_s * 1000,
        "ms",
        "baseline: csv.reader + sqlite3 executemany",
    )
    figure("import.service_create_s", service_s, "s", "CampaignService.create_campaign")
    figure("import.service_vs_bare", service_s / bare_s, "x")
    for name, seconds in parts.items():
        figure(f"import.part.{name}_s", seconds, "s")
    figure("import.cli_startup_s", startup_s, "s", "python -m waha_tui --help")
    figure("import.cli_create_s", cli_s, "s", "python -m waha_tui campaign create (wall)")
    target("import.service_create", service_s < TARGET_S, f"< {TARGET_S:.0f} s")
    target("import.cli_create", cli_s < TARGET_S, f"< {TARGET_S:.0f} s (incl. start-up)")
    if cli_said:
        print(f"(cli said: {cli_said.splitlines()[-1]})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
