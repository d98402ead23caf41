"""mongocrypt's own log lines (``logging``, under the ``mongocrypt`` logger), in one place so that
what they carry is reviewed once: names, namespaces, key ids, endpoints, attempts and sources;
never a value, a key or a secret.

========================  ======  ==================================================================
logger                    level   line
========================  ======  ==================================================================
mongocrypt.auto_encryption INFO   the query-analysis mode a client with automatic encryption uses,
                                  and why
mongocrypt.engine         DEBUG   each command marked (command name and namespace), each key-vault
                                  fetch (key ids and alternate names asked for), each KMS request
                                  (provider, endpoint, attempt)
mongocrypt.credentials    DEBUG   each on-demand credential fetch (provider, source)
========================  ======  ==================================================================
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from bson.raw_bson import RawBSONDocument

__all__ = [
    "AUTO_ENCRYPTION",
    "CREDENTIALS",
    "ENGINE",
    "credentials_fetched",
    "key_fetch",
    "kms_request",
    "marking",
    "query_analysis",
]

AUTO_ENCRYPTION = logging.getLogger("mongocrypt.auto_encryption")
ENGINE = logging.getLogger("mongocrypt.engine")
CREDENTIALS = logging.getLogger("mongocrypt.credentials")


def query_analysis(mode: str, reason: str) -> None:
    """INFO, once per client: how its commands are analysed."""
    AUTO_ENCRYPTION.info("query analysis: %s (%s)", mode, reason)


def marking(database: str, command: bytes) -> None:
    """DEBUG: a command about to be marked; its name and namespace, none of its values."""
    if not ENGINE.isEnabledFor(logging.DEBUG):
        return
    document = RawBSONDocument(command)
    name = next(iter(document), "?")
    target = document.get(name)
    namespace = f"{database}.{target}" if isinstance(target, str) else database
    ENGINE.debug("marking %s on %s", name, namespace)


def key_fetch(ids: Sequence[Any], names: Sequence[str]) -> None:
    """DEBUG: the key vault is asked for these key ids and alternate names."""
    if ENGINE.isEnabledFor(logging.DEBUG):
        asked = [f"id {key_id}" for key_id in ids] + [f"alternate name {n!r}" for n in names]
        ENGINE.debug("fetching data keys from the key vault: %s", ", ".join(asked))


def kms_request(provider: str, endpoint: str, attempt: int) -> None:
    """DEBUG: one KMS request (the message itself is never logged)."""
    ENGINE.debug("KMS request to %s at %s (attempt %d)", provider, endpoint, attempt)


def credentials_fetched(provider: str, source: str) -> None:
    """DEBUG: on-demand credentials obtained (where from, never what)."""
    CREDENTIALS.debug("%s credentials obtained from %s", provider, source)
