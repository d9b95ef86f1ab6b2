"""WhatsApp session operations and their validation: what the sessions screen calls.

The dashboard never calls the WAHA client for sessions directly: names and phone numbers are
checked here, in one place, so a form and any later CLI command refuse the same things.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Awaitable, Callable, Collection, Sequence

from waha_tui.errors import UserError
from waha_tui.pacing import CapUse
from waha_tui.phones import normalise_phone
from waha_tui.waha import SessionInfo, WahaClient

MAX_NAME = 54  # WAHA keeps session files under the name; stay well clear of path limits
_NAME = re.compile(r"[A-Za-z0-9_-]+")  # ASCII only: the name ends up in URLs and file names


class SessionNameError(ValueError, UserError):
    """A session name WAHA would not take (or would take and then trip over)."""


def check_session_name(raw: str, taken: Collection[str] = ()) -> str:
    """The name, stripped; SessionNameError says what is wrong with it."""
    name = raw.strip()
    if not name:
        raise SessionNameError("the session name is empty")
    if len(name) > MAX_NAME:
        raise SessionNameError(f"the session name is longer than {MAX_NAME} characters")
    if not _NAME.fullmatch(name):
        bad = next(ch for ch in name if not _NAME.fullmatch(ch))
        shown = "spaces" if bad.isspace() else repr(bad)
        raise SessionNameError(
            f"the session name may only have letters, digits, - and _ (not {shown})"
        )
    if name in taken:
        raise SessionNameError(f"a session named '{name}' already exists")
    return name


def check_pairing_phone(raw: str) -> str:
    """International digits for a pairing code: the phone rule of the whole project."""
    # No country: WhatsApp needs the full international number of the phone to link.
    return normalise_phone(raw)


def connected_number(info: SessionInfo) -> str | None:
    """ "+15550000000" from WAHA's me.id ("15550000000@c.us"), or None when not linked."""
    if not info.me_id:
        return None
    if info.number:
        return f"+{info.number}"
    return info.me_id.split("@", 1)[0].split(":", 1)[0]


CapsOf = Callable[[Sequence[SessionInfo]], Awaitable[dict[str, CapUse]]]


class SessionService:
    def __init__(self, client: WahaClient, *, caps: CapsOf | None = None) -> None:
        self.client = client
        self._caps = caps

    async def caps(self, sessions: Sequence[SessionInfo]) -> dict[str, CapUse]:
        """Each session's number's caps and what it sent this hour and today, by session
        name (no caps, no number, no database: left out)."""
        return await self._caps(sessions) if self._caps is not None else {}

    @property
    def base_url(self) -> str:
        return self.client.base_url

    async def list(self) -> builtins.list[SessionInfo]:  # plain `list` is this method
        """Every session, stopped ones too, sorted by name so the order never jumps."""
        return sorted(await self.client.list_sessions(), key=lambda s: s.name)

    async def get(self, name: str) -> SessionInfo:
        return await self.client.get_session(name)

    async def create(self, name: str, *, taken: Collection[str] = ()) -> SessionInfo:
        """Create and start it, so it goes on to SCAN_QR_CODE for linking a phone."""
        return await self.client.create_session(check_session_name(name, taken), start=True)

    async def start(self, name: str) -> SessionInfo:
        return await self.client.start_session(name)

    async def stop(self, name: str) -> SessionInfo:
        return await self.client.stop_session(name)

    async def restart(self, name: str) -> SessionInfo:
        return await self.client.restart_session(name)

    async def logout(self, name: str) -> SessionInfo:
        return await self.client.logout_session(name)

    async def qr(self, name: str) -> str:
        """WAHA's raw QR value (the text inside the code), to draw it ourselves."""
        return await self.client.get_qr_value(name)

    async def pairing_code(self, name: str, phone: str) -> str:
        """The code to type on the phone instead of scanning (Link with phone number)."""
        return await self.client.request_pairing_code(name, check_pairing_phone(phone))

    @staticmethod
    def check_name(raw: str, taken: Collection[str] = ()) -> str:
        return check_session_name(raw, taken)

    @staticmethod
    def check_phone(raw: str) -> str:
        return check_pairing_phone(raw)


__all__ = [
    "SessionNameError",
    "SessionService",
    "check_pairing_phone",
    "check_session_name",
    "connected_number",
]
