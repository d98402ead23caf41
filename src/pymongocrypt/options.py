"""pymongocrypt.options: the handle options."""

from mongocrypt.engine import MongoCryptOptions

__all__ = ["MongoCryptOptions"]
