"""The WhatsApp sessions screen (w): the real app, the simulator, a real SQLite file."""

from __future__ import annotations

import itertools
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import segno
from rich.text import Text
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widgets import Input, Static

import waha_tui.simulator.app as sim_app
from tests.test_qr import modules_of, waha_like
from tests.tui_helpers import SIZE_IDS, SIZES, Rig, make_rig, wait_for
from waha_tui.runner import RunnerPool
from waha_tui.service import CampaignService
from waha_tui.sessions import SessionNameError, check_session_name, connected_number
from waha_tui.simulator import SimState, Simulator, SimulatorServer
from waha_tui.store import Store
from waha_tui.tui.app import WahaTuiApp, create_app
from waha_tui.tui.screens.confirm import ConfirmationModal
from waha_tui.tui.screens.main import MainScreen
from waha_tui.tui.screens.sessions import NewSessionModal, PairingModal, SessionsScreen
from waha_tui.tui.widgets.keyed_table import KeyedTable
from waha_tui.waha import SessionInfo, WahaClient

FAST = 0.1  # the screen's refresh and QR intervals in these tests


@pytest.fixture(autouse=True)
def fast_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SessionsScreen, "REFRESH_INTERVAL", FAST)
    monkeypatch.setattr(SessionsScreen, "QR_INTERVAL", FAST)


@pytest.fixture
async def rigs(tmp_path: Path) -> AsyncIterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(**sessions: str) -> Rig:
        folder = tmp_path / f"rig{len(made)}"
        folder.mkdir()
        rig = make_rig(folder, sessions=sessions or {"default": "WORKING"})
        made.append(rig)
        return rig

    yield make
    for rig in made:
        await rig.service.aclose()


def screen(pilot: Pilot) -> SessionsScreen:
    found = pilot.app.screen
    assert isinstance(found, SessionsScreen), type(found).__name__
    return found


def sessions_screen(pilot: Pilot) -> SessionsScreen:
    """The sessions screen even while a modal is on top of it."""
    return next(s for s in pilot.app.screen_stack if isinstance(s, SessionsScreen))


def table(pilot: Pilot) -> KeyedTable:
    return sessions_screen(pilot).query_one("#sessions", KeyedTable)


def cell(pilot: Pilot, name: str, column: str) -> str:
    return str(table(pilot).get_cell(name, column))


async def open_sessions(pilot: Pilot) -> SessionsScreen:
    await pilot.press("w")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SessionsScreen))
    await wait_for(pilot, lambda: screen(pilot).loaded or screen(pilot).error)
    return screen(pilot)


async def select(pilot: Pilot, name: str) -> None:
    t = table(pilot)
    await wait_for(pilot, lambda: name in [k.value for k in t.rows])
    t.move_cursor(row=t.get_row_index(name))
    await pilot.pause(0.05)


def footer_keys(pilot: Pilot) -> set[str]:
    return {
        b.key
        for _key, (_node, b, enabled, _tooltip) in pilot.app.screen.active_bindings.items()
        if b.show and enabled
    }


def toasts(pilot: Pilot) -> list[str]:
    return [n.message for n in pilot.app._notifications]


def toast_with(pilot: Pilot, needle: str) -> Callable[[], bool]:
    return lambda: any(needle in m for m in toasts(pilot))


def field_error(pilot: Pilot) -> str:
    return str(pilot.app.screen.query_one(".form-error", Static).render())


def sim_qr(rig: Rig, name: str) -> str:
    with rig.sim.state.lock:
        return rig.sim.state.sessions[name].qr_value


def segno_modules(value: str, border: int = 4) -> list[list[bool]]:
    code = segno.make_qr(value, error="L")
    return [[bool(m) for m in row] for row in code.matrix_iter(border=border)]


def shown_modules(pilot: Pilot) -> list[list[bool]] | None:
    """The QR code as drawn on the screen, read back into modules."""
    s = sessions_screen(pilot)
    if s.qr_shown is None:
        return None
    qr = s.query_one("#qr", Static)
    width, height = qr.size
    if (width, height) != (len(s.qr_shown[0]), len(s.qr_shown)):
        return None  # drawn but not laid out yet
    # What the widget paints: the same half blocks, black on white, nothing cropped.
    strips = qr.render_lines(Region(0, 0, width, height))
    painted = [strip.text for strip in strips]
    assert painted == s.qr_shown
    for strip in strips:
        for segment in strip:
            assert segment.style is not None and segment.style.bgcolor is not None
            assert segment.style.bgcolor.get_truecolor() == (255, 255, 255)
            assert segment.style.color is not None
            assert segment.style.color.get_truecolor() == (0, 0, 0)
    assert qr.region.right <= s.size.width and qr.region.bottom <= s.size.height - 1
    return modules_of(painted)


def shows_qr_for(pilot: Pilot, value: str) -> bool:
    rows = shown_modules(pilot)
    expected = segno_modules(value)
    return rows is not None and rows[: len(expected)] == expected


# -- the list ----------------------------------------------------------------------------


async def test_w_lists_sessions_with_status_and_number_and_esc_goes_back(rigs) -> None:
    rig = rigs(default="WORKING", sales="STOPPED", support="SCAN_QR_CODE")
    async with rig.app().run_test(size=(100, 30)) as pilot:
        s = await open_sessions(pilot)
        assert [k.value for k in table(pilot).rows] == ["default", "sales", "support"]
        assert cell(pilot, "default", "status") == "● WORKING"
        assert cell(pilot, "default", "number") == "+15550000000"
        assert cell(pilot, "default", "push_name") == "WAHA simulator"
        assert cell(pilot, "sales", "status") == "○ STOPPED"
        assert cell(pilot, "sales", "number") == "-"
        assert cell(pilot, "support", "status") == "▣ SCAN_QR_CODE"
        info = str(s.query_one("#session-info", Static).render())
        assert "'default' is connected as +15550000000 (WAHA simulator)" in info
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MainScreen))


async def test_the_list_follows_waha_live_without_a_key(rigs) -> None:
    rig = rigs(default="WORKING", sales="STOPPED")
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_sessions(pilot)
        await select(pilot, "sales")
        rig.sim.state.set_status("sales", "WORKING")
        rig.sim.state.add_session("later", "STOPPED")
        await wait_for(pilot, lambda: cell(pilot, "sales", "status") == "● WORKING")
        await wait_for(pilot, lambda: "later" in [k.value for k in table(pilot).rows])
        assert table(pilot).current_key == "sales"  # the cursor stayed on its session


@pytest.mark.parametrize(
    ("status", "offered"),
    [
        ("STOPPED", {"s", "l"}),
        ("FAILED", {"s", "x", "R", "l"}),
        ("STARTING", {"x", "R"}),
        ("SCAN_QR_CODE", {"x", "R", "P"}),
        ("WORKING", {"x", "R", "l"}),
    ],
)
async def test_the_footer_offers_only_the_keys_that_apply(rigs, status: str, offered) -> None:
    rig = rigs(default="WORKING", subject="STOPPED")
    rig.sim.state.set_status("subject", status)  # STARTING this way stays STARTING
    async with rig.app().run_test(size=(120, 30)) as pilot:
        await open_sessions(pilot)
        await select(pilot, "subject")
        await wait_for(pilot, lambda: footer_keys(pilot) == offered | {"n", "escape"})
        before = rig.sim.state.get("subject")
        assert before is not None
        before_status = before.status
        for key in {"s", "x", "R", "l", "P"} - offered:
            await pilot.press(key)
            await pilot.pause(0.1)
            assert isinstance(pilot.app.screen, SessionsScreen), key
        assert rig.sim.state.sessions["subject"].status == before_status
        assert toasts(pilot) == []


# -- start, stop, restart, log out -------------------------------------------------------


async def test_s_starts_a_stopped_session_which_then_shows_its_qr_code(rigs) -> None:
    rig = rigs(default="WORKING", sales="STOPPED")
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_sessions(pilot)
        await select(pilot, "sales")
        await pilot.press("s")
        await wait_for(pilot, toast_with(pilot, "session 'sales' is starting"))
        await wait_for(pilot, lambda: cell(pilot, "sales", "status") == "▣ SCAN_QR_CODE")
        await wait_for(pilot, lambda: shows_qr_for(pilot, sim_qr(rig, "sales")))
        assert "P" in footer_keys(pilot)


async def test_x_stops_a_session(rigs) -> None:
    rig = rigs(default="WORKING")
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_sessions(pilot)
        await select(pilot, "default")
        await pilot.press("x")
        await wait_for(pilot, lambda: cell(pilot, "default", "status") == "○ STOPPED")
        assert rig.sim.state.sessions["default"].status == "STOPPED"
        assert rig.sim.state.sessions["default"].authenticated  # stopped, not logged out
        await wait_for(pilot, toast_with(pilot, "session 'default' stopped"))
        await wait_for(pilot, lambda: footer_keys(pilot) == {"s", "l", "n", "escape"})


async def test_shift_r_restarts_a_working_session(rigs) -> None:
    rig = rigs(default="WORKING")
    rig.sim.state.start_delay = 1.5  # time to see it pass through STARTING on a busy machine
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_sessions(pilot)
        await select(pilot, "default")
        await pilot.press("R")
        await wait_for(pilot, lambda: cell(pilot, "default", "status") == "◌ STARTING")
        await wait_for(pilot, toast_with(pilot, "session 'default' is restarting"))
        await wait_for(pilot, lambda: cell(pilot, "default", "status") == "● WORKING")


async def test_l_asks_first_then_logs_out(rigs) -> None:
    rig = rigs(default="WORKING")
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_sessions(pilot)
        await select(pilot, "default")
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        question = str(pilot.app.screen.query_one("#confirm-question", Static).render())
        assert "Log out session 'default' and unlink +15550000000?" in question
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, SessionsScreen))
        await pilot.pause(0.3)
        assert rig.sim.state.sessions["default"].authenticated
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmationModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: not rig.sim.state.sessions["default"].authenticated)
        await wait_for(pilot, lambda: cell(pilot, "default", "number") == "-")
        await wait_for(pilot, toast_with(pilot, "session 'default' logged out"))


# -- creating a session ------------------------------------------------------------------


async def test_n_creates_a_session_and_moves_to_it(rigs) -> None:
    rig = rigs(default="WORKING")
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_sessions(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, NewSessionModal))
        await pilot.press(*"shop-2_b", "enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, SessionsScreen))
        await wait_for(pilot, toast_with(pilot, "session 'shop-2_b' created and starting"))
        await wait_for(pilot, lambda: table(pilot).current_key == "shop-2_b")
        assert "shop-2_b" in rig.sim.state.sessions
        await wait_for(pilot, lambda: rig.sim.state.get("shop-2_b").status == "SCAN_QR_CODE")
        await wait_for(pilot, lambda: shows_qr_for(pilot, sim_qr(rig, "shop-2_b")))


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("", "the session name is empty"),
        ("   ", "the session name is empty"),
        ("my shop", "may only have letters, digits, - and _ (not spaces)"),
        ("shop/1", "may only have letters, digits, - and _ (not '/')"),
        ("café", "may only have letters, digits, - and _ (not 'é')"),
        ("[red]x", "may only have letters, digits, - and _ (not '[')"),
        ("x" * 55, "longer than 54 characters"),
        ("default", "a session named 'default' already exists"),
    ],
)
async def test_n_refuses_a_bad_name_on_the_field(rigs, typed: str, error: str) -> None:
    rig = rigs(default="WORKING")
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_sessions(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, NewSessionModal))
        field = pilot.app.screen.query_one(Input)
        field.value = typed
        await pilot.press("enter")
        await wait_for(pilot, lambda: error in field_error(pilot))
        assert isinstance(pilot.app.screen, NewSessionModal)
        assert field.has_class("-invalid")
        await pilot.press("z")  # editing clears the error
        await wait_for(pilot, lambda: not field.has_class("-invalid"))
        assert field_error(pilot) == ""
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, SessionsScreen))
        await pilot.pause(0.2)
    assert set(rig.sim.state.sessions) == {"default"}
    assert toasts(pilot) == []


def test_session_names_are_checked_in_the_service_layer() -> None:
    assert check_session_name("  sales-2_b ") == "sales-2_b"
    for bad in ("", "a b", "ü", "x" * 55, "../etc"):
        with pytest.raises(SessionNameError):
            check_session_name(bad)
    with pytest.raises(SessionNameError, match="already exists"):
        check_session_name("taken", {"taken"})


def test_connected_number_reads_wahas_me_id() -> None:
    assert connected_number(SessionInfo("a", "WORKING", me_id="15550000000@c.us")) == "+15550000000"
    assert connected_number(SessionInfo("a", "WORKING", me_id="4915:12@s.whatsapp.net")) == "+4915"
    assert connected_number(SessionInfo("a", "STOPPED")) is None


# -- the QR code -------------------------------------------------------------------------


async def test_the_qr_code_is_drawn_then_goes_when_the_phone_has_scanned_it(
    tmp_path: Path,
) -> None:
    # A real socket this time, and the simulator's HTTP control route for the scan.
    state = SimState(sessions={"default": "WORKING", "phone": "SCAN_QR_CODE"}, start_delay=0.05)
    with SimulatorServer(Simulator(state)) as server:
        async with _app_for(server.url, tmp_path) as app, app.run_test(size=(100, 40)) as pilot:
            s = await open_sessions(pilot)
            await select(pilot, "phone")
            await wait_for(pilot, lambda: shows_qr_for(pilot, state.sessions["phone"].qr_value))
            info = str(s.query_one("#session-info", Static).render())
            assert "scan the QR code" in info and "Press P for a pairing code" in info
            async with httpx.AsyncClient(base_url=server.url) as control:
                (await control.post("/_sim/sessions/phone/scan")).raise_for_status()
            await wait_for(pilot, toast_with(pilot, "session 'phone' is connected as +15550000000"))
            await wait_for(pilot, lambda: s.qr_shown is None)
            assert not s.query_one("#qr-panel").display
            assert cell(pilot, "phone", "status") == "● WORKING"


@asynccontextmanager
async def _app_for(url: str, tmp: Path) -> AsyncIterator[WahaTuiApp]:
    """The real app against a WAHA URL (a real socket), with its own SQLite file."""
    client = WahaClient(url)
    store = Store(tmp / "campaigns.db")
    service = CampaignService(store, client, RunnerPool(store, client))
    try:
        yield create_app(service, run_scheduler=False)
    finally:
        await service.aclose()


async def test_a_new_qr_value_from_waha_is_redrawn_and_the_same_one_is_not(
    rigs, monkeypatch: pytest.MonkeyPatch
) -> None:
    import waha_tui.tui.screens.sessions as screen_module

    drawn: list[str] = []
    real_qr_text = screen_module.qr_text

    def counting(lines: list[str]) -> Text:
        drawn.append("\n".join(lines))
        return real_qr_text(lines)

    monkeypatch.setattr(screen_module, "qr_text", counting)
    rig = rigs(default="WORKING", phone="SCAN_QR_CODE")
    async with rig.app().run_test(size=(100, 40)) as pilot:
        await open_sessions(pilot)
        await select(pilot, "phone")
        first = sim_qr(rig, "phone")
        await wait_for(pilot, lambda: shows_qr_for(pilot, first))
        await pilot.pause(FAST * 6)  # several polls of the same value
        assert len(drawn) == 1
        with rig.sim.state.lock:
            rig.sim.state.sessions["phone"].new_qr()
        second = sim_qr(rig, "phone")
        assert second != first
        await wait_for(pilot, lambda: shows_qr_for(pilot, second))
        assert len(drawn) == 2


async def test_moving_off_a_qr_session_hides_its_code(rigs) -> None:
    rig = rigs(default="WORKING", phone="SCAN_QR_CODE")
    async with rig.app().run_test(size=(100, 40)) as pilot:
        s = await open_sessions(pilot)
        await select(pilot, "phone")
        await wait_for(pilot, lambda: s.qr_shown is not None)
        await select(pilot, "default")
        assert s.qr_shown is None
        assert not s.query_one("#qr-panel").display


async def test_a_code_too_big_for_the_terminal_says_so_instead_of_a_cropped_one(rigs) -> None:
    rig = rigs(default="WORKING", phone="SCAN_QR_CODE")
    with rig.sim.state.lock:
        rig.sim.state.sessions["phone"].qr_value = waha_like("big")  # a real WAHA-sized value
    async with rig.app().run_test(size=(80, 24)) as pilot:
        s = await open_sessions(pilot)
        await select(pilot, "phone")
        info = s.query_one("#session-info", Static)
        await wait_for(pilot, lambda: "too small for the QR code" in str(info.render()))
        assert s.qr_shown is None
        assert "P" in footer_keys(pilot)
        await pilot.resize_terminal(100, 40)
        await wait_for(pilot, lambda: shows_qr_for(pilot, waha_like("big")))


# -- the pairing code --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("", "phone number is empty"),
        ("call me", "contains 'c'"),
        ("+49 151", "has 5 digits; a phone number needs 7 to 15"),
        ("1234567890123456", "has 16 digits"),
        ("0151 2345678", "is a national number"),
    ],
)
async def test_p_refuses_a_bad_phone_on_the_field(rigs, typed: str, error: str) -> None:
    rig = rigs(default="WORKING", phone="SCAN_QR_CODE")
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_sessions(pilot)
        await select(pilot, "phone")
        await pilot.press("P")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, PairingModal))
        field = pilot.app.screen.query_one(Input)
        field.value = typed
        await pilot.press("enter")
        await wait_for(pilot, lambda: error in field_error(pilot))
        assert field.has_class("-invalid")
        assert pilot.app.screen.code is None  # type: ignore[attr-defined]
        assert rig.sim.state.sessions["phone"].pairing_code is None  # WAHA was not asked
        assert toasts(pilot) == []


async def test_p_shows_the_pairing_code_and_closes_once_the_phone_is_linked(rigs) -> None:
    rig = rigs(default="WORKING", phone="SCAN_QR_CODE")
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_sessions(pilot)
        await select(pilot, "phone")
        await pilot.press("P")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, PairingModal))
        await pilot.press(*"+49 (151) 234-5678", "enter")
        modal = pilot.app.screen
        assert isinstance(modal, PairingModal)
        await wait_for(pilot, lambda: modal.code is not None)
        code = rig.sim.state.sessions["phone"].pairing_code
        assert code and modal.code == code
        shown = str(modal.query_one("#pair-code", Static).render())
        assert shown == " ".join(code)
        steps = str(modal.query_one("#pair-steps", Static).render())
        assert "+491512345678" in steps and "Link with phone number" in steps
        rig.sim.state.scan("phone")  # what typing the code on the phone does
        await wait_for(pilot, toast_with(pilot, "session 'phone' is connected as +15550000000"))
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, SessionsScreen))


async def test_a_pairing_code_refused_by_waha_is_a_toast_and_the_form_stays(rigs) -> None:
    rig = rigs(default="WORKING", phone="SCAN_QR_CODE")
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_sessions(pilot)
        await select(pilot, "phone")
        await pilot.press("P")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, PairingModal))
        rig.sim.state.stop("phone")  # gone from SCAN_QR_CODE behind the form's back
        await pilot.press(*"+491512345678", "enter")
        await wait_for(pilot, toast_with(pilot, "no pairing code for 'phone'"))
        message = next(m for m in toasts(pilot) if "no pairing code" in m)
        assert "not started" in message and "\n" not in message  # WAHA's 404 for a stopped one
        assert isinstance(pilot.app.screen, PairingModal)


# -- errors from WAHA --------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_waha_unreachable_is_one_toast_not_a_crash(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    async with _app_for(url, tmp_path) as app, app.run_test(size=(100, 30)) as pilot:
        s = await open_sessions(pilot)
        await wait_for(pilot, toast_with(pilot, "is unreachable"))
        assert "is unreachable" in str(s.query_one("#sessions-title", Static).render())
        await pilot.pause(FAST * 8)  # many failed refreshes
        assert sum("is unreachable" in m for m in toasts(pilot)) == 1
        assert footer_keys(pilot) == {"n", "escape"}
        await pilot.press("n", *"later", "enter")
        await wait_for(pilot, toast_with(pilot, "cannot create session 'later'"))
        assert isinstance(pilot.app.screen, SessionsScreen)
        assert pilot.app.is_running


async def test_a_refused_api_key_is_a_toast(rigs) -> None:
    rig = rigs(default="WORKING")
    rig.sim.state.require_api_key("the-right-key")
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_sessions(pilot)
        await wait_for(pilot, toast_with(pilot, "WAHA refused the API key (HTTP 401"))


async def test_an_action_on_a_session_gone_from_waha_is_a_toast(
    rigs, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No refresh between the deletion and the key: the row must still be there to press x on.
    monkeypatch.setattr(SessionsScreen, "REFRESH_INTERVAL", 3600)
    rig = rigs(default="WORKING", sales="WORKING")
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_sessions(pilot)
        await select(pilot, "sales")
        with rig.sim.state.lock:
            del rig.sim.state.sessions["sales"]  # deleted by someone else
        await pilot.press("x")
        await wait_for(pilot, toast_with(pilot, "cannot stop session 'sales'"))
        assert any("WAHA has no session named 'sales'" in m for m in toasts(pilot))
        await wait_for(pilot, lambda: "sales" not in [k.value for k in table(pilot).rows])


async def test_text_from_waha_is_never_read_as_markup(rigs) -> None:
    rig = rigs(default="WORKING")
    rig.sim.state.add_session("x[red]y", "STOPPED")
    with rig.sim.state.lock:
        rig.sim.state.sessions["default"].push_name = "[bold]Shop[/bold]"
    async with rig.app().run_test(size=(100, 30)) as pilot:
        await open_sessions(pilot)
        assert cell(pilot, "x[red]y", "name") == "x[red]y"
        assert cell(pilot, "default", "push_name") == "[bold]Shop[/bold]"
        await select(pilot, "x[red]y")
        await pilot.press("s")
        await wait_for(pilot, toast_with(pilot, "session 'x[red]y' is starting"))
        assert all(n.markup is False for n in pilot.app._notifications)


# -- snapshots ---------------------------------------------------------------------------

# The QR value of a real WAHA login, fixed so the picture never changes.
FIXED_QR = waha_like("snapshot")


def frozen_rig(tmp_path: Path, **sessions: str) -> Rig:
    rig = make_rig(tmp_path, sessions=sessions)
    with rig.sim.state.lock:
        for sess in rig.sim.state.sessions.values():
            sess.qr_value = FIXED_QR if sess.status == "SCAN_QR_CODE" else ""
    return rig


@pytest.fixture
def no_polling(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Nothing left to change under the camera once the first list is in.
    monkeypatch.setattr(SessionsScreen, "REFRESH_INTERVAL", 3600)
    monkeypatch.setattr(SessionsScreen, "QR_INTERVAL", 3600)
    yield


def snap_app(rig: Rig) -> WahaTuiApp:
    return rig.app(session_interval=3600)


async def shown(pilot: Pilot, name: str, *, qr: bool = False) -> None:
    await open_sessions(pilot)
    await select(pilot, name)
    if qr:
        await wait_for(pilot, lambda: sessions_screen(pilot).qr_shown is not None)
    await pilot.pause(0.3)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_snapshot_of_the_sessions_screen(
    size: tuple[int, int], snap_compare, tmp_path: Path, no_polling
) -> None:
    rig = frozen_rig(tmp_path, default="WORKING", sales="STOPPED", support="FAILED")
    assert snap_compare(snap_app(rig), terminal_size=size, run_before=lambda p: shown(p, "default"))


def test_snapshot_of_the_qr_code(snap_compare, tmp_path: Path, no_polling) -> None:
    rig = frozen_rig(tmp_path, default="WORKING", phone="SCAN_QR_CODE")
    assert snap_compare(
        snap_app(rig), terminal_size=(100, 40), run_before=lambda p: shown(p, "phone", qr=True)
    )


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_snapshot_of_a_refused_name(
    size: tuple[int, int], snap_compare, tmp_path: Path, no_polling
) -> None:
    rig = frozen_rig(tmp_path, default="WORKING")

    async def refuse(pilot: Pilot) -> None:
        await shown(pilot, "default")
        await pilot.press("n", *"my shop", "enter")
        await wait_for(pilot, lambda: "not spaces" in field_error(pilot))
        await pilot.pause(0.2)

    assert snap_compare(snap_app(rig), terminal_size=size, run_before=refuse)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_snapshot_of_a_pairing_code(
    size: tuple[int, int], snap_compare, tmp_path: Path, no_polling, monkeypatch: pytest.MonkeyPatch
) -> None:
    letters = itertools.cycle("K7QW4ZP2")

    class FixedSecrets:
        """The simulator's randomness, with the pairing code's letters fixed."""

        def __getattr__(self, name: str) -> Any:
            return getattr(secrets, name)

        @staticmethod
        def choice(seq: str) -> str:
            return next(letters)

    monkeypatch.setattr(sim_app, "secrets", FixedSecrets())
    rig = frozen_rig(tmp_path, default="WORKING", phone="SCAN_QR_CODE")

    async def pair(pilot: Pilot) -> None:
        await shown(pilot, "phone")  # at 80x24 a WAHA-sized code does not fit: P is the way
        await wait_for(pilot, lambda: "P" in footer_keys(pilot))
        await pilot.press("P", *"+49 151 2345678", "enter")
        await wait_for(pilot, lambda: getattr(pilot.app.screen, "code", None) == "K7QW-4ZP2")
        await pilot.pause(0.2)

    assert snap_compare(snap_app(rig), terminal_size=size, run_before=pair)
