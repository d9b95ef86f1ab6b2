"""Keeping secrets out of reprs, logs and tracebacks: the WAHA API key (`Secret`) and the
password in a database URL (`mask_url`)."""

from __future__ import annotations


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


def mask_url(text: str) -> str:
    """`scheme://user:password@host/...` with the password shown as ***; anything else as is.

    Plain string work, so it also covers URLs that do not parse (a bad port, say)."""
    head, sep, rest = text.partition("://")
    # The last "@": a password may hold "@" or "/"; an "@" further on only hides more.
    creds, at, after = rest.rpartition("@")
    if not sep or not at or ":" not in creds:
        return text
    user = creds.split(":", 1)[0]
    return f"{head}://{user}:***@{after}"
