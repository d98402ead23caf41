"""Embedded query analysis: mongocryptd's marking of commands for automatic encryption, in
process and fail-closed.

:func:`analyze` takes the command libmongocrypt sends to query analysis (the user's command plus
``jsonSchema``/``isRemoteSchema`` or ``csfleEncryptionSchemas`` for CSFLE, ``encryptionInformation``
for Queryable Encryption) and returns the reply mongocryptd would:
``{hasEncryptionPlaceholders, schemaRequiresEncryption, result, ok}``, where ``result`` is the
command with every value bound for an encrypted field replaced by a marking (BinData subtype 6:
FLE1 intent-to-encrypt markings, FLE2 placeholders). :func:`mark_command` is the same on BSON,
the shape of the engine's markings callback.

Covered: insert, find, count, distinct, update (modifiers, replacements, upserts, pipelines that
leave encrypted fields alone), delete, findAndModify, aggregate (``$match``, ``$project``,
``$addFields``/``$set``, ``$unset``, ``$replaceRoot``/``$replaceWith``, ``$group``, ``$bucket``,
``$bucketAuto``, ``$sortByCount``, ``$count``, ``$sort``, ``$limit``, ``$skip``, ``$sample``,
``$unwind``, ``$lookup``, ``$graphLookup``, ``$geoNear``, ``$documents``, ``$collStats``),
explain, create/collMod/createIndexes (validators and partial indexes are checked, never marked),
bulkWrite (Queryable Encryption); equality, range and text-search Queryable Encryption indexes.

Whatever it cannot prove safe it refuses with :class:`~mongocrypt.errors.QueryAnalysisError`
(mongocryptd's message and code where known): plaintext for an encrypted field is never passed
through. Errors name fields and operators, never values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import bson
from bson.errors import BSONError

from mongocrypt.analysis import _codes as codes
from mongocrypt.analysis._commands import DECODE, ENCODE, analyze_command
from mongocrypt.analysis._errors import refuse
from mongocrypt.analysis._hello import HELLO_NAMES, MAX_WIRE_VERSION, hello_reply
from mongocrypt.errors import QueryAnalysisError

__all__ = ["MAX_WIRE_VERSION", "QueryAnalysisError", "analyze", "mark_command"]


def analyze(command: Mapping[str, Any]) -> dict[str, Any]:
    """mongocryptd's reply to ``command``.

    :param command: the command as libmongocrypt sends it to query analysis, decoded (key ids as
        BinData subtype 4, e.g. ``bson.decode(data, codec_options=CodecOptions(
        uuid_representation=UuidRepresentation.UNSPECIFIED))``; ``uuid.UUID`` values, raw BSON
        documents and SON are accepted too); ``$db`` may be present or not.
    :returns: ``{"hasEncryptionPlaceholders": bool, "schemaRequiresEncryption": bool,
        "result": <the marked command>, "ok": 1.0}``.
    :raises QueryAnalysisError: for anything refused or not understood, with mongocryptd's
        message and code where they are known.
    """
    try:
        return analyze_command(command)
    except RecursionError:
        refuse("The command is nested too deeply to be analysed", codes.BAD_VALUE)


def mark_command(database: str, command: bytes) -> bytes:
    """The markings callback: mongocryptd's reply (BSON) to ``command`` (BSON) run on
    ``database``.

    libmongocrypt first sends ``{isMaster: 1}`` when the command's form depends on mongocryptd's
    version (``create``, ``$lookup``); that probe is answered as mongocryptd answers it, with
    :data:`MAX_WIRE_VERSION`.

    :param database: the database the command runs on (added as ``$db`` when missing).
    :param command: the command libmongocrypt wants marked.
    :raises QueryAnalysisError: as :func:`analyze` does, and for bytes that are not BSON.
    """
    try:
        document = bson.decode(command, codec_options=DECODE)
    except (BSONError, TypeError, ValueError) as exc:
        refuse(f"The marking command is not valid BSON: {type(exc).__name__}", codes.BAD_VALUE)
    name = next(iter(document), "")
    if name.lower() in HELLO_NAMES:
        return bson.encode(hello_reply(name))
    if "$db" not in document:
        document["$db"] = database
    return bson.encode(analyze(document), codec_options=ENCODE)
