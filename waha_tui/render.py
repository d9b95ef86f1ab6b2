"""Message templates: the one place that knows what a placeholder is.

A placeholder is "{" + letters, digits, "_", "-" or spaces + "}", e.g. {name}, {City},
{ first name }. Matching is case-insensitive and ignores surrounding spaces. Anything else in
braces ({}, { }, {"a": 1}) and WhatsApp markdown (*bold*, _italic_, ~strike~, ```mono```) is
plain text and comes out unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from waha_tui.errors import UserError

NAME = "name"

# Only literal spaces (not tabs/newlines), so a brace pair spanning lines is never a placeholder.
_PLACEHOLDER = re.compile(r"\{([\w\- ]+)\}")


class RenderError(UserError):
    """A template needs a value that was not given."""


def _key(raw: str) -> str | None:
    key = raw.strip(" ").lower()
    return key or None


def placeholders(template: str) -> list[str]:
    """The placeholders used in ``template``: lower-cased, unique, in order of first appearance."""
    seen: dict[str, None] = {}
    for match in _PLACEHOLDER.finditer(template):
        key = _key(match.group(1))
        if key is not None:
            seen.setdefault(key, None)
    return list(seen)


def unknown_placeholders(template: str, columns: Iterable[str]) -> list[str]:
    """Placeholders that are neither {name} nor one of ``columns`` (case-insensitive)."""
    known = {column.strip().lower() for column in columns}
    known.add(NAME)
    return [key for key in placeholders(template) if key not in known]


def render(
    template: str, variables: Mapping[str, str], *, name: str | None, default_name: str
) -> str:
    """Fill in the placeholders of ``template``.

    {name} is the contact's name, or ``default_name`` when it is empty. Any other placeholder
    is the variable whose key matches case-insensitively. Raises RenderError naming every
    placeholder that has no variable.
    """
    values = {key.strip().lower(): value for key, value in variables.items()}
    stripped_name = (name or "").strip()
    values[NAME] = stripped_name or default_name
    missing = [key for key in placeholders(template) if key not in values]
    if missing:
        shown = ", ".join(f"{{{key}}}" for key in missing)
        it = "it" if len(missing) == 1 else "them"
        raise RenderError(f"the template uses {shown} but there is no value for {it}")

    def substitute(match: re.Match[str]) -> str:
        key = _key(match.group(1))
        return match.group(0) if key is None else values[key]

    # One pass, so a value that itself contains "{x}" is never expanded again.
    return _PLACEHOLDER.sub(substitute, template)
