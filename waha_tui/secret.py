"""Keeping secrets out of reprs, logs and tracebacks: the WAHA API key (`Secret`), the
password in a database URL (`mask_url`), and any text that may hold either (`redact`)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote

MASK = "***"
# A URL inside some text: a scheme, "://", then anything up to the next whitespace.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def _credentials(text: str) -> tuple[str, str, str, str] | None:
    """`scheme://user:password@rest` as (scheme, user, password, rest); None without a
    password. Plain string work, so it also reads URLs that do not parse (a bad port)."""
    head, sep, rest = text.partition("://")
    # The last "@": a password may hold "@" or "/"; an "@" further on only hides more.
    creds, at, after = rest.rpartition("@")
    if not sep or not at or ":" not in creds:
        return None
    user, password = creds.split(":", 1)
    return head, user, password, after


def mask_url(text: str) -> str:
    """`scheme://user:password@host/...` with the password shown as ***; anything else as is."""
    found = _credentials(text)
    if found is None:
        return text
    head, user, _password, after = found
    return f"{head}://{user}:{MASK}@{after}"


def url_password(text: str) -> str | None:
    """The password in `scheme://user:password@host/...`, as written (None if it has none)."""
    found = _credentials(text)
    return found[2] if found and found[2] else None


def hide(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every given secret (as written, and percent-decoded) shown as ***."""
    values = {v for s in secrets if s for v in (s, unquote(s))}
    for value in sorted(values, key=len, reverse=True):  # the longest first: no partial leftovers
        text = text.replace(value, MASK)
    return text


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """What may be shown or logged of `text`: the given secrets hidden, and the password of
    every URL in it masked, known or not."""
    return _URL.sub(lambda m: mask_url(m.group()), hide(text, secrets))
