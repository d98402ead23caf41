"""Layer 2: the libmongocrypt engine (handle, contexts, KMS requests, state machine).

Everything pymongo's pymongocrypt contract needs lives here; the I/O is delegated to a callback
object (:class:`MongoCryptCallback` / :class:`AsyncMongoCryptCallback`).
"""

from mongocrypt.engine.context import MongoCryptContext, State
from mongocrypt.engine.encrypter import (
    AsyncAutoEncrypter,
    AsyncExplicitEncrypter,
    AutoEncrypter,
    ExplicitEncrypter,
)
from mongocrypt.engine.handle import MongoCrypt
from mongocrypt.engine.kms import KmsContext
from mongocrypt.engine.native import (
    LOGGER,
    has_kms_in_place_retry,
    has_string_algorithm,
    is_crypto_available,
    libmongocrypt_version,
)
from mongocrypt.engine.options import DataKeyOptions, ExplicitEncryptOptions, MongoCryptOptions
from mongocrypt.engine.state_machine import (
    AsyncMongoCryptCallback,
    MongoCryptCallback,
    run_state_machine,
    run_state_machine_async,
)

__all__ = [
    "LOGGER",
    "AsyncAutoEncrypter",
    "AsyncExplicitEncrypter",
    "AsyncMongoCryptCallback",
    "AutoEncrypter",
    "DataKeyOptions",
    "ExplicitEncryptOptions",
    "ExplicitEncrypter",
    "KmsContext",
    "MongoCrypt",
    "MongoCryptCallback",
    "MongoCryptContext",
    "MongoCryptOptions",
    "State",
    "has_kms_in_place_retry",
    "has_string_algorithm",
    "is_crypto_available",
    "libmongocrypt_version",
    "run_state_machine",
    "run_state_machine_async",
]
