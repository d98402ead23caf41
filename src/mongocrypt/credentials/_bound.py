"""What bounds a whole HTTP exchange: the one step the two runners cannot share.

Both runners limit each read (httpx) and check the exchange's deadline between reads. That leaves
a peer that trickles bytes and then stalls just before the deadline: the blocking runner waits for
that last read's own limit, while asyncio can interrupt the read, so the asynchronous runner is
cut off at the deadline exactly. ``_async_runner`` calls :func:`bounded_async`; the generated
``_sync_runner`` calls :func:`bounded` in its place.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import httpx

_T = TypeVar("_T")


async def bounded_async(exchange: Awaitable[_T], seconds: float) -> _T:
    """``exchange``'s result, or :class:`httpx.ReadTimeout` when it takes over ``seconds``."""
    try:
        return await asyncio.wait_for(exchange, seconds)
    except asyncio.TimeoutError as exc:
        raise httpx.ReadTimeout("the reply took too long") from exc


def bounded(result: _T, seconds: float) -> _T:
    """``result`` itself: a blocking exchange has already checked its deadline between reads."""
    return result
