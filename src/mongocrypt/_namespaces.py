"""Namespace checks shared by the options that name collections (``database.collection``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import bson
import bson.errors

__all__ = ["check_namespace", "check_namespace_map"]

#: Characters a MongoDB database name may not hold.
_DATABASE_FORBIDDEN = frozenset('/\\. "$\x00')


def check_namespace(namespace: object, option: str) -> str:
    """``namespace`` if it is ``database.collection`` (the collection part may hold dots).

    :param option: how the message names the value, e.g. ``"schema_map key"``.
    :raises ValueError: naming ``option`` and the value.
    """
    database, dot, collection = (
        namespace.partition(".") if isinstance(namespace, str) else ("", "", "")
    )
    if not (dot and database and collection) or _DATABASE_FORBIDDEN & set(database):
        raise ValueError(
            f"{option} {namespace!r} is not a 'database.collection' namespace: a command on the "
            "collection would not match it, so its fields would not be encrypted"
        )
    return namespace  # type: ignore[return-value]


def check_namespace_map(value: Any, option: str) -> None:
    """Check a ``schema_map`` or ``encrypted_fields_map``, as a mapping or as BSON.

    :raises TypeError: if it is not a mapping of documents.
    :raises ValueError: naming the first key that is not ``database.collection``.
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            value = bson.decode(bytes(value))
        except bson.errors.InvalidBSON:
            return  # libmongocrypt reports malformed BSON itself
    if not isinstance(value, Mapping):
        raise TypeError(f"{option} must be a mapping or BSON bytes, not {type(value).__name__}")
    for namespace, document in value.items():
        check_namespace(namespace, f"{option} key")
        if not isinstance(document, Mapping):
            raise TypeError(
                f"{option}[{namespace!r}] must be a document, not {type(document).__name__}"
            )
