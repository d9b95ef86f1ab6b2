"""The layers go one way: tui -> service -> runner/store/waha. Enforced on the source."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "waha_tui"


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules() -> list[Path]:
    found = sorted(PACKAGE.rglob("*.py"))
    assert len(found) > 20, "the package was not found where the test expects it"
    return found


def test_nothing_outside_the_tui_package_imports_textual() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in modules()
        if "tui" not in path.relative_to(PACKAGE).parts[:1]
        and any(name == "textual" or name.startswith("textual.") for name in imports_of(path))
    ]
    assert offenders == []


def test_core_layers_never_import_the_layers_above_them() -> None:
    core = [
        "store.py",
        "models.py",
        "status.py",
        "pacing.py",
        "events.py",
        "render.py",
        "phones.py",
        "csv_import.py",
        "history.py",
        "printable.py",
        "stopping.py",
        "media.py",
        "logs.py",
        "secret.py",
        "optout.py",
        "delivery.py",
    ]
    core += [str(p.relative_to(PACKAGE)) for p in (PACKAGE / "waha").rglob("*.py")]
    core += [str(p.relative_to(PACKAGE)) for p in (PACKAGE / "runner").rglob("*.py")]
    assert "runner/policy.py" in core and "runner/run.py" in core
    above = (
        "waha_tui.tui",
        "waha_tui.service",
        "waha_tui.cli",
        "waha_tui.scheduler",
        "waha_tui.demo",
    )
    offenders = {
        name: sorted(i for i in imports_of(PACKAGE / name) if i.startswith(above)) for name in core
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_waha_client_knows_nothing_of_campaigns() -> None:
    for path in (PACKAGE / "waha").rglob("*.py"):
        bad = [
            i
            for i in imports_of(path)
            if i.startswith("waha_tui.")
            and not i.startswith(
                ("waha_tui.waha", "waha_tui.errors", "waha_tui.secret", "waha_tui.printable")
            )
        ]
        assert bad == [], f"{path.name} imports {bad}"


def test_the_runner_package_goes_one_way_inside() -> None:
    """policy (the error table) and config know nothing of the loop; the loop's parts
    (ids, writer) know nothing of the run or the pool; only the pool knows the run."""
    runner = PACKAGE / "runner"
    allowed = {
        "policy.py": set(),
        "config.py": {"policy"},
        "ids.py": set(),
        "writer.py": set(),
        "leases.py": {"config"},
        "lanes.py": set(),  # the board a campaign's sessions' runs share
        "run.py": {"policy", "config", "ids", "writer", "leases", "lanes"},
        "pool.py": {"config", "ids", "leases", "run"},  # ids: fetched for a run before its claim
        "__init__.py": {"config", "pool", "run"},
    }
    assert {p.name for p in runner.glob("*.py")} == set(allowed)
    for name, ok in allowed.items():
        used = {
            i.removeprefix("waha_tui.runner.")
            for i in imports_of(runner / name)
            if i.startswith("waha_tui.runner.")
        }
        assert used <= ok, f"runner/{name} imports {sorted(used - ok)}"
    # The store and the WAHA client are below the runner: they never import it.
    for below in [PACKAGE / "store.py", *(PACKAGE / "waha").rglob("*.py")]:
        assert not any(i.startswith("waha_tui.runner") for i in imports_of(below)), below


ENGINE_ATTRIBUTES = frozenset({"store", "pool", "client"})
ENGINE_MODULES = ("waha_tui.store", "waha_tui.runner", "waha_tui.waha.client")


def engine_reaches(source: str) -> list[str]:
    """Where a module reaches past the service: an attribute named store, pool or client
    (on the service or anything else: the screens hold nothing else that has one), or an
    import of the store, the runner or the WAHA client."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in ENGINE_ATTRIBUTES:
            found.append(f"line {node.lineno}: .{node.attr}")
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if any(name == m or name.startswith(m + ".") for m in ENGINE_MODULES):
                found.append(f"line {node.lineno}: import {name}")
    return found


def test_the_check_for_reaching_past_the_service_finds_each_way() -> None:
    assert engine_reaches("x = self.service.store.get_campaign(1)") == ["line 1: .store"]
    assert engine_reaches("self.wapp.service.pool.runs") == ["line 1: .pool"]
    assert engine_reaches("s = SessionService(service.client)") == ["line 1: .client"]
    assert engine_reaches("from waha_tui.store import NewRecipient") != []
    assert engine_reaches("import waha_tui.runner.pool") != []
    assert engine_reaches("from waha_tui.waha import client") != []
    assert engine_reaches("from waha_tui.service import CampaignService, NewRecipient") == []
    assert engine_reaches('await self.service.campaign_page("id", True, "")') == []


def test_screens_reach_the_engine_only_through_the_service() -> None:
    tui = sorted((PACKAGE / "tui").rglob("*.py"))
    assert len(tui) > 10, "the tui package was not found where the test expects it"
    offenders = {
        str(path.relative_to(PACKAGE)): found
        for path in tui
        if (found := engine_reaches(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}
