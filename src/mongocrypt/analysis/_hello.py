"""The handshake reply of mongocryptd, in one place: the embedded analyzer answers
libmongocrypt's ``isMaster`` probe with it, and ``mongocrypt-cryptd`` answers drivers with it.

mongocryptd's own command (``CrytpDCmdHello`` in the server's enterprise module) answers
``hello`` with ``isWritablePrimary`` and its legacy names (``isMaster``, ``ismaster``) with
``ismaster``, then ``iscryptd``, the size limits, ``localTime`` and the wire versions. It sends no
``helloOk``, ``connectionId``, ``logicalSessionTimeoutMinutes`` or ``compression``: a driver
therefore keeps the legacy handshake, starts no sessions and never compresses towards it.
"""

from __future__ import annotations

import datetime
from typing import Any

__all__ = ["HELLO_NAMES", "MAX_MESSAGE_SIZE", "MAX_WIRE_VERSION", "hello_reply"]

#: The wire version mongocryptd 8.2 reports; libmongocrypt needs 26 to send several schemas
#: (``$lookup``) and mixed CSFLE/QE commands.
MAX_WIRE_VERSION = 27
#: The largest message mongocryptd takes (``maxMessageSizeBytes``).
MAX_MESSAGE_SIZE = 48_000_000
#: The command names of the handshake (compared case-insensitively, as the server does).
HELLO_NAMES = ("hello", "ismaster")


def hello_reply(command_name: str) -> dict[str, Any]:
    """mongocryptd's reply to the handshake command ``command_name``.

    :param command_name: the command's first key: ``hello`` gets ``isWritablePrimary``, the
        legacy ``isMaster``/``ismaster`` get ``ismaster``.
    """
    primary = "isWritablePrimary" if command_name == "hello" else "ismaster"
    return {
        primary: True,
        "iscryptd": True,
        "maxBsonObjectSize": 16 * 1024 * 1024,
        "maxMessageSizeBytes": MAX_MESSAGE_SIZE,
        "localTime": datetime.datetime.now(datetime.timezone.utc),
        "maxWireVersion": MAX_WIRE_VERSION,
        "minWireVersion": 0,
        "ok": 1.0,
    }
