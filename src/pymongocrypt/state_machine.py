"""pymongocrypt.state_machine: the legacy top-level module older pymongo imports."""

from pymongocrypt.synchronous.state_machine import *  # noqa: F403
from pymongocrypt.synchronous.state_machine import __all__  # noqa: F401
