"""pymongocrypt.synchronous.state_machine: the callback contract pymongo's I/O implements."""

from mongocrypt.dropin.synchronous import MongoCryptCallback
from mongocrypt.engine import run_state_machine

__all__ = ["MongoCryptCallback", "run_state_machine"]
