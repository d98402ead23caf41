"""pymongocrypt.asynchronous.state_machine: the callback contract pymongo's async I/O implements."""

from mongocrypt.dropin.asynchronous import AsyncMongoCryptCallback
from mongocrypt.engine import run_state_machine_async as run_state_machine

__all__ = ["AsyncMongoCryptCallback", "run_state_machine"]
