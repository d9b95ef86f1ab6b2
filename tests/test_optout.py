"""The opt-out list: the store, the service (with its checks), campaign creation leaving
opted-out numbers out, and `waha-tui optout ...` through typer's CliRunner."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from engine_helpers import module_simulator, phone, reset_simulator
from typer.testing import CliRunner

from waha_tui import cli
from waha_tui.errors import InvalidInput
from waha_tui.optout import DEFAULT_KEYWORDS
from waha_tui.service import CampaignDraft, CampaignService
from waha_tui.simulator import SimulatorServer
from waha_tui.store import NotFound, OptOutEntry, Store
from waha_tui.waha import WahaClient


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[SimulatorServer]:
    yield from module_simulator()


@pytest.fixture
def sim_server(shared_sim: SimulatorServer) -> SimulatorServer:
    return reset_simulator(shared_sim)


@pytest.fixture
async def service(store: Store, sim_server: SimulatorServer) -> AsyncIterator[CampaignService]:
    client = WahaClient(sim_server.url)
    yield CampaignService(store, client)
    await client.aclose()


def csv(tmp_path: Path, text: str, name: str = "people.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# -- store -------------------------------------------------------------------------------


def test_store_adds_each_number_once_and_pages_and_searches(store: Store) -> None:
    entries = [OptOutEntry(phone(i), "import", f"line {i}") for i in range(5)]
    assert store.add_optouts(entries) == [phone(i) for i in range(5)]
    again = [OptOutEntry(phone(1), "hand", "twice"), OptOutEntry("4930111222", "hand")]
    assert store.add_optouts(again) == ["4930111222"]
    assert store.count_optouts() == 6
    kept = {o.phone: o for o in store.optouts()}
    assert (kept[phone(1)].source, kept[phone(1)].reason) == ("import", "line 1")  # unchanged
    assert store.opted_out([phone(0), phone(4), "4912345678", phone(0)]) == {phone(0), phone(4)}
    assert store.opted_out([]) == set()
    assert {o.phone for o in store.optouts("0003")} == {phone(3)}
    assert store.count_optouts("+49 301") == 1  # only the digits of the search count
    first, second = store.optouts(limit=4), store.optouts(offset=4, limit=4)
    assert len(first) == 4 and len(second) == 2
    assert {o.phone for o in first} | {o.phone for o in second} == set(kept)
    assert store.remove_optout(phone(0)) is True
    assert store.remove_optout(phone(0)) is False
    assert store.opted_out([phone(0)]) == set()


def test_opted_out_looks_up_many_numbers(store: Store) -> None:
    numbers = [f"4915{i:08d}" for i in range(1200)]
    store.add_optouts([OptOutEntry(n, "import") for n in numbers[::3]])
    assert store.opted_out(numbers) == set(numbers[::3])


def test_keywords_are_stored_for_every_host(store: Store, db_target: str) -> None:
    assert store.optout_keywords() is None  # the defaults apply
    store.set_optout_keywords(["STOP", "Fertig"])
    other = Store(db_target)  # another process, another host
    try:
        assert other.optout_keywords() == ["STOP", "Fertig"]
    finally:
        other.close()
    store.set_optout_keywords(None)
    assert store.optout_keywords() is None


# -- service -------------------------------------------------------------------------------


async def test_service_normalises_numbers_and_names_bad_input(service: CampaignService) -> None:
    assert await service.optouts.add("+49 (1510) 0000-07", reason="asked") == (phone(7), True)
    assert await service.optouts.add("(01510) 000007", country="de") == (phone(7), False)
    with pytest.raises(InvalidInput) as bad:
        await service.optouts.add("call me")
    assert bad.value.fields == ["phone"]
    with pytest.raises(InvalidInput) as bad:
        await service.optouts.add("0151 1234567", country="XX")
    assert bad.value.fields == ["country"]  # and not the number's fault too
    with pytest.raises(NotFound, match="not on the opt-out list"):
        await service.optouts.remove("4930999999")
    with pytest.raises(InvalidInput) as bad:
        await service.optouts.page("abc")
    assert bad.value.fields == ["search"]


async def test_service_import_is_all_or_nothing_with_file_and_line(
    service: CampaignService, tmp_path: Path
) -> None:
    bad = csv(tmp_path, f"phone\n{phone(1)}\nnot a number\n", "bad.csv")
    with pytest.raises(InvalidInput, match=r"bad\.csv: invalid phone on line 3"):
        await service.optouts.import_file(bad)
    assert service.store.count_optouts() == 0
    service.store.add_optouts([OptOutEntry(phone(2), "hand")])
    good = csv(tmp_path, f"phone,reason\n{phone(1)},moved away\n{phone(2)},\n{phone(1)},\n")
    result = await service.optouts.import_file(good)
    assert (result.added, result.already, result.duplicates) == (1, 1, [(phone(1), [2, 4])])
    listed = {o.phone: o for o in service.store.optouts()}
    assert (listed[phone(1)].source, listed[phone(1)].reason) == ("import", "moved away")


async def test_service_keywords(service: CampaignService) -> None:
    words = await service.optouts.keywords()
    assert (words.words, words.default) == (list(DEFAULT_KEYWORDS), True)
    words = await service.optouts.set_keywords(" STOP , Baja, stop!,")
    assert (words.words, words.default) == (["STOP", "Baja"], False)
    with pytest.raises(InvalidInput) as bad:
        await service.optouts.set_keywords("STOP, ?!")
    assert bad.value.fields == ["keywords"]
    assert (await service.optouts.keywords()).words == ["STOP", "Baja"]  # unchanged
    assert (await service.optouts.reset_keywords()).default is True


async def test_creation_leaves_opted_out_numbers_out_with_dense_positions(
    service: CampaignService, tmp_path: Path
) -> None:
    rows = "\n".join(f"{phone(i)},P{i}" for i in range(6))
    file = csv(tmp_path, f"phone,name\n{rows}\n")
    service.store.add_optouts([OptOutEntry(phone(i), "hand") for i in (0, 3, 5)])
    draft = CampaignDraft(name="c", message="Hi {name}", contacts_file=file)
    plan = await service.plan_campaign(draft)
    assert plan.opted_out == 3
    created = await service.create(draft)
    assert (created.opted_out, created.left_out) == (3, "3 opted-out numbers left out")
    recipients = service.store.recipients(created.campaign_id)
    assert [(r.position, r.phone) for r in recipients] == [
        (0, phone(1)),
        (1, phone(2)),
        (2, phone(4)),
    ]
    assert service.store.get_campaign(created.campaign_id).total == 3
    # From a contact list too; and a list of only opted-out numbers is refused.
    await service.import_contacts(file, "all")
    listed = await service.create(CampaignDraft(name="l", message="Hi", list_name="all"))
    assert listed.opted_out == 3
    service.store.add_optouts([OptOutEntry(phone(i), "hand") for i in (1, 2, 4)])
    with pytest.raises(InvalidInput, match="all 6 numbers are on the opt-out list") as bad:
        await service.create(CampaignDraft(name="none", message="Hi", list_name="all"))
    assert bad.value.fields == ["list_name"]


# -- CLI -------------------------------------------------------------------------------------


def invoke(db: str, sim: SimulatorServer, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.app, ["--db", db, "--waha-url", sim.url, *args])
    return result.exit_code, result.stdout, result.stderr


def test_cli_optout_add_list_remove(db_target: str, sim_server: SimulatorServer) -> None:
    code, out, err = invoke(db_target, sim_server, "optout", "add", "+49 1510 000001")
    assert (code, out) == (0, f"{phone(1)} added to the opt-out list\n"), err
    code, out, _ = invoke(db_target, sim_server, "optout", "add", "01510000001", "--country", "DE")
    assert (code, out) == (0, f"{phone(1)} was on the opt-out list already\n")
    code, out, _ = invoke(
        db_target, sim_server, "optout", "add", phone(2), "--reason", "evil\x1b]0;title\x07"
    )
    assert code == 0
    code, out, _ = invoke(db_target, sim_server, "optout", "list")
    assert code == 0
    lines = out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [phone(2), phone(1)]  # newest first
    assert "\x1b" not in out and "\\x1b]0;title" in out  # shown, never obeyed
    code, out, _ = invoke(db_target, sim_server, "optout", "list", "--search", "0002", "--json")
    data = json.loads(out)
    assert [(d["phone"], d["source"], d["reason"]) for d in data] == [
        (phone(2), "hand", "evil\x1b]0;title\x07")  # --json exact
    ]
    code, out, _ = invoke(db_target, sim_server, "optout", "remove", phone(2))
    assert (code, out) == (0, f"{phone(2)} removed from the opt-out list\n")
    code, _, err = invoke(db_target, sim_server, "optout", "remove", phone(2))
    assert code == 1 and err == f"error: {phone(2)} is not on the opt-out list\n"
    code, _, err = invoke(db_target, sim_server, "optout", "add", "nope")
    assert code == 1 and err.startswith("error: 'nope' contains 'n'") and err.count("\n") == 1


def test_cli_optout_import(db_target: str, sim_server: SimulatorServer, tmp_path: Path) -> None:
    good = csv(tmp_path, f"Phone;Name\n{phone(1)};A\n{phone(2)};B\n{phone(1)};A\n")
    code, out, err = invoke(db_target, sim_server, "optout", "import", good)
    assert (code, out) == (0, "added 2 numbers to the opt-out list\n")
    assert f"duplicate {phone(1)} on lines 2, 4: kept once" in err
    code, out, _ = invoke(db_target, sim_server, "optout", "import", good, "--json")
    assert json.loads(out) == {
        "added": 0,
        "already": 2,
        "duplicates": [{"phone": phone(1), "lines": [2, 4]}],
    }
    bad = csv(tmp_path, "phone\n0151 1234567\n", "national.csv")
    code, _, err = invoke(db_target, sim_server, "optout", "import", bad)
    assert code == 1 and "national.csv: invalid phone on line 2" in err
    code, _, _ = invoke(db_target, sim_server, "optout", "import", bad, "--country", "DE")
    assert code == 0


def test_cli_optout_keywords(db_target: str, sim_server: SimulatorServer) -> None:
    code, out, _ = invoke(db_target, sim_server, "optout", "keywords", "--json")
    assert json.loads(out) == {"keywords": list(DEFAULT_KEYWORDS), "default": True}
    code, out, _ = invoke(db_target, sim_server, "optout", "keywords", "--set", "STOP,BAJA")
    assert (code, out) == (0, "opt-out keywords (set for this database): STOP, BAJA\n")
    code, _, err = invoke(db_target, sim_server, "optout", "keywords", "--set", "X", "--reset")
    assert code == 2 and "--set or --reset" in err
    code, _, err = invoke(db_target, sim_server, "optout", "keywords", "--set", "STOP,!!")
    assert code == 1 and err.count("\n") == 1 and "'!!'" in err
    code, out, _ = invoke(db_target, sim_server, "optout", "keywords", "--reset", "--json")
    assert json.loads(out)["default"] is True


def test_cli_campaign_create_says_what_it_left_out(
    db_target: str, sim_server: SimulatorServer, tmp_path: Path
) -> None:
    file = csv(tmp_path, "phone\n" + "\n".join(phone(i) for i in range(5)) + "\n")
    invoke(db_target, sim_server, "optout", "add", phone(1))
    invoke(db_target, sim_server, "optout", "add", phone(3))
    base = ["campaign", "create", "--message", "Hi", "--contacts", file]
    code, out, err = invoke(db_target, sim_server, *base, "--name", "a")
    assert code == 0, err
    assert "3 recipients (2 opted-out numbers left out)" in err
    code, out, err = invoke(db_target, sim_server, *base, "--name", "b", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["total"], data["opted_out_left_out"]) == (3, 2)
