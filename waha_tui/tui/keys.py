"""The keys that act on one campaign, on the main screen and in its details screen, each
offered only where it applies (WahaTuiApp.offers, from the rules of status.py), and what
they do (CampaignActions: one copy for both screens)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.binding import Binding

from waha_tui.status import CampaignStatus

if TYPE_CHECKING:
    from waha_tui.tui.app import WahaTuiApp

CAMPAIGN_KEYS = [
    Binding("r", "resume", "Resume"),
    Binding("p", "pause", "Pause"),
    Binding("c", "cancel", "Cancel"),
    Binding("e", "edit", "Edit"),
    Binding("C", "clone", "Clone"),
    Binding("D", "delete", "Delete"),
    Binding("ctrl+d", "delete", "Delete", show=False),  # k9s's
]
CAMPAIGN_ACTIONS = frozenset(b.action for b in CAMPAIGN_KEYS)


class CampaignActions:
    """The actions of CAMPAIGN_KEYS, for a screen with one campaign in view: the row under
    the cursor on the list, the campaign itself in its details."""

    @property
    def wapp(self) -> WahaTuiApp:
        from waha_tui.tui.app import WahaTuiApp  # not at the top: app.py imports the screens

        app = getattr(self, "app")  # noqa: B009 (the Screen's, which this class mixes into)
        assert isinstance(app, WahaTuiApp)
        return app

    def acted_on(self) -> Any | None:
        """The campaign the keys act on (a Campaign, or a row with the same attributes)."""
        raise NotImplementedError

    def after_delete(self) -> None:
        """Once a delete is asked for (the details screen goes back to the list)."""

    def offers_campaign_action(self, action: str) -> bool:
        return self.wapp.offers(action, self.acted_on())

    def _offered(self, action: str) -> Any | None:
        """The campaign, if `action` applies to it as last read."""
        c = self.acted_on()
        return c if c is not None and c.id is not None and self.wapp.offers(action, c) else None

    def action_resume(self) -> None:
        if (c := self._offered("resume")) is not None:
            self.wapp.start_resume(c.id)

    def action_pause(self) -> None:
        if (c := self._offered("pause")) is not None:
            running = c.status == CampaignStatus.RUNNING
            self.wapp.run_task(self.wapp.pause_campaign(c.id, running=running))

    def action_cancel(self) -> None:
        if (c := self._offered("cancel")) is not None:
            self.wapp.confirm_cancel(c)

    def action_delete(self) -> None:
        if (c := self._offered("delete")) is not None:
            self.wapp.confirm_delete(c, then=self.after_delete)

    def action_clone(self) -> None:
        if (c := self._offered("clone")) is not None:
            self.wapp.open_campaign_form(c, clone=True)

    def action_edit(self) -> None:
        if (c := self._offered("edit")) is not None:
            self.wapp.open_campaign_form(c, clone=False)
