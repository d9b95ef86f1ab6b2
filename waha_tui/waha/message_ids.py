"""WhatsApp message ids, in the one shape acks are matched by.

WAHA hands the same message's id out in several shapes (NOTES.md, section 6 and the
differences list): a send answer carries the bare `key.id` (NOWEB's raw body), or the
serialized `true_<chat>_<id>` (WEBJS, the spec's WAMessage); a `message.ack` carries the
serialized form, a group's with `_<participant>` after it; a pre-generated id is bare.
Every ack finds its recipient by `bare()` of both sides, and only here is that rule.
"""

from __future__ import annotations

_SERIALIZED = ("true_", "false_")


def bare(message_id: str) -> str:
    """The message's own id (`key.id`), whatever shape it came in:

    - `3EB0C767D097B7C1D2E6` -> itself
    - `true_4915100000001@c.us_3EB0C767D097B7C1D2E6` -> `3EB0C767D097B7C1D2E6`
    - `false_123-456@g.us_3EB0..._4915100000001@c.us` (a group's) -> `3EB0...`

    The chat id ends at the first `_` after its `@` (chat ids hold no `_` after it; a
    message's own id holds none at all)."""
    text = message_id.strip()
    for prefix in _SERIALIZED:
        if text.startswith(prefix):
            rest = text[len(prefix) :]
            at = rest.find("@")
            if at < 0:
                return text  # not the serialized shape after all: keep it whole
            cut = rest.find("_", at)
            if cut < 0:
                return text
            own = rest[cut + 1 :]
            return own.split("_", 1)[0] or text
    return text


def bare_or_none(message_id: str | None) -> str | None:
    return bare(message_id) if message_id else None
