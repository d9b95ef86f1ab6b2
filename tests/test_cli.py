"""The `waha-tui` command line through Typer's CliRunner (and one real subprocess), against
the WAHA simulator on a real loopback socket and a real SQLite file."""

from __future__ import annotations

import json
import os
import pty
import pwd
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from engine_helpers import (
    closed_port,
    force,
    force_recipient,
    module_simulator,
    phone,
    reset_simulator,
)
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from waha_tui.cli import app
from waha_tui.history import Entry, Kind, record
from waha_tui.models import utcnow
from waha_tui.simulator import SimState, SimulatorServer
from waha_tui.store import Store


@pytest.fixture(scope="module")
def module_server() -> Iterator[SimulatorServer]:
    yield from module_simulator()


@pytest.fixture
def sim_server(module_server: SimulatorServer) -> SimulatorServer:
    """Overrides conftest's per-test server: the module's one, reset."""
    return reset_simulator(module_server)


KEY = "sekrit-Key-4242-do-not-print"
CAMPAIGN_FIELDS = {
    "id",
    "name",
    "status",
    "session",
    "total",
    "sent",
    "failed",
    "next_index",
    "scheduled_at",
    "started_at",
    "completed_at",
    "pause_reason",
    "last_error",
}
RECIPIENT_FIELDS = {"position", "phone", "chat_id", "name", "status", "message_id", "error"}


class Cli:
    """Runs commands against one database and one simulator, and keeps every output."""

    def __init__(self, db: Path, server: SimulatorServer) -> None:
        self.db, self.server = db, server
        self.runner = CliRunner()
        self.outputs: list[str] = []
        self.env: dict[str, str | None] = {
            "WAHA_TUI_DB": str(db),
            "WAHA_URL": server.url,
            "WAHA_API_KEY": None,
            "WAHA_TUI_LEASE_SECONDS": None,
        }

    def __call__(self, *args: str, env: dict[str, str | None] | None = None) -> Result:
        result = self.runner.invoke(app, list(args), env={**self.env, **(env or {})})
        self.outputs += [result.stdout, result.stderr]
        return result

    def ok(self, *args: str, **kw: Any) -> Result:
        result = self(*args, **kw)
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)

    def error(self, *args: str, code: int = 1, **kw: Any) -> str:
        """Runs a command that must fail with one `error: ...` line and no traceback."""
        result = self(*args, **kw)
        assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
        assert isinstance(result.exception, SystemExit), result.exception
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert "Traceback" not in result.stderr + result.stdout
        return lines[0]

    def errors(self, *args: str, **kw: Any) -> list[str]:
        """Runs a command that must fail with `error: ...` lines and no traceback."""
        result = self(*args, **kw)
        assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
        assert isinstance(result.exception, SystemExit), result.exception
        assert "Traceback" not in result.stderr + result.stdout
        lines = result.stderr.strip().splitlines()
        assert all(line.startswith("error: ") for line in lines), result.stderr
        return [line.removeprefix("error: ") for line in lines]

    def create(self, *args: str) -> int:
        result = self.ok("campaign", "create", *args)
        return int(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def cli(tmp_path: Path, sim_server: SimulatorServer) -> Cli:
    return Cli(tmp_path / "campaigns.db", sim_server)


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture
def csv5(tmp_path: Path) -> str:
    rows = "".join(f"+{phone(i)},{'N' + str(i) if i % 2 else ''},C{i}\n" for i in range(5))
    return write(tmp_path / "five.csv", "phone,name,city\n" + rows)


def db_tables(db: Path) -> dict[str, list[Any]]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return {
            t: conn.execute(f"SELECT * FROM {t}").fetchall()
            for t in ("campaign", "recipient", "contact_list", "contact")
        }


# -- contacts and templates --------------------------------------------------------------


def test_contacts_import_lists_and_delete_list(cli: Cli, csv5: str, tmp_path: Path) -> None:
    result = cli.ok("contacts", "import", csv5, "--list", "friends")
    assert "imported 5 contacts into list 'friends'" in result.stdout
    national = write(tmp_path / "de.csv", "phone\n030 1234567\n(030) 7654321\n")
    cli.ok("contacts", "import", national, "--list", "berlin", "--country", "de")
    lists = cli.json("contacts", "lists")
    assert [(x["name"], x["contacts"]) for x in lists] == [("berlin", 2), ("friends", 5)]
    assert all(x["created_at"] for x in lists)
    assert "friends\t5 contacts" in cli.ok("contacts", "lists").stdout

    cid = cli.create("--name", "b", "--list", "berlin", "--message", "hi", "--delay", "0-0")
    phones = [r["phone"] for r in cli.json("campaign", "recipients", str(cid))]
    assert phones == ["49301234567", "49307654321"]

    assert "deleted list 'berlin'" in cli.ok("contacts", "delete-list", "berlin").stdout
    assert [x["name"] for x in cli.json("contacts", "lists")] == ["friends"]
    assert len(cli.json("campaign", "recipients", str(cid))) == 2  # the campaign's own copy
    assert cli.error("contacts", "delete-list", "berlin") == "error: no contact list named 'berlin'"
    assert "already exists" in cli.error("contacts", "import", csv5, "--list", "friends")


def test_duplicates_are_kept_once_with_a_warning(cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", f"phone\n{phone(1)}\n+{phone(1)}\n{phone(2)}\n")
    result = cli.ok("contacts", "import", path, "--list", "d")
    assert f"duplicate {phone(1)} on lines 2, 3: kept once" in result.stderr
    assert cli.json("contacts", "lists")[0]["contacts"] == 2


def test_templates(cli: Cli) -> None:
    assert (
        "saved template 'welcome'"
        in cli.ok("template", "add", "welcome", "--text", "Hi {name}!").stdout
    )
    cli.ok("template", "add", "bye", "--text", "Bye   now\nsee you")
    assert cli.json("template", "list") == [
        {"name": "bye", "text": "Bye   now\nsee you"},
        {"name": "welcome", "text": "Hi {name}!"},
    ]
    assert "bye\tBye now see you" in cli.ok("template", "list").stdout
    assert "already exists" in cli.error("template", "add", "welcome", "--text", "x")
    assert "is empty" in cli.error("template", "add", "blank", "--text", "   ")
    cid = cli.create(
        "--name", "t", "--template", "welcome", "--contacts", _one(cli), "--delay", "0-0"
    )
    assert cli.json("campaign", "show", str(cid))["message"] == "Hi {name}!"


def _one(cli: Cli) -> str:
    return write(cli.db.parent / "one.csv", f"phone,name\n{phone(9)},Zoe\n")


def test_auto_resume_is_chosen_at_create_and_shown(cli: Cli) -> None:
    plain = cli.create("--name", "p", "--message", "Hi", "--contacts", _one(cli))
    auto = cli.create("--name", "a", "--message", "Hi", "--contacts", _one(cli), "--auto-resume")
    assert cli.json("campaign", "show", str(plain))["auto_resume"] is False
    assert cli.json("campaign", "show", str(auto))["auto_resume"] is True
    assert "auto_resume   True" in cli.ok("campaign", "show", str(auto)).stdout


def test_check_numbers_is_chosen_at_create_shown_edited_and_cloned(cli: Cli) -> None:
    plain = cli.create("--name", "p", "--message", "Hi", "--contacts", _one(cli))
    checks = cli.create(
        "--name", "c", "--message", "Hi", "--contacts", _one(cli), "--check-numbers"
    )
    assert cli.json("campaign", "show", str(plain))["check_numbers"] is False
    assert cli.json("campaign", "show", str(checks))["check_numbers"] is True
    assert "check_numbers True" in cli.ok("campaign", "show", str(checks)).stdout
    assert cli.json("campaign", "show", str(checks))["skipped"] == 0
    clone = int(cli.ok("campaign", "clone", str(checks)).stdout.strip().splitlines()[-1])
    assert cli.json("campaign", "show", str(clone))["check_numbers"] is True
    assert cli.ok("campaign", "edit", str(plain), "--check-numbers").stdout == (
        f"campaign {plain}: number check off → on\n"
    )
    assert cli.json("campaign", "show", str(plain))["check_numbers"] is True
    cli.ok("campaign", "edit", str(plain), "--no-check-numbers")
    assert cli.json("campaign", "show", str(plain))["check_numbers"] is False
    assert cli.json("campaign", "events", str(plain))[-1]["detail"] == "number check on → off"


# -- campaigns ---------------------------------------------------------------------------


def test_variants_and_choices_are_created_previewed_sent_shown_and_cloned(
    cli: Cli, csv5: str, state: SimState
) -> None:
    result = cli.ok(
        "campaign", "create", "--name", "varied", "--contacts", csv5, "--delay", "0-0",
        "--message", "{Hi|Hello} {name} from {city}",
        "--variant", "Good {morning|day}, {name}", "--variant", "Dear {name}",
    )  # fmt: skip
    cid = int(result.stdout.strip().splitlines()[-1])
    lines = result.stderr.splitlines()
    assert lines[1] == "5 different texts; the first recipients get:"
    first = [line.split(". ", 1)[1] for line in lines[2:5]]
    shown = cli.json("campaign", "show", str(cid))
    assert shown["variants"] == ["Good {morning|day}, {name}", "Dear {name}"]
    assert "variant 2     Dear {name}" in cli.ok("campaign", "show", str(cid)).stdout

    cli.ok("campaign", "pause", str(cid))
    cli.ok("campaign", "resume", str(cid))
    sent = cli.json("campaign", "recipients", str(cid))
    assert [r["status"] for r in sent] == ["sent"] * 5
    assert [r["text"] for r in sent] == [m.text for m in state.sent()]
    assert [r["text"] for r in sent[:3]] == first  # the preview said what went out
    assert sent[1]["text"] in ("Hi N1 from C1", "Hello N1 from C1", "Good morning, N1",
                               "Good day, N1", "Dear N1")  # fmt: skip
    human = cli.ok("campaign", "recipients", str(cid)).stdout.splitlines()
    assert human[1].split("\t")[-1] == sent[1]["text"]

    clone = int(cli.ok("campaign", "clone", str(cid)).stdout.strip().splitlines()[-1])
    assert cli.json("campaign", "show", str(clone))["variants"] == shown["variants"]
    created = cli.json(
        "campaign", "create", "--name", "j", "--contacts", csv5, "--message", "{a|b|c} {d|e}"
    )
    assert (created["different_texts"], created["different_texts_exact"]) == (6, True)
    assert len(created["first_texts"]) == 3


def test_a_template_with_variants_and_a_plain_text_says_nothing_of_texts(
    cli: Cli, csv5: str
) -> None:
    cli.ok("template", "add", "greet", "--text", "{Hi|Hey} {name}")
    result = cli.ok(
        "campaign", "create", "--name", "t", "--contacts", csv5, "--template", "greet",
        "--variant", "Hello {name}",
    )  # fmt: skip
    assert "3 different texts" in result.stderr
    plain = cli.ok("campaign", "create", "--name", "p", "--contacts", csv5, "--message", "Hi")
    assert "different text" not in plain.stderr


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("--message", "Hi", "--variant", " "), "--variant 1 is empty"),
        (
            ("--message", "Hi", "--variant", "ok", "--variant", "Hi|Hello {name}"),
            "--variant 2, line 1, column 3: a | outside braces",
        ),
        (("--message", "{Hi|Hello {name}"), "the message, line 1, column 1: {Hi has"),
        (("--message", "x\n{|}"), "the message, line 2, column 1: {|} is a choice"),
        (("--message", "Hi", "--variant", "{Hi|{town}}"), "{town}"),
    ],
)
def test_malformed_variants_and_choices_are_refused_with_their_position(
    cli: Cli, csv5: str, args: tuple[str, ...], error: str
) -> None:
    errors = cli.errors("campaign", "create", "--name", "x", "--contacts", csv5, *args)
    assert any(error in e for e in errors), errors
    assert cli.json("campaign", "list") == []


def test_create_list_show_recipients(cli: Cli, csv5: str) -> None:
    result = cli.ok(
        "campaign", "create", "--name", "Spring", "--contacts", csv5,
        "--message", "Hello {name} in {City}", "--delay", "0-0",
        "--at", "2030-01-02T03:04:05+00:00", "--default-name", "friend",
    )  # fmt: skip
    cid = int(result.stdout.strip().splitlines()[-1])
    assert "5 recipients" in result.stderr

    [listed] = cli.json("campaign", "list")
    shown = cli.json("campaign", "show", str(cid))
    assert set(shown) >= CAMPAIGN_FIELDS and listed == shown
    assert {k: shown[k] for k in ("id", "name", "status", "session", "total", "sent")} == {
        "id": cid,
        "name": "Spring",
        "status": "Scheduled",
        "session": "default",
        "total": 5,
        "sent": 0,
    }
    assert shown["scheduled_at"] == "2030-01-02T03:04:05+00:00"
    assert (shown["next_index"], shown["failed"], shown["started_at"]) == (0, 0, None)
    assert (shown["completed_at"], shown["pause_reason"], shown["last_error"]) == (None,) * 3

    recipients = cli.json("campaign", "recipients", str(cid))
    assert all(set(r) >= RECIPIENT_FIELDS for r in recipients)
    assert [(r["position"], r["phone"], r["chat_id"], r["name"], r["status"]) for r in recipients][
        :2
    ] == [
        (0, phone(0), f"{phone(0)}@c.us", None, "pending"),
        (1, phone(1), f"{phone(1)}@c.us", "N1", "pending"),
    ]
    assert "Spring" in cli.ok("campaign", "list").stdout
    assert "Scheduled" in cli.ok("campaign", "show", str(cid)).stdout
    assert cli.json("campaign", "recipients", str(cid), "--status", "sent") == []
    assert "--status 'bogus'" in cli.error("campaign", "recipients", str(cid), "--status", "bogus")


def test_resume_exit_codes_disconnect_and_reconnect(cli: Cli, csv5: str, state: SimState) -> None:
    cid = cli.create(
        "--name", "story", "--contacts", csv5, "--message", "Hi {name} from {city}",
        "--delay", "0-0", "--default-name", "friend",
    )  # fmt: skip
    assert f"campaign {cid} paused" in cli.ok("campaign", "pause", str(cid)).stdout
    assert cli.json("campaign", "show", str(cid))["status"] == "Paused"

    state.stop_after("default", 2)
    result = cli("campaign", "resume", str(cid))
    assert result.exit_code == 3, (result.stdout, result.stderr)
    assert f"campaign {cid} Paused at recipient 3: session 'default' is STOPPED" in result.stderr
    shown = cli.json("campaign", "show", str(cid))
    assert (shown["status"], shown["next_index"], shown["sent"]) == ("Paused", 2, 2)
    # People count from 1 everywhere (the dashboard's # and Next too); --json from 0.
    assert "\nnext          3 of 5\n" in cli.ok("campaign", "show", str(cid)).stdout
    lines = [
        line.split("\t")
        for line in cli.ok("campaign", "recipients", str(cid)).stdout.split("\n")
        if line
    ]
    assert [(n, status) for n, _phone, _name, status, *_ in lines] == [
        ("1", "sent"), ("2", "sent"), ("3", "pending"), ("4", "pending"), ("5", "pending")
    ]  # fmt: skip
    assert [r["position"] for r in cli.json("campaign", "recipients", str(cid))] == [0, 1, 2, 3, 4]
    assert shown["pause_reason"].startswith("session 'default' is STOPPED")

    line = cli.error("campaign", "resume", str(cid))
    assert line.startswith("error: session 'default' is STOPPED")

    state.set_status("default", "WORKING")
    result = cli("campaign", "resume", str(cid))
    assert result.exit_code == 0, result.stderr
    assert f"campaign {cid} Completed: 5 sent, 0 failed of 5" in result.stderr
    shown = cli.json("campaign", "show", str(cid))
    assert (shown["status"], shown["next_index"], shown["sent"]) == ("Completed", 5, 5)
    assert shown["completed_at"] and shown["started_at"]
    assert [m.text for m in state.sent()] == [
        "Hi friend from C0",
        "Hi N1 from C1",
        "Hi friend from C2",
        "Hi N3 from C3",
        "Hi friend from C4",
    ]
    recipients = cli.json("campaign", "recipients", str(cid))
    assert [r["message_id"] for r in recipients] == [m.id for m in state.sent()]
    assert {r["status"] for r in recipients} == {"sent"}
    assert "only a Paused campaign" in cli.error("campaign", "resume", str(cid))


def test_resume_of_a_failed_campaign_with_recipients_left(
    cli: Cli, csv5: str, state: SimState
) -> None:
    cid = cli.create("--name", "f", "--contacts", csv5, "--message", "x", "--delay", "0-0")
    store = Store(cli.db)
    # As a run that died on a database error leaves it: two sent, three pending.
    force_recipient(store, cid, 0, status="sent")
    force_recipient(store, cid, 1, status="sent")
    force(store, cid, status="Failed", sent=2, next_index=2, completed_at=utcnow())
    store.close()
    result = cli("campaign", "resume", str(cid))
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert f"campaign {cid} Completed: 5 sent, 0 failed of 5" in result.stderr
    assert [m.chat_id for m in state.sent()] == [f"{phone(i)}@c.us" for i in (2, 3, 4)]
    shown = cli.json("campaign", "show", str(cid))
    assert (shown["status"], shown["sent"], shown["next_index"]) == ("Completed", 5, 5)


def test_show_says_what_a_running_campaign_waits_for(cli: Cli, csv5: str, utc: None) -> None:
    cid = cli.create("--name", "w", "--contacts", csv5, "--message", "x")
    quiet = cli.create("--name", "q", "--contacts", csv5, "--message", "x", "--session", "b")
    store = Store(cli.db)
    store.claim(cid, "other-host:7:x", 600)  # running elsewhere, waiting for its session
    store.set_waiting(cid, "other-host:7:x", "waiting for session 'default' (STARTING)")
    since = store.get_campaign(cid).waiting_since
    store.close()
    assert since is not None
    shown = cli.json("campaign", "show", str(cid))
    assert shown["waiting_for"] == "waiting for session 'default' (STARTING)"
    assert shown["waiting_since"] == since.isoformat()
    lines = cli.ok("campaign", "show", str(cid)).stdout.splitlines()
    expected = f"waiting for session 'default' (STARTING) since {since:%H:%M}"
    assert [line.split(None, 1)[1] for line in lines if line.startswith("waiting ")] == [expected]
    other = cli.json("campaign", "show", str(quiet))
    assert (other["waiting_for"], other["waiting_since"]) == (None, None)
    quiet_lines = cli.ok("campaign", "show", str(quiet)).stdout.splitlines()
    assert [line.split() for line in quiet_lines if line.startswith("waiting ")] == [
        ["waiting", "-"]
    ]


def test_events_tell_a_campaigns_history_and_show_names_who_created_it(
    cli: Cli, csv5: str, state: SimState, utc: None
) -> None:
    cid = cli.create("--name", "h", "--contacts", csv5, "--message", "x", "--delay", "0-0")
    state.set_status("default", "STOPPED")
    cli.ok("run", "--until-idle")
    store = Store(cli.db)
    with store.write() as conn:  # text from outside, as WAHA's words in a reason may be
        record(conn, cid, Entry(Kind.WAITING, "waiting for \x1b[2Jsession\n'x'\x07"))
    store.close()
    user, host = pwd.getpwuid(os.geteuid()).pw_name, socket.gethostname()
    events = cli.json("campaign", "events", str(cid))
    assert [(e["kind"], e["user"], e["host"], e["pid"]) for e in events] == [
        (kind, user, host, os.getpid()) for kind in ("created", "claimed", "paused", "waiting")
    ]
    assert set(events[0]) == {"at", "kind", "detail", "user", "host", "pid"}
    assert events[2]["detail"].startswith("session 'default' is STOPPED")
    assert events[3]["detail"] == "waiting for \x1b[2Jsession\n'x'\x07"  # JSON keeps it as is
    lines = cli.ok("campaign", "events", str(cid)).stdout.splitlines()
    shown_detail = [e["detail"] for e in events[:3]] + ["waiting for \\x1b[2Jsession\\x0a'x'\\x07"]
    assert lines == [
        f"{datetime.fromisoformat(e['at']):%Y-%m-%d %H:%M:%S}  {e['kind']:9}  {detail}  "
        f"({user}@{host} pid {os.getpid()})"
        for e, detail in zip(events, shown_detail, strict=True)
    ]
    assert not any(ch in "".join(lines) for ch in "\x1b\x07")
    assert cli.json("campaign", "show", str(cid))["created_by"] == f"{user}@{host}"
    shown = cli.ok("campaign", "show", str(cid)).stdout.splitlines()
    assert f"created_by    {user}@{host}" in shown


def test_resume_refused_by_a_busy_session_is_one_line(cli: Cli, csv5: str) -> None:
    busy = cli.create("--name", "a", "--contacts", csv5, "--message", "x")
    cid = cli.create("--name", "b", "--contacts", csv5, "--message", "x")
    cli.ok("campaign", "pause", str(cid))
    store = Store(cli.db)
    store.claim(busy, "another:1:x", 60)  # running in another process
    store.close()
    line = cli.error("campaign", "resume", str(cid))
    assert line == (
        f"error: session 'default' is busy sending campaign {busy}: one campaign per WAHA "
        "session at a time"
    )
    shown = cli.json("campaign", "show", str(cid))
    assert (shown["status"], shown["pause_reason"]) == ("Paused", "paused by the operator")


def test_resume_detach_then_run_until_idle(cli: Cli, csv5: str, state: SimState) -> None:
    cid = cli.create("--name", "d", "--contacts", csv5, "--message", "x", "--delay", "0-0")
    cli.ok("campaign", "pause", str(cid))
    result = cli.ok("campaign", "resume", str(cid), "--detach")
    assert "Scheduled" in result.stdout
    assert cli.json("campaign", "show", str(cid))["status"] == "Scheduled"
    assert state.sent() == []
    result = cli.ok("run", "--until-idle")
    assert f"campaign {cid} Completed" in result.stderr
    assert cli.json("campaign", "show", str(cid))["status"] == "Completed"
    assert len(state.sent()) == 5


def test_run_until_idle_leaves_future_campaigns(cli: Cli, csv5: str, state: SimState) -> None:
    cid = cli.create(
        "--name", "later", "--contacts", csv5, "--message", "x", "--at", "2999-01-01T00:00"
    )
    cli.ok("run", "--until-idle")
    assert cli.json("campaign", "show", str(cid))["status"] == "Scheduled"
    assert state.sent() == []


def test_cancel(cli: Cli, csv5: str) -> None:
    cid = cli.create("--name", "c", "--contacts", csv5, "--message", "x")
    assert f"campaign {cid} cancelled" in cli.ok("campaign", "cancel", str(cid)).stdout
    shown = cli.json("campaign", "show", str(cid))
    assert shown["status"] == "Cancelled" and shown["completed_at"]
    assert (
        cli.error("campaign", "cancel", str(cid)) == f"error: campaign {cid} is already Cancelled"
    )
    assert cli.error("campaign", "pause", str(cid)) == (
        f"error: campaign {cid} is Cancelled: it cannot be paused"
    )


# -- bad input and usage -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["campaign", "show", "abc"], "campaign id 'abc' is not a number"),
        (["campaign", "show", "-3"], "campaign id '-3' must be a positive number"),
        (["campaign", "show", "0"], "must be a positive number"),
        (["campaign", "show", "99"], "no campaign with id 99"),
        (["campaign", "recipients", "99", "--json"], "no campaign with id 99"),
        (["campaign", "resume", "-1"], "must be a positive number"),
        (["campaign", "resume", "99"], "no campaign with id 99"),
        (["campaign", "pause", "x1"], "is not a number"),
        (["campaign", "cancel", "99"], "no campaign with id 99"),
        (["campaign", "events", "99"], "no campaign with id 99"),
        (["campaign", "events", "-2", "--json"], "campaign id '-2' must be a positive number"),
    ],
)
def test_bad_ids(cli: Cli, args: list[str], message: str) -> None:
    assert message in cli.error(*args)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--delay", "5"], "--delay '5' is not MIN-MAX in seconds"),
        (["--delay", "9-3"], "MIN is larger than MAX"),
        (["--at", "tomorrow"], "--at 'tomorrow' is not an ISO-8601 date and time"),
        (["--message", "Hi {nickname}"], "the template uses {nickname}, which is not a column"),
        (["--template", "nope"], "no template named 'nope'"),
        (["--image", "/nonexistent.png"], "--image /nonexistent.png: no such file"),
        (["--list", "nope"], "give either --contacts FILE.csv or --list NAME"),
        (["--country", "XX"], "unknown country code 'XX'"),
    ],
)
def test_create_refuses_bad_input(cli: Cli, csv5: str, extra: list[str], message: str) -> None:
    args = ["campaign", "create", "--name", "x", "--contacts", csv5, *extra]
    if "--message" not in extra and "--template" not in extra:
        args += ["--message", "hi"]
    assert message in cli.error(*args)
    assert cli.json("campaign", "list") == []


def test_create_prints_every_refused_field_one_per_line(cli: Cli, csv5: str) -> None:
    lines = cli.errors(
        "campaign", "create", "--name", " ", "--contacts", csv5, "--message", "hi",
        "--at", "tomorrow", "--delay", "9-3", "--session", "",
    )  # fmt: skip
    assert lines == [
        "--name is empty",
        "--session is empty",
        "--at 'tomorrow' is not an ISO-8601 date and time, e.g. 2026-12-01T09:30",
        "--delay '9-3': MIN is larger than MAX",
    ]
    assert cli.json("campaign", "list") == []


def test_create_from_a_list_refuses_an_unknown_placeholder(cli: Cli, csv5: str) -> None:
    cli.ok("contacts", "import", csv5, "--list", "friends")
    line = cli.error(
        "campaign", "create", "--name", "x", "--list", "friends", "--message", "{town}"
    )
    assert "unknown placeholder {town}" in line and "list 'friends' has the columns city" in line
    assert cli.json("campaign", "list") == []


@pytest.mark.parametrize(
    "args",
    [
        ["campaign", "show"],
        ["campaign", "create", "--message", "x"],  # no --name
        ["contacts", "import", "f.csv"],  # no --list
        ["campaign", "frobnicate"],
        ["campaign", "list", "--bogus"],
        ["template", "add", "x"],  # no --text
    ],
)
def test_usage_errors_exit_2(cli: Cli, args: list[str]) -> None:
    result = cli(*args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr


# -- CSV files ---------------------------------------------------------------------------

BAD_CSVS = [
    (None, "no such file"),
    ("", "has no contacts (the file is empty)"),
    ("phone,name\n", "has no contacts (only a header row)"),
    ("tel,name\n491511234567,A\n", "has no phone column"),
    ("phone,name\n491511234567,A\nnot a phone,B\n", "invalid phone on line 3"),
    ("phone\n030 1234567\n", "is a national number (it starts with 0)"),
    ('phone,name\n491511234567,"Ana\n491511234568,B\n', "is never closed"),
    ("phone,name\n491511234567,A,extra\n", "more cells than the header's 2 on line 2"),
    ("phone,phone_number\n1,2\n", "more than one phone column"),
]


@pytest.mark.parametrize(("content", "message"), BAD_CSVS)
def test_a_rejected_import_writes_nothing(
    cli: Cli, tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "bad.csv"
    if content is not None:
        write(path, content)
    line = cli.error("contacts", "import", str(path), "--list", "bad")
    assert message in line and str(path) in line
    if "national number" in message:
        assert "--country" in line
    assert db_tables(cli.db) == {"campaign": [], "recipient": [], "contact_list": [], "contact": []}


@pytest.mark.parametrize(("content", "message"), BAD_CSVS)
def test_a_rejected_contacts_file_creates_no_campaign(
    cli: Cli, tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "bad.csv"
    if content is not None:
        write(path, content)
    args = ["campaign", "create", "--name", "x", "--contacts", str(path), "--message", "hi"]
    assert message in cli.error(*args)
    assert db_tables(cli.db) == {"campaign": [], "recipient": [], "contact_list": [], "contact": []}


def test_csv_template_checks_through_campaign_create(cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", f"phone,city\n{phone(1)},Oslo\n{phone(2)},\n")
    args = ["campaign", "create", "--name", "x", "--contacts", path]
    assert "{city} is empty on line 3" in cli.error(*args, "--message", "Hi {City}")
    assert "write {name} for the contact's name" in cli.error(*args, "--message", "{first_name}")
    assert db_tables(cli.db)["campaign"] == []
    cli.create(*args[2:], "--message", "Hi {name}")  # {name} never needs a column


@pytest.mark.parametrize(
    ("message", "where"),
    [
        ("Hi {first.name}", "line 1, column 4: {first.name} is not a placeholder"),
        ("Hi {name", "line 1, column 4: {name has no closing }"),
        ("{{name}}", "line 1, column 1: write {name}, not {{name}}"),
    ],
)
def test_campaign_create_refuses_a_broken_message_as_template_add_does(
    cli: Cli, tmp_path: Path, message: str, where: str
) -> None:
    path = write(tmp_path / "c.csv", f"phone,city\n{phone(1)},Oslo\n")
    args = ["campaign", "create", "--name", "x", "--contacts", path, "--message", message]
    said = cli.error(*args)
    assert f"the message, {where}" in said and len(said.strip().splitlines()) == 1, said
    assert where in cli.error("template", "add", "t", "--text", message)  # one verdict
    assert db_tables(cli.db)["campaign"] == []


def test_semicolons_bom_and_utf16(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffPhone;Name;City\n+49 151 0000 0001;Ana;Köln\n".encode())
    cli.ok("contacts", "import", str(path), "--list", "excel")
    cid = cli.create("--name", "e", "--list", "excel", "--message", "{name} {city}")
    [rec] = cli.json("campaign", "recipients", str(cid))
    assert (rec["phone"], rec["name"]) == ("4915100000001", "Ana")
    utf16 = tmp_path / "u16.csv"
    utf16.write_bytes("phone\n491511234567\n".encode("utf-16"))
    assert "is not UTF-8" in cli.error("contacts", "import", str(utf16), "--list", "u")


# -- settings: --db, --waha-url, --api-key -----------------------------------------------


def test_db_flag_and_env(cli: Cli, tmp_path: Path, csv5: str) -> None:
    flag_db, env_db = tmp_path / "flag.db", tmp_path / "env.db"
    cli.ok(
        "--db",
        str(flag_db),
        "contacts",
        "import",
        csv5,
        "--list",
        "a",
        env={"WAHA_TUI_DB": str(env_db)},
    )
    cli.ok("contacts", "import", csv5, "--list", "b", env={"WAHA_TUI_DB": str(env_db)})
    assert [x.name for x in Store(flag_db).lists()] == ["a"]
    assert [x.name for x in Store(env_db).lists()] == ["b"]
    assert not cli.db.exists()


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_postgresql_url_in_db_and_env_and_errors_without_its_password(
    cli: Cli, csv5: str, db_target: str
) -> None:
    url = make_url(db_target)
    password = url.password
    assert password
    cli.ok("--db", db_target, "contacts", "import", csv5, "--list", "a")
    cli.ok("contacts", "import", csv5, "--list", "b", env={"WAHA_TUI_DB": db_target})
    store = Store(db_target)
    assert [x.name for x in store.lists()] == ["a", "b"]
    store.close()
    assert not cli.db.exists()
    wrong = url.set(password="not-the-pw-4242").render_as_string(hide_password=False)
    line = cli.error("--db", wrong, "contacts", "lists")
    assert "password authentication failed" in line and "***" in line, line
    assert "not-the-pw-4242" not in line
    gone = url.set(port=closed_port()).render_as_string(hide_password=False)
    line = cli.error("contacts", "lists", env={"WAHA_TUI_DB": gone})
    assert "Connection refused" in line and "***" in line, line
    assert all(password not in out for out in cli.outputs)


def test_waha_url_flag_and_env(cli: Cli, csv5: str, state: SimState) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    cid = cli.create("--name", "u", "--contacts", csv5, "--message", "x", "--delay", "0-0")
    cli.ok("campaign", "pause", str(cid))
    line = cli.error("campaign", "resume", str(cid), env={"WAHA_URL": dead})
    assert f"WAHA at {dead} is unreachable" in line
    # The flag wins over the environment.
    cli.ok("--waha-url", cli.server.url, "campaign", "resume", str(cid), env={"WAHA_URL": dead})
    assert len(state.sent()) == 5
    assert "is not valid" in cli.error("--waha-url", "ftp://x", "campaign", "resume", str(cid))


def test_the_api_key_is_used_and_never_shown_or_stored(
    cli: Cli, csv5: str, state: SimState
) -> None:
    state.require_api_key(KEY)
    cid = cli.create("--name", "k", "--contacts", csv5, "--message", "Hi {name}", "--delay", "0-0")
    cli.ok("campaign", "pause", str(cid))
    line = cli.error("campaign", "resume", str(cid))  # no key at all
    assert "401" in line and "WAHA_API_KEY" in line
    line = cli.error("--api-key", KEY[:-1], "campaign", "resume", str(cid))  # a wrong key
    assert "401" in line
    cli.ok("campaign", "resume", str(cid), env={"WAHA_API_KEY": KEY})
    assert len(state.sent()) == 5

    cid2 = cli.create("--name", "k2", "--contacts", csv5, "--message", "x", "--delay", "0-0")
    cli.ok("--api-key", KEY, "run", "--until-idle")
    assert cli.json("campaign", "show", str(cid2))["status"] == "Completed"
    state.require_api_key("something-else")
    cid3 = cli.create("--name", "k3", "--contacts", csv5, "--message", "x", "--delay", "0-0")
    result = cli("--api-key", KEY, "run", "--until-idle")
    assert result.exit_code == 0
    shown = cli.json("campaign", "show", str(cid3))
    assert shown["status"] == "Paused" and "WAHA_API_KEY" in shown["pause_reason"]
    for args in (
        ["campaign", "list"],
        ["campaign", "show", str(cid)],
        ["campaign", "recipients", str(cid)],
    ):
        cli.ok("--api-key", KEY, *args)
        cli.ok("--api-key", KEY, *args, "--json")

    assert all(KEY not in out for out in cli.outputs)
    assert KEY[:-1] not in "".join(cli.outputs)
    files = [p for p in cli.db.parent.iterdir() if p.name.startswith(cli.db.name)]
    assert cli.db in files
    for path in files:
        assert KEY.encode() not in path.read_bytes(), path


def test_the_api_key_from_a_file_as_systemd_credentials_give_it(
    cli: Cli, csv5: str, state: SimState, tmp_path: Path
) -> None:
    state.require_api_key(KEY)
    key_file = tmp_path / "waha-api-key"
    key_file.write_text(KEY + "\n", encoding="utf-8")  # as `echo KEY > file` leaves it
    cid = cli.create("--name", "f", "--contacts", csv5, "--message", "x", "--delay", "0-0")
    cli.ok("campaign", "pause", str(cid))
    cli.ok("--api-key-file", str(key_file), "campaign", "resume", str(cid))
    assert len(state.sent()) == 5
    cid2 = cli.create("--name", "g", "--contacts", csv5, "--message", "x", "--delay", "0-0")
    cli.ok("run", "--until-idle", env={"WAHA_API_KEY_FILE": str(key_file)})
    assert cli.json("campaign", "show", str(cid2))["status"] == "Completed"

    missing = tmp_path / "nope"
    line = cli.error("--api-key-file", str(missing), "campaign", "list")
    assert line == f"error: --api-key-file {missing}: cannot read it (No such file or directory)"
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    line = cli.error("campaign", "list", env={"WAHA_API_KEY_FILE": str(tmp_path / "empty")})
    assert line == f"error: WAHA_API_KEY_FILE {tmp_path / 'empty'} is empty"
    both = cli.error("--api-key", KEY, "--api-key-file", str(key_file), "campaign", "list")
    assert "not both" in both
    assert all(KEY not in out for out in cli.outputs)


def test_the_simulator_beyond_loopback_warns_that_its_routes_need_no_key() -> None:
    def first_lines(host: str) -> str:
        proc = subprocess.Popen(
            [sys.executable, "-m", "waha_tui", "simulator", "--host", host, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            proc.stdout.readline()  # "listening on": the warning, if any, came before it
        finally:
            proc.terminate()
            _out, err = proc.communicate(timeout=10)
        return err

    assert "need no API key" in first_lines("0.0.0.0")
    assert "need no API key" not in first_lines("127.0.0.1")


def test_text_from_outside_is_shown_not_obeyed_and_json_stays_faithful(
    cli: Cli, state: SimState, tmp_path: Path
) -> None:
    title, clear, rlo = "\x1b]0;pwned\x07", "\x1b[2J", "\u202e"
    path = write(
        tmp_path / "evil.csv",
        f"phone,name,city{clear}\n+{phone(1)},Ann{title},x\n+{phone(2)},Bo{rlo}b,y\n",
    )
    state.fail_chat(phone(2), f"bad number{clear}")
    cid = cli.create(
        "--name", f"evil{title}", "--contacts", path, "--message", "hi {name}", "--delay", "0-0"
    )
    cli.ok("run", "--until-idle")
    human = [
        cli.ok("campaign", "recipients", str(cid)).stdout,
        cli.ok("campaign", "list").stdout,
        cli.ok("campaign", "show", str(cid)).stdout,
    ]
    for out in human:
        assert "\x1b" not in out and rlo not in out, out
    assert "Ann\\x1b]0;pwned\\x07" in human[0] and "bad number\\x1b[2J" in human[0]
    assert "evil\\x1b]0;pwned\\x07" in human[1]
    # --json is faithful: the exact text, escaped by JSON itself.
    recipients = cli.json("campaign", "recipients", str(cid))
    assert recipients[0]["name"] == f"Ann{title}" and rlo in recipients[1]["name"]
    assert cli.json("campaign", "show", str(cid))["name"] == f"evil{title}"
    assert state.sent()[0].text == f"hi Ann{title}"  # sent exactly as given


# -- a campaign's life: delete, clone, edit -----------------------------------------------


def test_delete_asks_first_so_without_a_terminal_it_takes_yes(cli: Cli, csv5: str) -> None:
    cid = cli.create("--name", "Old news", "--contacts", csv5, "--message", "Hi")
    keep = cli.create("--name", "Keep", "--contacts", csv5, "--message", "Hi")
    before = db_tables(cli.db)
    line = cli.error("campaign", "delete", str(cid), code=2)
    assert line == (
        f"error: campaign delete asks first and stdin is not a terminal: give --yes to delete "
        f"campaign {cid} without asking"
    )
    assert db_tables(cli.db) == before
    done = cli.ok("campaign", "delete", str(cid), "--yes")
    assert done.stdout == f"deleted campaign {cid} 'Old news': 5 recipients, its history\n"
    assert cli.error("campaign", "show", str(cid)) == f"error: no campaign with id {cid}"
    assert cli.error("campaign", "events", str(cid)) == f"error: no campaign with id {cid}"
    assert [c["id"] for c in cli.json("campaign", "list")] == [keep]
    assert len(cli.json("campaign", "recipients", str(keep))) == 5
    assert cli.error("campaign", "delete", str(cid), "--yes") == (
        f"error: no campaign with id {cid}"
    )


def test_a_running_campaign_is_refused_before_any_question(cli: Cli, csv5: str) -> None:
    cid = cli.create("--name", "Busy", "--contacts", csv5, "--message", "Hi")
    store = Store(cli.db)
    store.claim(cid, "another-host:1:x", 60)
    store.close()
    before = db_tables(cli.db)
    refused = f"error: campaign {cid} is Running: it cannot be deleted; pause or cancel it first"
    assert cli.error("campaign", "delete", str(cid)) == refused
    assert cli.error("campaign", "delete", str(cid), "--yes") == refused
    assert db_tables(cli.db) == before


def _on_a_terminal(cli: Cli, answer: bytes, *args: str) -> tuple[int, str]:
    """A command on a pty (stdin, stdout and stderr), answering its question."""
    master, slave = pty.openpty()
    env = {**os.environ, "WAHA_TUI_DB": str(cli.db), "WAHA_URL": cli.server.url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "waha_tui", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    seen = bytearray()
    try:
        deadline = time.monotonic() + 30
        asked = False
        while proc.poll() is None or select.select([master], [], [], 0)[0]:
            assert time.monotonic() < deadline, bytes(seen)
            if select.select([master], [], [], 0.05)[0]:
                try:
                    seen.extend(os.read(master, 65536))
                except OSError:
                    break
            # The prompt's last space comes apart from it (click writes it with input()).
            if not asked and b"[y/N]: " in seen:
                os.write(master, answer)
                asked = True
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return proc.returncode, seen.decode().replace("\r\n", "\n")


def test_on_a_terminal_delete_asks_and_no_keeps_it(cli: Cli, csv5: str) -> None:
    cid = cli.create("--name", "Maybe", "--contacts", csv5, "--message", "Hi")
    code, out = _on_a_terminal(cli, b"n\n", "campaign", "delete", str(cid))
    question = (
        f"Delete campaign {cid} 'Maybe' (Scheduled, 5 recipients) with its history? This "
        "cannot be undone. [y/N]: "
    )
    assert (code, out) == (1, f"{question}n\ncampaign {cid} kept: nothing was deleted\n")
    assert cli.json("campaign", "show", str(cid))["status"] == "Scheduled"
    code, out = _on_a_terminal(cli, b"y\n", "campaign", "delete", str(cid))
    assert code == 0 and f"deleted campaign {cid} 'Maybe'" in out
    assert cli.json("campaign", "list") == []


def test_clone_prints_the_new_id_and_sends_to_every_recipient_again(
    cli: Cli, csv5: str, state: SimState
) -> None:
    cid = cli.create(
        "--name", "Spring", "--contacts", csv5, "--message", "Hi {name}", "--delay", "0-0",
        "--default-name", "friend",
    )  # fmt: skip
    cli.ok("campaign", "pause", str(cid))  # it never runs: only its clone sends
    made = cli.ok("campaign", "clone", str(cid))
    new = int(made.stdout.strip().splitlines()[-1])
    assert made.stderr.startswith(
        f"campaign 'Spring (copy)': 5 recipients cloned from campaign {cid}, Scheduled for "
    )
    shown = cli.json("campaign", "show", str(new))
    assert (shown["name"], shown["status"], shown["total"], shown["message"]) == (
        "Spring (copy)",
        "Scheduled",
        5,
        "Hi {name}",
    )
    later = cli.ok(
        "campaign", "clone", str(cid), "--name", "Later", "--at", "2031-01-02T03:04:00+00:00"
    )
    again = int(later.stdout.strip().splitlines()[-1])
    assert cli.json("campaign", "show", str(again))["scheduled_at"] == "2031-01-02T03:04:00+00:00"
    assert cli.errors("campaign", "clone", str(cid), "--name", "", "--at", "soon") == [
        "--name is empty",
        "--at 'soon' is not an ISO-8601 date and time, e.g. 2026-12-01T09:30",
    ]
    cli.ok("run", "--until-idle")
    assert len(state.sent()) == 5  # the clone due now; the other waits for 2031
    assert cli.json("campaign", "show", str(new))["status"] == "Completed"


def test_edit_name_start_and_delay_and_why_not_the_session(cli: Cli, csv5: str) -> None:
    cid = cli.create(
        "--name", "Old", "--contacts", csv5, "--message", "Hi", "--at",
        "2030-01-02T03:04:00+00:00",
    )  # fmt: skip
    done = cli.ok(
        "campaign", "edit", str(cid), "--name", "New", "--at", "2030-02-03T04:05:00+00:00",
        "--delay", "10-20",
    )  # fmt: skip
    assert done.stdout == (
        f"campaign {cid}: name 'Old' → 'New'; start 2030-01-02 03:04 UTC → 2030-02-03 04:05 "
        "UTC; delay 30-60 s → 10-20 s\n"
    )
    shown = cli.json("campaign", "show", str(cid))
    assert (shown["name"], shown["scheduled_at"], shown["delay"]) == (
        "New",
        "2030-02-03T04:05:00+00:00",
        [10.0, 20.0],
    )
    assert cli.json("campaign", "events", str(cid))[-1]["kind"] == "edited"
    assert cli.ok("campaign", "edit", str(cid), "--name", "New").stdout == (
        f"campaign {cid}: nothing changed\n"
    )
    assert cli.error("campaign", "edit", str(cid)) == (
        "error: say what to change: --name, --at, --delay, --check-numbers, --window, --days, "
        "--timezone, --break-every or --break"
    )
    assert cli.errors("campaign", "edit", str(cid), "--session", "sales", "--delay", "x") == [
        "--delay 'x' is not MIN-MAX in seconds, e.g. 30-60",
        "a campaign's session cannot change: what it sent (a message id, an unknown delivery) "
        "belongs to that number; clone the campaign onto another session instead",
    ]
    cli.ok("campaign", "cancel", str(cid))
    assert cli.error("campaign", "edit", str(cid), "--name", "x") == (
        f"error: campaign {cid} is Cancelled: only a Scheduled or Paused campaign can be "
        "edited; clone it into a new one"
    )


# -- words ---------------------------------------------------------------------------------


def test_version(cli: Cli) -> None:
    from importlib.metadata import version

    assert cli.ok("--version").stdout == f"waha-tui {version('waha-tui')}\n"


def test_campaign_list_has_a_header_and_an_empty_word_only_on_a_terminal(
    cli: Cli, csv5: str
) -> None:
    assert cli.ok("campaign", "list").stdout == ""  # a pipe: nothing to parse, nothing said
    code, out = _on_a_terminal(cli, b"", "campaign", "list")
    assert (code, out) == (
        0,
        "no campaigns yet: create one with `waha-tui campaign create` or in the dashboard "
        "(`waha-tui`, then N); `waha-tui demo` shows some\n",
    )
    cid = cli.create("--name", "Spring", "--contacts", csv5, "--message", "Hi")
    line = f"{cid}\tScheduled\t0/5\tfailed 0\tSpring\t\n"
    assert cli.ok("campaign", "list").stdout == line  # a script's lines, and only them
    code, out = _on_a_terminal(cli, b"", "campaign", "list")
    assert (code, out) == (0, "id\tstatus\tsent/total\tfailed\tname\twhy\n" + line)


# -- a real process ----------------------------------------------------------------------


def test_a_real_subprocess(tmp_path: Path, csv5: str, sim_server: SimulatorServer) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAHA_", "WAHA_TUI_"))}
    env.update(WAHA_TUI_DB=str(tmp_path / "sub.db"), WAHA_URL=sim_server.url)
    base = [sys.executable, "-m", "waha_tui"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    create = run(
        "campaign", "create", "--name", "sub", "--contacts", csv5,
        "--message", "Hi {name}", "--delay", "0-0",
    )  # fmt: skip
    assert create.returncode == 0, create.stderr
    cid = create.stdout.strip().splitlines()[-1]
    assert cid.isdigit()
    done = run("run", "--until-idle")
    assert done.returncode == 0, done.stderr
    assert f"campaign {cid} Completed: 5 sent" in done.stderr
    assert len(sim_server.state.sent()) == 5
    store = Store(tmp_path / "sub.db")
    assert store.get_campaign(int(cid)).status == "Completed"
    store.close()
    bad = run("campaign", "show", "-7")
    assert bad.returncode == 1
    assert bad.stderr == "error: campaign id '-7' must be a positive number\n"


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("WAHA_TUI_DB", "WAHA_URL", "WAHA_API_KEY", "WAHA_TUI_LEASE_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    yield


def test_show_and_recipients_carry_what_whatsapp_said_after_the_sends(cli: Cli) -> None:
    """Acks and a reply, as the listener writes them (delivery.apply), in the JSON of
    `campaign show`, `campaign list` and `campaign recipients`, and in show's lines."""
    from waha_tui import delivery
    from waha_tui.waha.envelope import Ack, AckEvent, MessageEvent

    two = write(cli.db.parent / "two.csv", f"phone,name\n{phone(1)},Ana\n{phone(2)},Bo\n")
    cid = cli.create("--name", "acks", "--message", "Hi", "--contacts", two, "--delay", "0-0")
    cli.ok("run", "--until-idle", "--no-events")
    store = Store(cli.db)
    first, second = store.recipients(cid)
    now = utcnow()
    delivery.apply(
        store,
        [
            AckEvent("default", first.wa_id or "", Ack.READ, first.chat_id, now),
            AckEvent("default", second.wa_id or "", Ack.DEVICE, second.chat_id, now),
            MessageEvent("default", "reply-1", first.chat_id, "Thanks", now),
        ],
    )
    store.close()
    shown = cli.json("campaign", "show", str(cid))
    assert {k: shown[k] for k in ("sent", "delivered", "read", "replied", "unconfirmed")} == {
        "sent": 2,
        "delivered": 2,
        "read": 1,
        "replied": 1,
        "unconfirmed": 0,
    }
    (listed,) = [c for c in cli.json("campaign", "list") if c["id"] == cid]
    assert (listed["delivered"], listed["read"], listed["replied"]) == (2, 1, 1)
    r1, r2 = cli.json("campaign", "recipients", str(cid))
    assert (r1["ack"], r1["ack_name"], r1["reply_text"]) == (3, "READ", "Thanks")
    assert r1["read_at"] is not None and r1["replied_at"] is not None
    assert (r2["ack_name"], r2["read_at"], r2["replied_at"]) == ("DEVICE", None, None)
    assert r2["delivered_at"] is not None
    lines = cli.ok("campaign", "show", str(cid)).stdout
    assert "delivered     2" in lines and "replied       1" in lines


def test_a_campaign_over_two_numbers_from_the_cli(cli: Cli, csv5: str, state: SimState) -> None:
    state.add_session("second", "WORKING")
    cid = cli.create(
        "--name", "two", "--contacts", csv5, "--message", "hi", "--delay", "0-0",
        "--session", "default:2,second",
    )  # fmt: skip
    assert "on sessions default:2,second" in cli.outputs[-1]
    shown = cli.ok("campaign", "show", str(cid)).stdout
    assert "default:2,second: recipients default (3), second (2)" in shown
    assert cli.json("campaign", "show", str(cid))["sessions"] == [["default", 2], ["second", 1]]
    cli.ok("run", "--until-idle")
    data = cli.json("campaign", "show", str(cid))
    assert (data["status"], data["sent"]) == ("Completed", 5)
    by = [r["session"] for r in cli.json("campaign", "recipients", str(cid))]
    assert by == ["default", "second", "default", "default", "second"]
    assert sorted(m.session for m in state.sent()) == sorted(by)
    # Refused before anything is written, naming the option and the part.
    line = cli.error(
        "campaign", "create", "--name", "bad", "--contacts", csv5, "--message", "hi",
        "--session", "default:0",
    )  # fmt: skip
    assert line == (
        "error: --session: the weight in 'default:0' must be a whole number from 1 to 100"
    )


def test_edit_the_long_breaks(cli: Cli, csv5: str) -> None:
    cid = cli.create("--name", "b", "--contacts", csv5, "--message", "Hi", "--at", "2030-01-02")
    done = cli.ok("campaign", "edit", str(cid), "--break-every", "50", "--break", "60-120")
    assert done.stdout == f"campaign {cid}: long breaks none → every 50, 60-120 s\n"
    shown = cli.json("campaign", "show", str(cid))
    assert (shown["break_every"], shown["break"]) == (50, [60.0, 120.0])
    # One of the two: the other is kept.
    done = cli.ok("campaign", "edit", str(cid), "--break", "300-600")
    assert done.stdout == (
        f"campaign {cid}: long breaks every 50, 60-120 s → every 50, 300-600 s\n"
    )
    assert cli.json("campaign", "events", str(cid))[-1]["detail"] == (
        "long breaks every 50, 60-120 s → every 50, 300-600 s"
    )
    done = cli.ok("campaign", "edit", str(cid), "--break-every", "0")
    assert done.stdout == f"campaign {cid}: long breaks every 50, 300-600 s → none\n"
    # As at creation: a length needs a count.
    assert cli.error("campaign", "edit", str(cid), "--break", "60-90") == (
        "error: --break needs --break-every N"
    )
    assert cli.json("campaign", "show", str(cid))["break_every"] == 0
