"""The fields each analysed command (and each write statement) may carry.

mongocryptd parses commands strictly, so a misspelt or unknown field is an error there. The
analyzer does the same whenever a schema requires encryption: a field it does not know is a field
it has not examined, and it could hold plaintext for an encrypted field (``{fliter: {ssn: ...}}``).
"""

from __future__ import annotations

from collections.abc import Iterable

from mongocrypt.analysis import _codes as codes
from mongocrypt.analysis._errors import refuse

__all__ = ["check_fields"]

#: Generic arguments any command may carry (sessions, transactions, read/write concerns, API
#: version, routing) and the analysis fields libmongocrypt adds.
GENERIC = frozenset(
    {
        "$db",
        "lsid",
        "txnNumber",
        "autocommit",
        "startTransaction",
        "stmtId",
        "stmtIds",
        "$clusterTime",
        "$readPreference",
        "readConcern",
        "writeConcern",
        "maxTimeMS",
        "comment",
        "apiVersion",
        "apiStrict",
        "apiDeprecationErrors",
        "$audit",
        "$client",
        "$configTime",
        "$topologyTime",
        "clientOperationKey",
        "mayBypassWriteBlocking",
        "rawData",
        "jsonSchema",
        "isRemoteSchema",
        "csfleEncryptionSchemas",
        "encryptionInformation",
    }
)

COMMANDS: dict[str, frozenset[str]] = {
    "find": frozenset(
        {
            "filter",
            "projection",
            "sort",
            "hint",
            "skip",
            "limit",
            "batchSize",
            "singleBatch",
            "max",
            "min",
            "returnKey",
            "showRecordId",
            "tailable",
            "oplogReplay",
            "noCursorTimeout",
            "awaitData",
            "allowPartialResults",
            "collation",
            "allowDiskUse",
            "let",
            "readOnce",
            "term",
        }
    ),
    "count": frozenset({"query", "limit", "skip", "hint", "collation", "fields"}),
    "distinct": frozenset({"key", "query", "collation", "hint"}),
    "aggregate": frozenset(
        {
            "pipeline",
            "explain",
            "allowDiskUse",
            "cursor",
            "bypassDocumentValidation",
            "collation",
            "hint",
            "let",
        }
    ),
    "insert": frozenset({"documents", "ordered", "bypassDocumentValidation"}),
    "update": frozenset({"updates", "ordered", "bypassDocumentValidation", "let"}),
    "delete": frozenset({"deletes", "ordered", "let"}),
    "findAndModify": frozenset(
        {
            "query",
            "sort",
            "remove",
            "update",
            "new",
            "fields",
            "upsert",
            "bypassDocumentValidation",
            "collation",
            "arrayFilters",
            "hint",
            "let",
        }
    ),
    "explain": frozenset({"verbosity"}),
    "create": frozenset(
        {
            "capped",
            "size",
            "max",
            "autoIndexId",
            "storageEngine",
            "validator",
            "validationLevel",
            "validationAction",
            "indexOptionDefaults",
            "viewOn",
            "pipeline",
            "collation",
            "timeseries",
            "expireAfterSeconds",
            "clusteredIndex",
            "changeStreamPreAndPostImages",
            "encryptedFields",
            "idIndex",
            "flags",
        }
    ),
    "collMod": frozenset(
        {
            "validator",
            "validationLevel",
            "validationAction",
            "index",
            "viewOn",
            "pipeline",
            "expireAfterSeconds",
            "changeStreamPreAndPostImages",
            "timeseries",
            "cappedSize",
            "cappedMax",
            "dryRun",
        }
    ),
    "createIndexes": frozenset({"indexes", "commitQuorum", "ignoreUnknownIndexOptions"}),
    "bulkWrite": frozenset(
        {"ops", "nsInfo", "ordered", "bypassDocumentValidation", "let", "errorsOnly", "cursor"}
    ),
}

STATEMENTS: dict[str, frozenset[str]] = {
    "update": frozenset(
        {"q", "u", "c", "upsert", "multi", "arrayFilters", "collation", "hint", "sort"}
    ),
    "delete": frozenset({"q", "limit", "collation", "hint"}),
    "bulkWrite.insert": frozenset({"insert", "document"}),
    "bulkWrite.update": frozenset(
        {
            "update",
            "filter",
            "updateMods",
            "constants",
            "multi",
            "upsert",
            "arrayFilters",
            "collation",
            "hint",
            "sort",
        }
    ),
    "bulkWrite.delete": frozenset({"delete", "filter", "multi", "collation", "hint"}),
}


def check_fields(name: str, document: Iterable[str], allowed: Iterable[str]) -> None:
    """Refuse a field name of ``document`` (a command ``name`` or one of its statements, or just
    its field names) that is not in ``allowed``.

    :raises QueryAnalysisError: naming the field (40415, as the server's strict parser).
    """
    known = frozenset(allowed)
    for key in document:
        if key not in known:
            refuse(f"BSON field '{name}.{key}' is an unknown field.", codes.UNKNOWN_FIELD)
