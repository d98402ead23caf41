"""A process-wide cache of access tokens (Azure IMDS tokens are reused until near expiry)."""

from __future__ import annotations

import threading
import time
from typing import Optional


class TokenCache:
    """Access tokens by URL with their expiry on the monotonic clock; safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[str, float]] = {}

    def __repr__(self) -> str:
        return f"<TokenCache of {len(self._entries)} token(s)>"

    def get(self, key: str, margin: float) -> Optional[str]:
        """The token for ``key`` if it expires more than ``margin`` seconds from now."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry[1] - time.monotonic() > margin:
            return entry[0]
        return None

    def put(self, key: str, token: str, expires_at: float) -> None:
        with self._lock:
            self._entries[key] = (token, expires_at)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
