"""Settings from flags and the environment, resolved in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

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
        cls, db: str | None = None, waha_url: str | None = None, api_key: str | None = None
    ) -> Settings:
        key = api_key if api_key is not None else os.environ.get("WAHA_API_KEY")
        return cls(
            db=db or os.environ.get("WAHA_TUI_DB") or DEFAULT_DB,
            waha_url=waha_url or os.environ.get("WAHA_URL") or DEFAULT_WAHA_URL,
            api_key=Secret(key) if key else None,
        )
