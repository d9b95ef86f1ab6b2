"""Settings from flags and the environment, resolved in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from waha_tui.errors import UserError
from waha_tui.secret import Secret, mask_url

DEFAULT_DB = "campaigns.db"
DEFAULT_WAHA_URL = "http://localhost:3000"


@dataclass(frozen=True)
class Settings:
    db: str = field(default=DEFAULT_DB, repr=False)  # may hold a database password
    waha_url: str = DEFAULT_WAHA_URL
    api_key: Secret | None = None

    def __repr__(self) -> str:
        return (
            f"Settings(db={mask_url(self.db)!r}, waha_url={self.waha_url!r}, "
            f"api_key={self.api_key!r})"
        )

    @classmethod
    def resolve(
        cls,
        db: str | None = None,
        waha_url: str | None = None,
        api_key: str | None = None,
        api_key_file: str | None = None,
    ) -> Settings:
        """Flags first, then the environment. The key from a flag or the environment is
        visible to other local users (the process list, /proc/PID/environ for root); a key
        file (systemd credentials, container secrets) is not."""
        if api_key is not None and api_key_file is not None:
            raise UserError("give --api-key or --api-key-file, not both")
        if api_key is not None:
            key: str | None = api_key
        elif api_key_file is not None:
            key = read_key_file(api_key_file, "--api-key-file")
        elif os.environ.get("WAHA_API_KEY"):
            key = os.environ["WAHA_API_KEY"]
        elif os.environ.get("WAHA_API_KEY_FILE"):
            key = read_key_file(os.environ["WAHA_API_KEY_FILE"], "WAHA_API_KEY_FILE")
        else:
            key = None
        return cls(
            db=db or os.environ.get("WAHA_TUI_DB") or DEFAULT_DB,
            waha_url=waha_url or os.environ.get("WAHA_URL") or DEFAULT_WAHA_URL,
            api_key=Secret(key) if key else None,
        )


def read_key_file(path: str, given_by: str) -> str:
    """The key in a file; the line break editors and `echo` leave at its end is not part of
    it. Errors name the file, never its content."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{given_by} {path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise UserError(f"{given_by} {path}: not a text file (UTF-8)") from None
    key = text.rstrip("\r\n")
    if not key.strip():
        raise UserError(f"{given_by} {path} is empty")
    if "\n" in key or "\r" in key:
        raise UserError(f"{given_by} {path}: the key must be one line")
    return key
