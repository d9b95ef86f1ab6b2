"""The dashboard App: owns the service, the runner workers and the scheduler loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any

from rich.text import Text
from textual.app import App, SystemCommand
from textual.css.query import NoMatches
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from waha_tui import events as ev
from waha_tui.config import Settings
from waha_tui.delivery import Applied
from waha_tui.errors import UserError
from waha_tui.listener import Listener
from waha_tui.logs import caught
from waha_tui.printable import printable
from waha_tui.scheduler import Scheduler
from waha_tui.service import CampaignService, ResumePrep
from waha_tui.status import (
    CampaignStatus,
    can_delete,
    can_edit,
    can_pause,
    can_resume,
    can_transition,
)
from waha_tui.stopping import Stopper
from waha_tui.tui.commands import DashboardCommands
from waha_tui.tui.format import feed_cell
from waha_tui.tui.screens.campaign_form import CampaignFormModal
from waha_tui.tui.screens.confirm import ConfirmationModal
from waha_tui.tui.screens.contacts import ContactListsScreen
from waha_tui.tui.screens.main import MainScreen
from waha_tui.tui.screens.new_campaign import NewCampaignScreen
from waha_tui.tui.screens.optouts import OptOutsScreen
from waha_tui.tui.screens.sessions import SessionsScreen
from waha_tui.tui.screens.templates import TemplatesScreen
from waha_tui.tui.terminal import GuardedDriver
from waha_tui.waha import FeedState, SessionInfo, Unauthorized, Unreachable, WahaError
from waha_tui.waha.errors import CHECK_API_KEY

log = logging.getLogger(__name__)
LINE_PADDING = 2  # the one-line widgets' padding, a cell on either side
S = CampaignStatus
RUNNER_GROUP = "runner"  # its own group: `exclusive` elsewhere must never cancel a runner
STOPPED_WITH_DASHBOARD = "stopped with the dashboard"
QUIT = "quit"  # the stop's reason when the operator quits
BANNER_EVERY = 1.0  # seconds between reads of a banner that follows what it describes
UI_AFTER_RESUME = 0.15  # seconds: footer and toast follow a resume's first send, not precede it
SESSION_LOOK = {
    "WORKING": "green",
    "SCAN_QR_CODE": "yellow",
    "STARTING": "cyan",
    "STOPPED": "red",
    "FAILED": "bold red",
}


class WahaTuiApp(App[None]):
    CSS_PATH = "styles.tcss"
    TITLE = "waha-tui"
    ENABLE_COMMAND_PALETTE = True
    COMMANDS = App.COMMANDS | {DashboardCommands}

    def __init__(
        self,
        service: CampaignService,
        *,
        refresh_interval: float = 0.5,
        session_interval: float = 3.0,
        scheduler_interval: float = 1.0,
        install_signals: bool = False,
        run_scheduler: bool = True,
        # WAHA's events (acks, replies, opt-outs) while the dashboard is open, sending or
        # not; off for tests whose WAHA is no server on a socket.
        listen: bool = True,
        # One already listening (the demo's, since before the dashboard opened): used
        # instead of a new one, and closed with the dashboard.
        listener: Listener | None = None,
        # A line at the top (the demo's): fixed, or read again every second while shown.
        banner: str | Callable[[], str] | None = None,
        timeline: Sequence[tuple[float, Callable[[], str]]] = (),
    ) -> None:
        # Output that never blocks on a terminal that vanished or stopped reading.
        super().__init__(driver_class=GuardedDriver)
        self.service = service
        self.session_service = service.session_service  # the sessions screen's (w)
        self.refresh_interval = refresh_interval
        self.session_interval = session_interval
        self.scheduler_interval = scheduler_interval
        self.install_signals = install_signals
        self.run_scheduler = run_scheduler
        self.listen = listen or listener is not None
        self.listener: Listener | None = listener
        self.banner = banner() if callable(banner) else banner
        self._describe = banner if callable(banner) else None
        self.timeline = list(timeline)
        self.resuming: set[int] = set()
        # The highlighted row's resume, asked of WAHA ahead (its session, its first id).
        self._prep: ResumePrep | None = None
        self.deleting: set[int] = set()  # deletes under way here: D is not offered twice
        self.main = MainScreen()
        self._stop_scheduler = asyncio.Event()
        self._quitting = False
        # Signals, a vanished terminal and quitting all stop the same way; the watchdog
        # that guarantees the exit belongs to a real process, not an app under test.
        self.stopper = Stopper(self._stop_requested, watchdog=install_signals)
        self._unsubscribe = service.bus.subscribe(self._on_runner_event)

    async def on_mount(self) -> None:
        # First: a stop (a signal, a terminal gone) may come while the rest starts.
        if self.install_signals:
            # A dropped SSH connection sends SIGHUP, which Textual does not handle.
            self.stopper.install()
        else:
            self.stopper.bind()
        # Runs left Running by a process that died are shown as what they are: Paused.
        await self.service.recover_interrupted()
        await self.push_screen(self.main)
        self.run_worker(self.service.warm_up(), group="warm-up", exit_on_error=False)
        if self.listener is not None:
            self.listener.attach(on_applied=self._events_applied, on_state=self._feed_state)
        elif self.listen:
            self.listener = self.service.listener(
                on_applied=self._events_applied, on_state=self._feed_state
            )
            self.listener.start()
        self.run_worker(self._watch_sessions(), group="sessions", exit_on_error=False)
        if self.run_scheduler:
            scheduler = Scheduler(
                self.service,
                interval=self.scheduler_interval,
                spawn=self.spawn_runner,
                on_error=lambda cid, msg: self.notify(
                    f"campaign {cid}: {msg}", severity="warning", markup=False
                ),
                on_health=self._scheduler_health,
            )
            self.run_worker(
                scheduler.run(stop=self._stop_scheduler), group="scheduler", exit_on_error=False
            )
        if self._describe is not None:
            self.set_interval(BANNER_EVERY, self._follow_banner)
        for delay, step in self.timeline:
            self.set_timer(delay, lambda step=step: self._timeline_step(step))

    def _scheduler_health(self, impaired: str | None) -> None:
        was = self.main.is_mounted and self.main.query_one("#scheduler-line").display
        self.main.set_scheduler_health(impaired)
        if impaired and not was:
            self.notify(impaired, severity="error", markup=False)
        elif not impaired and was:
            self.notify("scheduling works again", markup=False)

    def _timeline_step(self, step: Callable[[], str]) -> None:
        """A scripted event (the demo's reconnect): show what happened, where to look."""
        text = step()
        self._follow_banner()
        self.notify(text, markup=False, timeout=10)

    def _follow_banner(self) -> None:
        """The banner says what is true now: a step the operator took ends its advice."""
        if self._describe is None:
            return
        try:
            text = self._describe()
        except Exception as exc:
            caught(log, exc, "updating the banner")
            return
        if text != self.banner:
            self.banner = text
            self.main.set_banner(text)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every toast, from every screen: what it quotes from outside (a campaign's name,
        WAHA's words) is shown, never obeyed (the display rule, printable)."""
        super().notify(
            printable(message, multiline=True),
            title=printable(title),
            severity=severity,
            timeout=timeout,
            markup=markup,
        )

    # -- screens (keys on the main screen and the command palette) ----------------------

    def _open(self, kind: type[Screen[Any]], make: Callable[[], Screen[Any]], **kw: Any) -> None:
        if not isinstance(self.screen, kind):  # the palette over the same screen: stay
            self.push_screen(make(), **kw)

    def open_new_campaign(self) -> None:
        self._open(
            NewCampaignScreen,
            lambda: NewCampaignScreen(self.service, self.session_service),
            callback=self._campaign_created,
        )

    def open_contact_lists(self) -> None:
        self._open(ContactListsScreen, lambda: ContactListsScreen(self.service))

    def open_templates(self) -> None:
        self._open(TemplatesScreen, lambda: TemplatesScreen(self.service))

    def open_optouts(self) -> None:
        self._open(OptOutsScreen, lambda: OptOutsScreen(self.service.optouts))

    def open_sessions(self) -> None:
        self._open(SessionsScreen, lambda: SessionsScreen(self.session_service))

    def _campaign_created(self, campaign_id: int | None) -> None:
        if campaign_id is not None:
            self.run_task(self.main.show_campaign(campaign_id))

    # -- what the keys on a campaign do (the main and the details screens) -------------

    def offers(self, action: str, c: Any) -> bool:
        """Whether the key for `action` applies to campaign `c` (a row of the main table or a
        Campaign: the same attributes), by the rules of status.py. Both screens' footers
        show a key only where it applies."""
        if c is None:
            return False
        if action == "resume":
            return can_resume(c.status, c.next_index, c.total) and c.id not in self.resuming
        if action == "pause":
            return can_pause(c.status)
        if action == "cancel":
            return can_transition(c.status, S.CANCELLED)
        if action == "delete":
            return can_delete(c.status) and c.id not in self.deleting
        if action == "edit":
            return can_edit(c.status)
        if action == "clone":
            return bool(c.status != S.DELETING)
        return True

    def confirm_cancel(self, c: Any) -> None:
        cid = c.id

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_task(self.cancel_campaign(cid))

        left = c.total - c.next_index
        question = (
            f"Cancel campaign {cid} “{c.name}”? {left} recipient{'' if left == 1 else 's'} "
            "will not get the message. This cannot be undone."
        )
        self.push_screen(ConfirmationModal(question, yes="Cancel it", no="Keep it"), answered)

    def confirm_delete(self, c: Any, then: Callable[[], None] | None = None) -> None:
        """Ask, then delete campaign `c` in the background; `then()` once it is asked for."""
        cid, name, total = c.id, c.name, c.total

        def answered(yes: bool | None) -> None:
            if yes:
                if then is not None:
                    then()
                self.run_task(self.delete_campaign(cid, name, total))

        if c.status == S.DELETING:
            question = f"Campaign {cid} “{name}” was being deleted. Finish deleting it?"
        else:
            count = f"{total:,} recipient{'' if total == 1 else 's'}"
            question = (
                f"Delete campaign {cid} “{name}” ({c.status}, {count}) with its history? "
                "This cannot be undone."
            )
        self.push_screen(ConfirmationModal(question, yes="Delete it", no="Keep it"), answered)

    async def delete_campaign(self, campaign_id: int, name: str, total: int) -> None:
        if campaign_id in self.deleting:
            return
        self.deleting.add(campaign_id)
        if total > self.service.delete_batch:
            self.notify(f"deleting campaign {campaign_id} ({total:,} recipients)…", markup=False)
        try:
            deleted = await self.service.delete_campaign(campaign_id)
        except UserError as exc:
            self.notify(str(exc), severity="error", markup=False, timeout=8)
        else:
            image = " and its image" if deleted.image_removed else ""
            self.notify(
                f"campaign {campaign_id} '{name}' deleted, with its recipients, history{image}",
                markup=False,
            )
        finally:
            self.deleting.discard(campaign_id)
        self.main.request_reload()

    def open_campaign_form(self, c: Any, *, clone: bool) -> None:
        """`e` (edit) or `C` (clone) on campaign `c`: the form reads it whole first."""

        async def open_it() -> None:
            try:
                campaign = await self.service.campaign(c.id)
            except UserError as exc:
                self.notify(str(exc), severity="error", markup=False)
                return
            done = self._campaign_created if clone else self._campaign_edited
            self.push_screen(CampaignFormModal(self.service, campaign, clone=clone), done)

        self.run_task(open_it())

    def _campaign_edited(self, campaign_id: int | None) -> None:
        if campaign_id is not None:
            self.main.request_reload()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title == "Quit":
                # Textual's quit would leave running campaigns without a word: ask first.
                yield SystemCommand(
                    "Quit",
                    "Quit; running campaigns are paused after the message in flight",
                    self.request_quit,
                )
            else:
                yield command

    # -- runner ------------------------------------------------------------------------

    def spawn_runner(self, coro: Awaitable[ev.Ended]) -> Worker[ev.Ended]:
        """Runners are App workers, so they live on when screens change."""
        return self.run_worker(
            coro,
            group=RUNNER_GROUP,
            exit_on_error=False,
            name="campaign runner",
        )

    def _on_runner_event(self, event: ev.CampaignEvent) -> None:
        # One event per message at full speed: never one reload each, they coalesce.
        self.main.request_reload()
        if isinstance(event, ev.Paused) and not self._quitting:
            self.notify(
                f"campaign {event.campaign_id} paused: {event.reason}",
                severity="warning",
                markup=False,
                timeout=8,
            )
        elif isinstance(event, ev.Completed):
            self.notify(
                f"campaign {event.campaign_id} completed: {event.sent} sent, {event.failed} failed",
                markup=False,
            )
        elif isinstance(event, ev.Failed):
            self.notify(
                f"campaign {event.campaign_id} failed: {event.error}",
                severity="error",
                markup=False,
                timeout=10,
            )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # The app's workers run with exit_on_error=False: an error would vanish unlogged.
        worker = event.worker
        if event.state == WorkerState.ERROR and worker.error is not None:
            caught(log, worker.error, f"worker {worker.name!r} ({worker.group})")

    def run_task(self, coro: Coroutine[Any, Any, None]) -> None:
        self.run_worker(coro, group="actions", exit_on_error=False)

    def prepare_resume(self, row: Any | None) -> None:
        """The highlighted campaign may be resumed next: what its resume asks WAHA before
        its claim (its session, its first message id) is asked now, so `r` finds it
        ready; dropped when the cursor moves on (an unused id is harmless)."""
        prep = self._prep
        if prep is not None and row is not None and prep.campaign_id == row.id:
            return
        self._prep = None
        self.service.drop_prep(prep)
        if row is not None and row.id not in self.resuming and not self._quitting:
            self._prep = self.service.prepare_resume(row)

    def start_resume(self, campaign_id: int) -> None:
        if campaign_id in self.resuming:
            return  # a second press while one is in flight does nothing
        self.resuming.add(campaign_id)
        prep, self._prep = self._prep, None
        if prep is not None and prep.campaign_id != campaign_id:
            self.service.drop_prep(prep)
            prep = None
        self.run_task(self._resume(campaign_id, prep))
        # Nothing else on the loop until the resume is under way: a footer recompose
        # (hiding r while it is in flight) costs tens of ms on a slow machine, so it
        # follows a moment later; a second r is refused by check_action meanwhile.
        self.set_timer(UI_AFTER_RESUME, self.main.refresh_bindings_if_changed)

    async def _resume(self, campaign_id: int, prep: ResumePrep | None = None) -> None:
        try:
            row = self.main.campaigns.get(campaign_id)
            run = await self.service.resume(
                campaign_id, spawn=self.spawn_runner, seen=row, prepared=prep
            )
        except UserError as exc:
            self.resuming.discard(campaign_id)  # still Paused: r is offered again
            self.notify(
                f"cannot resume campaign {campaign_id}: {exc}",
                severity="error",
                markup=False,
                timeout=8,
            )
            self.main.request_reload()
            self.main.refresh_bindings_if_changed()
            return
        except BaseException:
            self.resuming.discard(campaign_id)
            raise
        if run is None:
            message = f"campaign {campaign_id} is Scheduled again: it starts at its scheduled time"
        else:
            message = f"campaign {campaign_id} resumed"
        # The runner is on its way to the first send: the toast and the table can wait a
        # moment for it. The campaign stays in `resuming` until the table no longer shows
        # it Paused, so a quick second r is refused quietly rather than with an error.
        self.set_timer(UI_AFTER_RESUME, lambda: self._resumed(campaign_id, message))

    def _resumed(self, campaign_id: int, message: str) -> None:
        self.notify(message, markup=False)

        async def settle() -> None:
            try:
                await self.main.reload_and_wait()
            finally:
                self.resuming.discard(campaign_id)
                self.main.refresh_bindings_if_changed()

        self.run_task(settle())

    async def pause_campaign(self, campaign_id: int, *, running: bool) -> None:
        """`running`: it was sending when the key was pressed (a Scheduled one has no
        message in flight to wait for)."""
        try:
            await self.service.pause(campaign_id)
        except UserError as exc:
            self.notify(str(exc), severity="error", markup=False)
        else:
            said = "pausing after the message in flight" if running else "paused"
            self.notify(f"campaign {campaign_id} {said}", markup=False)
        await self.main.reload()

    async def cancel_campaign(self, campaign_id: int) -> None:
        try:
            await self.service.cancel(campaign_id)
        except UserError as exc:
            self.notify(str(exc), severity="error", markup=False)
        else:
            self.notify(f"campaign {campaign_id} cancelled", markup=False)
        await self.main.reload()

    # -- WAHA sessions line ------------------------------------------------------------

    async def _watch_sessions(self) -> None:
        while True:
            self.main.set_waha_line(await self._sessions_line())
            await asyncio.sleep(self.session_interval)

    async def _sessions_line(self) -> Text:
        line = Text(f"WAHA {printable(self.service.waha_url)}  ")
        if self.listener is not None:
            line.append_text(feed_cell(self.listener.state))
            line.append("  ")
        try:
            sessions: list[SessionInfo] = await self.service.sessions()
        except Unreachable:
            return line.append("unreachable", style="bold red")
        except Unauthorized:
            return line.append(f"API key refused ({CHECK_API_KEY})", style="bold red")
        except WahaError as exc:
            return line.append(printable(str(exc)), style="red")
        if not sessions:
            return line.append("no sessions", style="yellow")
        try:
            self.main.set_caps(await self.service.caps.for_sessions(sessions))
        except Exception as exc:  # the ETAs go without caps until the next read
            caught(log, exc, "reading the numbers' caps")
        return fit_sessions(line, sessions, self.main.size.width - LINE_PADDING)

    # -- WAHA's events ----------------------------------------------------------------

    def _feed_state(self, state: FeedState) -> None:
        # Said at once in the WAHA line (the sessions are read again with it).
        if self.main.is_mounted and not self._quitting:
            self.run_worker(
                self._refresh_waha_line(), group="waha-line", exclusive=True, exit_on_error=False
            )

    async def _refresh_waha_line(self) -> None:
        line = await self._sessions_line()
        # The feed's state may change as the dashboard closes, its widgets already gone.
        with contextlib.suppress(NoMatches):
            self.main.set_waha_line(line)

    def _events_applied(self, applied: Applied) -> None:
        for o in applied.opted_out:
            where = f" (campaign {o.campaign_id})" if o.campaign_id is not None else ""
            self.notify(
                f"{o.phone} opted out{where}: never messaged again", markup=False, timeout=8
            )
        for cid in applied.paused:
            self.notify(
                f"campaign {cid} paused: WhatsApp refused its messages in a row after "
                "accepting them (its row says more)",
                severity="warning",
                markup=False,
                timeout=10,
            )
        # The counts they moved show at the table's next refresh (refresh_interval): a
        # reload per batch, ten a second under a stream of acks, would cost keypresses.

    # -- leaving -----------------------------------------------------------------------

    async def action_quit(self) -> None:
        # Textual's ctrl+q: ask first too, and pause running campaigns cleanly.
        self.request_quit()

    def quit_question(self) -> tuple[str, str]:
        """What quitting does now, and the button that does it: read again while asked,
        since a campaign may end, or start, while the operator reads."""
        running = len(self.service.running_here())
        if not running:
            return "No campaign is running here any more. Quit?", "Quit"
        question = (
            f"{running} campaign{'s are' if running > 1 else ' is'} running. Quit and pause "
            f"{'them' if running > 1 else 'it'}? A message being sent is finished first. "
            "Resume later with r."
        )
        return question, "Pause and quit"

    def request_quit(self) -> None:
        if not self.service.running_here():
            self.stopper.request(QUIT)
            return
        question, yes = self.quit_question()

        def answered(yes: bool | None) -> None:
            if yes:
                self.stopper.request(QUIT)

        modal = ConfirmationModal(question, yes=yes, no="Stay", follow=self.quit_question)
        self.push_screen(modal, answered)

    def on_terminal_gone(self, why: str) -> None:
        """From the output or input thread (GuardedDriver): nobody can see us any more."""
        self.stopper.request_threadsafe(f"the terminal closed: {why}")

    def _stop_requested(self, why: str) -> None:
        reason = STOPPED_WITH_DASHBOARD if why == QUIT else f"{STOPPED_WITH_DASHBOARD} ({why})"
        self.run_task(self.shutdown(reason))

    async def shutdown(self, reason: str) -> None:
        if self._quitting:
            return
        self._quitting = True
        self._stop_scheduler.set()
        if self.listener is not None:
            await self.listener.aclose()  # what arrived is written first
        log.info("dashboard stopping: %s", reason)
        if self.service.running_here():
            self.notify("finishing the message in flight…", markup=False)
            await self.service.stop_all(reason)
        self.exit()

    async def on_unmount(self) -> None:
        self._unsubscribe()
        self.service.drop_prep(self._prep)
        self._prep = None
        if self.listener is not None:
            # Bounded: the feed's close never waits on the network more than a second.
            await self.listener.aclose()


def fit_sessions(line: Text, sessions: list[SessionInfo], width: int) -> Text:
    """`default WORKING · sales STOPPED · +2`: as many sessions as fit the line, and how
    many more there are (the sessions screen, w, lists them all)."""
    pieces = []
    for s in sessions:
        piece = Text(" · ")
        piece.append(f"{printable(s.name)} ")
        piece.append(printable(s.status), style=SESSION_LOOK.get(s.status, "magenta"))
        pieces.append(piece)
    for shown_count in range(len(pieces), -1, -1):
        rest = len(pieces) - shown_count
        more = f" · +{rest}" if rest else ""
        used = line.cell_len + sum(p.cell_len for p in pieces[:shown_count]) + len(more)
        if used <= width or shown_count == 0:
            out = line.copy()
            for piece in pieces[:shown_count]:
                out.append_text(piece)
            if more:
                out.append(more, style="bold")
            if out.cell_len > width:
                out.truncate(width, overflow="ellipsis")
            return out
    return line


def create_app(service: CampaignService, **kwargs: Any) -> WahaTuiApp:
    """The app factory tests use (posting's pattern)."""
    return WahaTuiApp(service, **kwargs)


def run_dashboard(settings: Settings, *, service: CampaignService | None = None) -> None:
    async def main() -> None:
        svc = service or CampaignService.open(settings)
        try:
            await WahaTuiApp(svc, install_signals=True).run_async()
        finally:
            await svc.stop_all(STOPPED_WITH_DASHBOARD)
            await svc.aclose()

    try:
        asyncio.run(main())
    except UserError as exc:
        raise SystemExit(f"error: {exc}") from None
