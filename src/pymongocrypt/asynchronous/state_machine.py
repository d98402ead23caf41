"""pymongocrypt.asynchronous.state_machine: the callback contract pymongo's async I/O implements
(with on-demand KMS credentials, as in the synchronous module)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mongocrypt.engine import AsyncMongoCryptCallback as _EngineCallback
from mongocrypt.engine import run_state_machine_async as run_state_machine
from mongocrypt.io.credentials import OnDemandCredentials

__all__ = ["AsyncMongoCryptCallback", "run_state_machine"]


class AsyncMongoCryptCallback(_EngineCallback):
    """The engine's async callback contract, with on-demand credentials."""

    async def fetch_kms_credentials(self, providers: Sequence[str]) -> Mapping[str, Any]:
        return await OnDemandCredentials().fetch_async(providers)
