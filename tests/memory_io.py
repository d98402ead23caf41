"""An in-memory implementation of the engine's I/O callback, for offline engine tests.

It fakes I/O only at the engine boundary: a key vault held in a list, canned KMS replies, canned
collection infos and markings. Every request it receives is recorded for assertions.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Callable, Optional

import bson
from bson.raw_bson import RawBSONDocument

from mongocrypt.engine import KmsContext, MongoCryptCallback

KmsResponder = Callable[[KmsContext], bytes]


def key_filter_matches(filter: Mapping[str, Any], key: Mapping[str, Any]) -> bool:
    """Evaluate the filters libmongocrypt sends to the key vault ($or of $in on _id/keyAltNames)."""
    for field, condition in filter.items():
        if field in ("$or", "$and"):
            results = [key_filter_matches(sub, key) for sub in condition]
            if not (any(results) if field == "$or" else all(results)):
                return False
            continue
        value = key.get(field)
        wanted = condition["$in"] if isinstance(condition, Mapping) and "$in" in condition else [condition]
        values = value if isinstance(value, list) else [value]
        if not any(v == w for v in values for w in wanted):
            return False
    return True


class MemoryIO(MongoCryptCallback):
    """Key vault, KMS, listCollections and markings, all in memory."""

    def __init__(self, kms: Optional[Mapping[str, KmsResponder]] = None,
                 collection_infos: Sequence[Mapping[str, Any]] = (),
                 markings: Optional[Callable[[str, Mapping[str, Any]], Mapping[str, Any]]] = None,
                 credentials: Optional[Mapping[str, Any]] = None) -> None:
        self.keys: list[bytes] = []
        self.kms = dict(kms or {})
        self.collection_infos = [bson.encode(info) for info in collection_infos]
        self.markings = markings
        self.credentials = credentials
        self.requests: list[tuple[str, Any]] = []
        self.closed = False

    def kms_request(self, kms_context: KmsContext) -> None:
        provider = kms_context.kms_provider
        self.requests.append(("kms", (provider, kms_context.endpoint, kms_context.message)))
        reply = self.kms[provider.split(":")[0]](kms_context)
        # Feed in small slices, as a socket would deliver them.
        offset = 0
        while kms_context.bytes_needed > 0:
            chunk = reply[offset : offset + min(kms_context.bytes_needed, 97)]
            if not chunk:
                raise OSError("KMS reply ended early")
            kms_context.feed(chunk)
            offset += len(chunk)

    def collection_info(self, database: str, filter: bytes) -> list[bytes]:
        self.requests.append(("collinfo", (database, bson.decode(filter))))
        return list(self.collection_infos)

    def mark_command(self, database: str, cmd: bytes) -> bytes:
        command = bson.decode(cmd)
        self.requests.append(("markings", (database, command)))
        if self.markings is None:
            raise AssertionError("no markings configured")
        return bson.encode(self.markings(database, command))

    def fetch_keys(self, filter: bytes) -> Iterator[bytes]:
        query = bson.decode(filter)
        self.requests.append(("keys", query))
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
        self.requests.append(("credentials", tuple(providers)))
        if self.credentials is None:
            return super().fetch_kms_credentials(providers)
        return self.credentials

    def close(self) -> None:
        self.closed = True


def new_uuid() -> bson.Binary:
    return bson.Binary.from_uuid(uuid.uuid4())
