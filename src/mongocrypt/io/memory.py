"""An I/O callback that keeps the key vault in memory: for demos, and for unit tests of code
that uses the engine without a server. KMS replies, collection infos and markings come from
functions the caller supplies; anything not supplied fails loudly instead of guessing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Callable, Optional

import bson
from bson.raw_bson import RawBSONDocument

from mongocrypt.engine import KmsContext, MongoCryptCallback
from mongocrypt.errors import MongoCryptError

__all__ = ["InMemoryIO", "KmsResponder", "key_filter_matches"]

#: Given a KMS request, returns the complete reply bytes.
KmsResponder = Callable[[KmsContext], bytes]
#: Given (database, command), returns mongocryptd's reply document.
Marker = Callable[[str, Mapping[str, Any]], Mapping[str, Any]]


def key_filter_matches(filter: Mapping[str, Any], key: Mapping[str, Any]) -> bool:
    """Evaluate a key-vault filter as libmongocrypt writes them ($or/$and, $in, equality)."""
    for name, condition in filter.items():
        if name in ("$or", "$and"):
            results = [key_filter_matches(sub, key) for sub in condition]
            if not (any(results) if name == "$or" else all(results)):
                return False
            continue
        if isinstance(condition, Mapping) and set(condition) - {"$in"}:
            raise ValueError(f"unsupported key-vault filter operator in {name}: {dict(condition)}")
        wanted = condition["$in"] if isinstance(condition, Mapping) else [condition]
        value = key.get(name)
        values = value if isinstance(value, list) else [value]
        if not any(v == w for v in values for w in wanted):
            return False
    return True


class InMemoryIO(MongoCryptCallback):
    """Key vault in a list; KMS, listCollections and markings from the given functions.

    :param kms: provider type (``"aws"``, ``"kmip"``; named providers use their type) ->
        a function returning the KMS reply for a request.
    :param collection_infos: listCollections results returned for every request.
    :param marker: produces mongocryptd's reply for a marking command.
    :param credentials: returned for on-demand KMS credentials.
    """

    def __init__(
        self,
        kms: Optional[Mapping[str, KmsResponder]] = None,
        collection_infos: Sequence[Mapping[str, Any]] = (),
        marker: Optional[Marker] = None,
        credentials: Optional[Mapping[str, Any]] = None,
    ) -> None:
        self.keys: list[bytes] = []
        self.kms = dict(kms or {})
        self.collection_infos = [bson.encode(info) for info in collection_infos]
        self.marker = marker
        self.credentials = credentials

    def kms_request(self, kms_context: KmsContext) -> None:
        provider = kms_context.kms_provider.split(":")[0]
        if provider not in self.kms:
            raise MongoCryptError(f"InMemoryIO has no KMS responder for {provider!r}")
        reply = self.kms[provider](kms_context)
        offset = 0
        while kms_context.bytes_needed > 0:
            chunk = reply[offset : offset + kms_context.bytes_needed]
            if not chunk:
                raise OSError("KMS reply ended before libmongocrypt had what it needs")
            kms_context.feed(chunk)
            offset += len(chunk)

    def collection_info(self, database: str, filter: bytes) -> list[bytes]:
        return list(self.collection_infos)

    def mark_command(self, database: str, cmd: bytes) -> bytes:
        if self.marker is None:
            raise MongoCryptError("InMemoryIO has no marker for query analysis")
        return bson.encode(self.marker(database, bson.decode(cmd)))

    def fetch_keys(self, filter: bytes) -> Iterator[bytes]:
        query = bson.decode(filter)
        for key in self.keys:
            if key_filter_matches(query, bson.decode(key)):
                yield key

    def insert_data_key(self, data_key: bytes) -> Any:
        document = RawBSONDocument(data_key)
        self.keys.append(bytes(data_key))
        return document["_id"]

    def bson_encode(self, doc: Mapping[str, Any]) -> bytes:
        return bson.encode(doc)

    def fetch_kms_credentials(self, providers: Sequence[str]) -> Mapping[str, Any]:
        if self.credentials is None:
            return super().fetch_kms_credentials(providers)
        return self.credentials

    def close(self) -> None:
        """Nothing to release."""
