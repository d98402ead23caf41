"""The one check of a ``database.collection`` namespace (the key vault, the schema maps' keys)."""

from __future__ import annotations

__all__ = ["check_namespace"]

#: Characters a MongoDB database name may not hold.
_DATABASE_FORBIDDEN = frozenset('/\\. "$\x00')


def check_namespace(namespace: object, option: str = "key_vault_namespace") -> tuple[str, str]:
    """``"database.collection"`` split in two (the collection part may hold dots).

    :param option: how the message names the value, e.g. ``"schema_map key"``.
    :raises TypeError: unless ``namespace`` is a str.
    :raises ValueError: without both parts, or with a database name MongoDB refuses.
    """
    if not isinstance(namespace, str):
        raise TypeError(f"{option} must be str, not {type(namespace).__name__}")
    database, dot, collection = namespace.partition(".")
    if not (database and dot and collection) or _DATABASE_FORBIDDEN & set(database):
        raise ValueError(f"{option} must be 'database.collection', not {namespace!r}")
    return database, collection
