"""pymongocrypt.synchronous.state_machine: the callback contract pymongo's I/O implements."""

from mongocrypt.engine import MongoCryptCallback, run_state_machine

__all__ = ["MongoCryptCallback", "run_state_machine"]
