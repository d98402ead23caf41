"""pymongocrypt.synchronous.state_machine: the callback contract pymongo's I/O implements.

pymongo's I/O class has no way to fetch on-demand KMS credentials (``{"aws": {}}``); pymongocrypt
fetches them itself, so this base class supplies them from mongocrypt's credential sources.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mongocrypt.engine import MongoCryptCallback as _EngineCallback
from mongocrypt.engine import run_state_machine
from mongocrypt.io.credentials import OnDemandCredentials

__all__ = ["MongoCryptCallback", "run_state_machine"]


class MongoCryptCallback(_EngineCallback):
    """The engine's callback contract, with on-demand credentials from the environment."""

    def fetch_kms_credentials(self, providers: Sequence[str]) -> Mapping[str, Any]:
        return OnDemandCredentials().fetch(providers)
