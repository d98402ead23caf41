"""The callback contracts and the drivers that run a context against them, sync and async.

The operations themselves are in :mod:`mongocrypt.engine.steps`; the drivers are in
:mod:`.asynchronous.state_machine` and its generated twin :mod:`.synchronous.state_machine`.
"""

from mongocrypt.engine.asynchronous.state_machine import (
    AsyncMongoCryptCallback,
    run_state_machine_async,
    run_steps_async,
)
from mongocrypt.engine.synchronous.state_machine import (
    MongoCryptCallback,
    run_state_machine,
    run_steps,
)

__all__ = [
    "AsyncMongoCryptCallback",
    "MongoCryptCallback",
    "run_state_machine",
    "run_state_machine_async",
    "run_steps",
    "run_steps_async",
]
