"""mypy passes on the package, with the settings in pyproject.toml ([tool.mypy], strict)."""

from __future__ import annotations

import re
from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "pyproject.toml"
# mypy's own cache (it keeps a .gitignore in it): a second run checks only what changed.
CACHE = ROOT / ".mypy_cache"


def run_mypy(*paths: Path) -> tuple[str, int]:
    stdout, stderr, status = api.run(
        [
            "--config-file",
            str(CONFIG),
            "--cache-dir",
            str(CACHE),
            "--no-color-output",
            *(str(p) for p in paths),
        ]
    )
    return stdout + stderr, status


def test_mypy_reports_no_errors_on_the_package() -> None:
    output, status = run_mypy(ROOT / "waha_tui")
    checked = re.search(r"no issues found in (\d+) source files", output)
    assert status == 0 and checked, f"mypy found type errors:\n{output}"
    # Every module was checked, not an empty selection.
    assert int(checked.group(1)) == len(list((ROOT / "waha_tui").rglob("*.py")))


def test_mypy_with_these_settings_reports_a_wrong_call_into_the_package(tmp_path: Path) -> None:
    """The check can fail: the package's own types reach a caller (no `Any` in between)."""
    caller = tmp_path / "caller.py"
    caller.write_text(
        "from waha_tui.cli import fail\n"
        "from waha_tui.service import CampaignService\n"
        "\n"
        "async def show(service: CampaignService) -> None:\n"
        '    await service.campaign("7")\n'
        "\n"
        "def name(given: str | None) -> str:\n"
        "    if given is None:\n"
        '        fail("no name")\n'
        "    return given\n",
        encoding="utf-8",
    )
    output, status = run_mypy(caller)
    errors = [line for line in output.splitlines() if ": error:" in line]
    assert status == 1, output
    # Exactly the wrong argument: `fail` is NoReturn, so `name` narrows to str.
    assert len(errors) == 1, output
    assert 'Argument 1 to "campaign" of "CampaignService"' in errors[0]
    assert '"str"; expected "int"' in errors[0]
