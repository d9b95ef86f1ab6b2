"""The benchmark scripts still run: each at a tiny size (--small), as a subprocess.

Only that they exit 0 and print their figure lines; no timing is asserted (the figures
are for people, on a quiet machine, at full size: see benchmarks/README.md).
The scripts run side by side to keep this quick.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
VALUE = r"(-?[\d,]+(?:\.\d+)?|nan|OK|MISS)"

EXPECTED = {
    "bench_runner.py": [
        "runner.ids.bare_loop_msgs_per_s",
        "runner.ids.runner_msgs_per_s",
        "runner.ids.ratio",
        "runner.ids.http_requests_per_msg",
        "runner.ids.db_write_transactions_per_msg",
        "runner.ids.ratio.target",
        "runner.no_ids.bare_loop_msgs_per_s",
        "runner.no_ids.runner_msgs_per_s",
        "runner.no_ids.ratio",
        "runner.no_ids.http_requests_per_msg",
        "runner.no_ids.db_write_transactions_per_msg",
        "runner.no_ids.ratio.target",
        "runner.ids.bare_loop_with_ids_msgs_per_s",
    ],
    "bench_dashboard.py": [
        "dashboard.empty_app_launch_ms",
        "dashboard.launch_to_painted_ms",
        "dashboard.launch_to_painted.target",
        "dashboard.sort.bare_sqlite3_page_ms",
        "dashboard.sort.name.forward_ms",
        "dashboard.sort.worst_ms",
        "dashboard.filter_ms",
        "dashboard.sort.target",
        "dashboard.tick.bare_sqlite3_select_ms",
        "dashboard.tick.event_loop_ms",
        "dashboard.tick.event_loop.target",
        "dashboard.keys_plain_datatable.p50_ms",
        "dashboard.keys_idle.p50_ms",
        "dashboard.keys_running.max_ms",
        "dashboard.keys_running.max.target",
        "dashboard.peak_rss_mb",
        "dashboard.empty_app_peak_rss_mb",
        "dashboard.peak_rss.target",
        "dashboard.idle_cpu_pct",
        "dashboard.empty_app_idle_cpu_pct",
        "dashboard.idle_cpu.target",
    ],
    "bench_resume.py": [
        "resume.bare_round_trip_warm_ms",
        "resume.db_empty.latency_ms",
        "resume.db20.latency_ms",
        "resume.latency.target",
    ],
    "bench_acks.py": [
        "acks.bare_reader_per_s",
        "acks.bare_reader_lag_p99_ms",
        "acks.written_per_s",
        "acks.written_within_ms.p99",
        "acks.written_within_ms.max",
        "acks.sent_to_written_ms.max",
        "acks.recipients_right",
        "acks.keys_running.p99_ms",
        "acks.keys_running.max_ms",
        "acks.target",
    ],
    "bench_many.py": [
        "many.bare_loop_msgs_per_s",
        "many.bare_loop_client_per_worker_msgs_per_s",
        "many.runner_msgs_per_s",
        "many.ratio",
        "many.ratio.target",
        "many.idle.nothing_to_run_cpu_pct",
        "many.idle_cpu_pct",
        "many.idle_cpu.target",
    ],
    "bench_import.py": [
        "import.bare_csv_plus_executemany_ms",
        "import.service_create_s",
        "import.cli_create_s",
        "import.service_create.target",
        "import.cli_create.target",
    ],
}


def test_every_benchmark_runs_at_a_tiny_size(tmp_path: Path) -> None:
    # A fresh cache: the generated databases are rebuilt with today's schema.
    env = {**os.environ, "WAHA_TUI_BENCH_CACHE": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1"}
    env.pop("WAHA_TUI_DB", None)
    procs = {
        script: subprocess.Popen(
            [sys.executable, str(BENCH / script), "--small"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=env,
        )
        for script in EXPECTED
    }
    deadline = time.monotonic() + 240
    outputs: dict[str, tuple[int, str, str]] = {}
    try:
        for script, proc in procs.items():
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            outputs[script] = (proc.returncode, out, err)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    problems = []
    for script, keys in EXPECTED.items():
        code, out, err = outputs[script]
        if code != 0:
            problems.append(f"{script} exited {code}:\n{out}\n{err}")
            continue
        missing = [
            key
            for key in keys
            if not re.search(rf"^{re.escape(key)}\s+{VALUE}(\s|$)", out, re.MULTILINE)
        ]
        if missing:
            problems.append(f"{script} did not print {missing}:\n{out}")
    assert not problems, "\n\n".join(problems)
