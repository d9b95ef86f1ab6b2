"""The keys that act on one campaign, on the main screen and in its details screen, each
offered only where it applies (WahaTuiApp.offers, from the rules of status.py)."""

from __future__ import annotations

from textual.binding import Binding

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
