"""``mongocrypt keys ...``: create, list, show, delete, name and rewrap data keys, and create the
key vault's unique index on ``keyAltNames``.

Alternate names must be unique across a key vault (the specification advises a partial unique
index); these commands refuse a name another key has, and name the keys sharing one when a
rewrap meets them.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import pymongo
from pymongo.collection import Collection
from pymongo.errors import OperationFailure, PyMongoError
from pymongo.read_concern import ReadConcern

from mongocrypt import (
    ClientEncryption,
    DataKeyOpts,
    MongoCryptError,
    RewrapManyDataKeyOpts,
)
from mongocrypt.cli._output import (
    Output,
    Progress,
    json_object,
    key_details,
    key_line,
    key_summary,
)
from mongocrypt.cli._settings import (
    DEFAULT_TIMEOUT_MS,
    OperationError,
    Settings,
    UsageError,
    key_vault_session,
    require_provider,
)


def find_key(client_encryption: ClientEncryption, ref: str) -> dict[str, Any]:
    """The key named by ``ref``: its UUID, else an alternate name."""
    document = None
    try:
        key_id = uuid.UUID(ref)
    except ValueError:
        key_id = None
    if key_id is not None:
        document = client_encryption.get_key(key_id)
    if document is None:
        document = client_encryption.get_key_by_alt_name(ref)
    if document is None:
        raise OperationError(f"no data key with id or alternate name {ref!r}")
    return key_summary(document)


#: The key vault index the specification advises: alternate names unique where present.
ALT_NAME_INDEX: dict[str, Any] = {
    "keys": [("keyAltNames", 1)],
    "unique": True,
    "partialFilterExpression": {"keyAltNames": {"$exists": True}},
}
#: What libmongocrypt says when a rewrap or key fetch meets two keys sharing an alternate name.
_DUPLICATE_MESSAGE = "duplicate keyAltNames"
_INDEX_HINT = "create the key vault's unique index with 'mongocrypt keys create-index'"
_DUPLICATE_KEY = 11000


def vault_collection(client: pymongo.MongoClient[Any], settings: Settings) -> Collection[Any]:
    """The key vault collection, read with majority read concern."""
    database, collection = settings.key_vault.split(".", 1)
    return client[database].get_collection(collection, read_concern=ReadConcern("majority"))


def has_alt_name_index(vault: Collection[Any]) -> bool:
    """Whether ``vault`` has a unique index on ``keyAltNames`` (the server then refuses a name
    another key has, error 11000)."""
    return any(
        dict(index["key"]) == dict(ALT_NAME_INDEX["keys"]) and index.get("unique")
        for index in vault.list_indexes()
    )


def _refuse_taken(
    client: pymongo.MongoClient[Any],
    client_encryption: ClientEncryption,
    settings: Settings,
    names: Sequence[str],
    key_id: Optional[str] = None,
) -> None:
    """Without the unique index, refuse an alternate name that a key other than ``key_id`` has."""
    if not names or has_alt_name_index(vault_collection(client, settings)):
        return
    for name in names:
        owner = client_encryption.get_key_by_alt_name(name)
        if owner is not None and key_summary(owner)["id"] != key_id:
            raise OperationError(
                f"alternate name {name!r} already belongs to key {key_summary(owner)['id']}: "
                f"names must be unique in a key vault ({_INDEX_HINT})"
            )


def shared_names(vault: Collection[Any], query: Mapping[str, Any]) -> str:
    """The alternate names held by more than one of the keys matching ``query``, described."""
    owners: dict[str, list[str]] = {}
    for document in vault.find(query, {"keyAltNames": 1}):
        for name in document.get("keyAltNames") or ():
            owners.setdefault(name, []).append(str(document["_id"]))
    return "; ".join(
        f"keys {' and '.join(sorted(ids))} share the alternate name {name!r}"
        for name, ids in sorted(owners.items())
        if len(ids) > 1
    )


# -- keys -------------------------------------------------------------------------------------


def cmd_keys_create(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    require_provider(settings, args.provider)
    master_key = json_object(args.master_key, "--master-key")
    opts = DataKeyOpts(master_key=master_key, key_alt_names=args.alt_name or ())
    with key_vault_session(settings, need_kms=True) as (client, client_encryption):
        _refuse_taken(client, client_encryption, settings, args.alt_name or ())
        try:
            key_id = client_encryption.create_data_key(args.provider, opts)
        except MongoCryptError as exc:
            raise OperationError(f"cannot create a data key with {args.provider}: {exc}") from exc
        key = find_key(client_encryption, str(key_id.as_uuid()))
    out.result(key, lambda: key["id"])
    return 0


def _all_keys(client_encryption: ClientEncryption, settings: Settings) -> list[dict[str, Any]]:
    with pymongo.timeout((settings.timeout_ms or DEFAULT_TIMEOUT_MS) / 1000):
        return [key_summary(doc) for doc in client_encryption.get_keys()]


def cmd_keys_list(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    with key_vault_session(settings, need_kms=False) as (_client, client_encryption):
        keys = _all_keys(client_encryption, settings)
    if args.provider:
        keys = [k for k in keys if k["provider"] == args.provider]

    def text() -> str:
        if not keys:
            return ""
        header = f"{'ID':<36}  {'PROVIDER':<14}  {'CREATED':<32}  ALT NAMES"
        return "\n".join([header, *(key_line(k) for k in keys)])

    out.result(keys, text)
    return 0


def cmd_keys_show(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    with key_vault_session(settings, need_kms=False) as (_client, client_encryption):
        key = find_key(client_encryption, args.key)
    out.result(key, lambda: key_details(key))
    return 0


def cmd_keys_delete(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    with key_vault_session(settings, need_kms=False) as (_client, client_encryption):
        key = find_key(client_encryption, args.key)
        if not args.yes:
            if not sys.stdin.isatty():
                raise UsageError(
                    f"refusing to delete key {key['id']} without --yes (data encrypted with it "
                    "can no longer be decrypted)"
                )
            sys.stderr.write(f"Delete key {key['id']}? Data encrypted with it will be lost. [y/N] ")
            sys.stderr.flush()
            if sys.stdin.readline().strip().lower() not in ("y", "yes"):
                raise OperationError("not deleted")
        result = client_encryption.delete_key(uuid.UUID(key["id"]))
    data = {"id": key["id"], "deleted": result.deleted_count}
    out.result(data, lambda: f"deleted key {key['id']}")
    return 0


def cmd_keys_add_alt_name(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    with key_vault_session(settings, need_kms=False) as (client, client_encryption):
        key = find_key(client_encryption, args.key)
        _refuse_taken(client, client_encryption, settings, [args.name], key["id"])
        before = client_encryption.add_key_alt_name(uuid.UUID(key["id"]), args.name)
        if before is None:
            raise OperationError(f"key {key['id']} was deleted meanwhile")
        key = find_key(client_encryption, key["id"])
    out.result(key, lambda: f"{key['id']}: {', '.join(key['keyAltNames'])}")
    return 0


def cmd_keys_remove_alt_name(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    with key_vault_session(settings, need_kms=False) as (_client, client_encryption):
        key = find_key(client_encryption, args.key)
        had = args.name in key["keyAltNames"]
        before = client_encryption.remove_key_alt_name(uuid.UUID(key["id"]), args.name)
        if before is None:
            raise OperationError(f"key {key['id']} was deleted meanwhile")
        key = find_key(client_encryption, key["id"])
    key["removed"] = had

    def text() -> str:
        if not had:
            return f"{key['id']} had no alternate name {args.name!r}: nothing to remove"
        return f"{key['id']}: {', '.join(key['keyAltNames']) or 'no alternate names left'}"

    out.result(key, text)
    return 0


def cmd_keys_rewrap(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    query = json_object(args.filter, "--filter") or {}
    master_key = json_object(args.master_key, "--master-key")
    if master_key is not None and args.provider is None:
        raise UsageError("--master-key needs --provider")
    if args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    opts = None
    if args.provider is not None:
        require_provider(settings, args.provider)
        opts = RewrapManyDataKeyOpts(args.provider, master_key)
    started = time.monotonic()
    rewrapped = 0
    with key_vault_session(settings, need_kms=True) as (client, client_encryption):
        vault = vault_collection(client, settings)
        with pymongo.timeout((settings.timeout_ms or DEFAULT_TIMEOUT_MS) / 1000):
            ids = [doc["_id"] for doc in vault.find(query, {"_id": 1})]
        progress = Progress(len(ids), "rewrapping")
        try:
            for start in range(0, len(ids), args.batch_size):
                batch = ids[start : start + args.batch_size]
                result = client_encryption.rewrap_many_data_key({"_id": {"$in": batch}}, opts)
                if result.bulk_write_result is not None:
                    rewrapped += result.bulk_write_result.modified_count
                progress.advance(len(batch))
        except (MongoCryptError, PyMongoError) as exc:
            cause = str(exc)
            if isinstance(exc, MongoCryptError) and _DUPLICATE_MESSAGE in cause:
                cause = f"{shared_names(vault, {'_id': {'$in': batch}}) or cause} ({_INDEX_HINT})"
            raise OperationError(
                f"rewrap stopped after {rewrapped} of {len(ids)} keys: {cause}"
            ) from exc
        finally:
            progress.close()
    duration = time.monotonic() - started
    summary = {
        "matched": len(ids),
        "rewrapped": rewrapped,
        "provider": args.provider,
        "duration_s": round(duration, 3),
    }
    target = f" to {args.provider}" if args.provider else " under their own master keys"
    out.result(
        summary,
        lambda: f"matched {len(ids)} keys, rewrapped {rewrapped}{target} in {duration:.2f} s",
    )
    return 0


def cmd_keys_create_index(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    with key_vault_session(settings, need_kms=False) as (client, _client_encryption):
        vault = vault_collection(client, settings)
        options = {k: v for k, v in ALT_NAME_INDEX.items() if k != "keys"}
        try:
            with pymongo.timeout((settings.timeout_ms or DEFAULT_TIMEOUT_MS) / 1000):
                name = vault.create_index(ALT_NAME_INDEX["keys"], **options)
        except OperationFailure as exc:
            if exc.code != _DUPLICATE_KEY:
                raise
            raise OperationError(
                f"cannot create the unique index on keyAltNames of {settings.key_vault}: "
                f"{shared_names(vault, {}) or exc}; remove the duplicates with "
                "'mongocrypt keys remove-alt-name' first"
            ) from exc
    data = {
        "namespace": settings.key_vault,
        "index": name,
        "key": dict(ALT_NAME_INDEX["keys"]),
        "unique": True,
        "partialFilterExpression": ALT_NAME_INDEX["partialFilterExpression"],
    }
    out.result(data, lambda: f"{settings.key_vault}: unique index {name} on keyAltNames")
    return 0
