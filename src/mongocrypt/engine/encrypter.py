"""Whole operations on one handle, sync and async (what pymongo's encrypters build on).

Written once in :mod:`.asynchronous.encrypter`; :mod:`.synchronous.encrypter` is generated.
"""

from mongocrypt.engine.asynchronous.encrypter import AsyncAutoEncrypter, AsyncExplicitEncrypter
from mongocrypt.engine.synchronous.encrypter import AutoEncrypter, ExplicitEncrypter

__all__ = ["AsyncAutoEncrypter", "AsyncExplicitEncrypter", "AutoEncrypter", "ExplicitEncrypter"]
