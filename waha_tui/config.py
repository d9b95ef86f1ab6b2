"""Settings from flags and the environment, resolved in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass

from waha_tui.secret import Secret

DEFAULT_DB = "campaigns.db"
DEFAULT_WAHA_URL = "http://localhost:3000"


@dataclass(frozen=True)
class Settings:
    db: str = DEFAULT_DB
    waha_url: str = DEFAULT_WAHA_URL
    api_key: Secret | None = None

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
