"""pymongocrypt.auto_encrypter: the legacy top-level module older pymongo imports."""

from pymongocrypt.synchronous.auto_encrypter import *  # noqa: F403
from pymongocrypt.synchronous.auto_encrypter import __all__  # noqa: F401
