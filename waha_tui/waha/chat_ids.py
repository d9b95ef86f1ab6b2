"""WhatsApp chat ids, in the one shape recipients are stored by.

A personal chat arrives as `<digits>@c.us` (WEBJS, and what WAHA's API takes) or as
`<digits>@s.whatsapp.net` (NOWEB, GOWS: the raw jid, sometimes with a `:<device>` after
the number). Groups (`@g.us`), broadcasts and status (`@broadcast`), newsletters and
linked ids (`@lid`: a privacy alias, not a number) are not personal chats by number.
"""

from __future__ import annotations

_PERSONAL = ("@c.us", "@s.whatsapp.net")
LID = "@lid"


def personal(chat_id: str) -> str | None:
    """`<digits>@c.us` for a personal chat by number, whatever shape it came in; None for
    anything else (a group, a broadcast, a `@lid`, junk)."""
    text = chat_id.strip()
    for suffix in _PERSONAL:
        if text.endswith(suffix):
            number = text[: -len(suffix)].split(":", 1)[0]  # a NOWEB jid's `:<device>`
            if number.isdecimal() and number.isascii():
                return f"{number}@c.us"
            return None
    return None


def number(chat_id: str) -> str | None:
    """The digits of a personal chat by number (see `personal`), else None."""
    found = personal(chat_id)
    return found[: -len("@c.us")] if found else None


def is_lid(chat_id: str) -> bool:
    return chat_id.strip().endswith(LID)
