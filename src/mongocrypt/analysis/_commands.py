"""Commands: the per-command analysis and the reply (the protocol fields are read by
``_protocol``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Callable

import bson
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.errors import BSONError

from mongocrypt.analysis import _codes as codes
from mongocrypt.analysis._errors import refuse
from mongocrypt.analysis._fields import COMMANDS, GENERIC, STATEMENTS, check_fields
from mongocrypt.analysis._filter import FilterAnalyzer, Style
from mongocrypt.analysis._jsonschema import parse_json_schema
from mongocrypt.analysis._markings import Marker
from mongocrypt.analysis._pipeline import Catalog, PipelineAnalyzer
from mongocrypt.analysis._projection import check_sort, project
from mongocrypt.analysis._protocol import Params, build_catalog, infer_database, read_params
from mongocrypt.analysis._tree import Fle1Meta, Kind, QeField, resolve
from mongocrypt.analysis._types import is_operator
from mongocrypt.analysis._writes import WriteAnalyzer

__all__ = ["DECODE", "ENCODE", "analyze_command"]

#: How commands are decoded: key ids stay BinData subtype 4, every BSON date survives.
DECODE: CodecOptions[dict[str, Any]] = CodecOptions(
    uuid_representation=UuidRepresentation.UNSPECIFIED,
    datetime_conversion=DatetimeConversion.DATETIME_AUTO,
)
ENCODE: CodecOptions[dict[str, Any]] = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)

ANALYZED = (
    "aggregate",
    "count",
    "distinct",
    "delete",
    "find",
    "findAndModify",
    "insert",
    "update",
    "explain",
    "create",
    "createIndexes",
    "collMod",
    "bulkWrite",
)
_ALIASES = {"findandmodify": "findAndModify"}
_SEQUENCES = {"insert": "documents", "update": "updates", "delete": "deletes"}
_ANALYSIS_FIELDS = ("$db", "jsonSchema", "isRemoteSchema", "csfleEncryptionSchemas")
_SCHEMA_COMMANDS = ("create", "collMod", "createIndexes")


def normalize(command: Mapping[str, Any]) -> dict[str, Any]:
    """A private, plain-dict copy of ``command`` (so nothing the caller holds is modified)."""
    try:
        return bson.decode(bson.encode(command, codec_options=ENCODE), codec_options=DECODE)
    except (BSONError, TypeError, ValueError, OverflowError) as exc:
        refuse(f"The command cannot be encoded as BSON: {type(exc).__name__}", codes.BAD_VALUE)


def analyze_command(command: Mapping[str, Any]) -> dict[str, Any]:
    """mongocryptd's reply to ``command`` (see :func:`mongocrypt.analysis.analyze`)."""
    if not isinstance(command, Mapping):
        refuse("The command must be a document", codes.BAD_VALUE)
    cmd = normalize(command)
    if not cmd:
        refuse("The command is empty", codes.BAD_VALUE)
    name = _ALIASES.get(next(iter(cmd)), next(iter(cmd)))
    if name not in ANALYZED:
        refuse(f"command not supported for auto encryption: {name}")
    if name == "bulkWrite":
        return _BulkWrite(cmd).reply()
    params = read_params(cmd, name)
    inner = cmd.get("explain") if name == "explain" else cmd
    if not isinstance(inner, Mapping) or not inner:
        refuse("explain needs the command to explain", codes.BAD_VALUE)
    inner_name = _ALIASES.get(next(iter(inner)), next(iter(inner)))
    if name == "explain":
        _check_explained(cmd, inner, inner_name)
    collection = inner[next(iter(inner))]
    if not isinstance(collection, str) or not collection:
        refuse(f"non-collection command not supported for auto encryption: {inner_name}")
    database = cmd["$db"] if isinstance(cmd.get("$db"), str) else None
    database = database or infer_database(params, collection)
    catalog = build_catalog(params, database, f"{database}.{collection}", inner_name)
    if inner_name in ("create", "collMod"):
        _refuse_views(inner)
    analysis = _Analysis(catalog)
    requires = any(tree.encrypted_below for tree in catalog.trees.values())
    if not requires:
        result = _stripped(cmd, name)
    elif name == "explain":
        result = analysis.explain(cmd, inner, inner_name)
    else:
        result = analysis.command(cmd, name)
    return {
        "hasEncryptionPlaceholders": analysis.marker.count > 0,
        "schemaRequiresEncryption": requires,
        "result": result,
        "ok": 1.0,
    }


def _check_explained(cmd: Mapping[str, Any], inner: Mapping[str, Any], inner_name: str) -> None:
    for key, code in (
        ("jsonSchema", codes.EXPLAIN_INNER_JSON_SCHEMA),
        ("isRemoteSchema", codes.EXPLAIN_INNER_REMOTE_SCHEMA),
        ("encryptionInformation", codes.EXPLAIN_INNER_ENCRYPTION_INFORMATION),
    ):
        if key in inner:
            refuse(f"{key} is not allowed in the command being explained", code)
    if "$db" in inner and "$db" in cmd and inner["$db"] != cmd["$db"]:
        refuse("The explained command's $db must match explain's", codes.INVALID_NAMESPACE)
    if inner_name not in ANALYZED or inner_name in ("explain", "bulkWrite"):
        refuse(f"command not supported for auto encryption: {inner_name}")


def _refuse_views(cmd: Mapping[str, Any]) -> None:
    if "viewOn" in cmd or "pipeline" in cmd:
        refuse("Creating a view is not supported with automatic encryption", codes.VIEW_CREATION)


def _stripped(cmd: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The command without the analysis fields (what a no-encryption reply carries)."""
    dropped = _ANALYSIS_FIELDS + (("encryptionInformation",) if name in _SCHEMA_COMMANDS else ())
    return {k: v for k, v in cmd.items() if k not in dropped}


def _is_simple(collation: Any) -> bool:
    return collation is None or (
        isinstance(collation, Mapping) and collation.get("locale") == "simple"
    )


# -- per-command analysis -----------------------------------------------------------------------


class _Analysis:
    """Analyses one (non-bulkWrite) command against its catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.marker = Marker()
        self.tree = catalog.trees[catalog.namespace]
        self.qe = catalog.namespace in catalog.qe

    def _filter(self, query: Any, collation: Any = None, style: Style = Style.NORMALIZED) -> Any:
        self.marker.simple_collation = _is_simple(collation)
        return FilterAnalyzer(self.tree, self.marker, style, qe=self.qe).analyze(query)

    def command(self, cmd: Mapping[str, Any], name: str) -> dict[str, Any]:
        check_fields(name, list(cmd)[1:], GENERIC | COMMANDS[name])
        handler: Callable[[Mapping[str, Any]], dict[str, Any]] = getattr(self, f"_{name}")
        analysed = handler(cmd)
        result = {k: analysed.get(k, v) for k, v in cmd.items() if k not in _ANALYSIS_FIELDS}
        if name in _SCHEMA_COMMANDS:
            result.pop("encryptionInformation", None)
        sequence = _SEQUENCES.get(name)
        if sequence in result:
            result[sequence] = result.pop(sequence)
        return result

    def explain(
        self, cmd: Mapping[str, Any], inner: Mapping[str, Any], inner_name: str
    ) -> dict[str, Any]:
        check_fields("explain", list(cmd)[1:], GENERIC | COMMANDS["explain"])
        explained = self.command({k: v for k, v in inner.items() if k != "$db"}, inner_name)
        if "encryptionInformation" in cmd and inner_name not in _SCHEMA_COMMANDS:
            explained["encryptionInformation"] = cmd["encryptionInformation"]
        result: dict[str, Any] = {
            "explain": explained,
            "verbosity": cmd.get("verbosity", "allPlansExecution"),
        }
        for key, value in cmd.items():
            if key not in ("explain", "verbosity", "encryptionInformation", *_ANALYSIS_FIELDS):
                result[key] = value
        return result

    # -- reads --------------------------------------------------------------------------------

    def _find(self, cmd: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "filter" in cmd:
            out["filter"] = self._filter(cmd["filter"], cmd.get("collation"))
        for bound in ("sort", "min", "max"):
            if cmd.get(bound) is not None:
                check_sort(cmd[bound], self.tree, bound)
        if "projection" in cmd and cmd["projection"] is not None:
            out["projection"] = self._projection(cmd["projection"])
        return out

    def _projection(self, spec: Any) -> Any:
        if not isinstance(spec, Mapping):
            refuse("projection must be an object", codes.BAD_VALUE)
        if not spec:
            return spec
        return project(spec, self.tree, self.marker, qe=self.qe, find=True)[0]

    def _count(self, cmd: Mapping[str, Any]) -> dict[str, Any]:
        if cmd.get("query") is None:
            return {}
        return {"query": self._filter(cmd["query"], cmd.get("collation"))}

    def _distinct(self, cmd: Mapping[str, Any]) -> dict[str, Any]:
        key = cmd.get("key")
        if not isinstance(key, str) or not key:
            refuse("distinct needs a key", codes.BAD_VALUE)
        found = resolve(self.tree, key.split("."))
        if found.kind is Kind.PREFIX:
            refuse(
                f"Distinct key '{key}' is not allowed to be a prefix of an encrypted field",
                codes.DISTINCT_PREFIX_KEY,
            )
        if found.kind in (Kind.INSIDE, Kind.UNKNOWN):
            refuse(
                f"Invalid operation on path '{key}' which contains an encrypted path prefix.",
                codes.PATH_THROUGH_ENCRYPTED,
            )
        meta = found.meta
        if isinstance(meta, QeField):
            refuse(
                "Distinct key is not allowed to be marked for encryption with Queryable "
                f"Encryption: '{key}'",
                codes.DISTINCT_QE_KEY,
            )
        if isinstance(meta, Fle1Meta):
            if meta.key_pointer is not None:
                refuse(
                    "The distinct key is not allowed to be marked for encryption with a non-UUID "
                    f"keyId: '{key}'",
                    codes.DISTINCT_KEY_POINTER,
                )
            if not meta.deterministic:
                refuse(
                    "Distinct key is not allowed to be marked for encryption with the randomized "
                    f"encryption algorithm: '{key}'",
                    codes.DISTINCT_QE_KEY,
                )
            if not _is_simple(cmd.get("collation")) and "string" in (meta.bson_types or ()):
                refuse(
                    f"Distinct key '{key}' of type string cannot use a non-simple collation with "
                    "client-side encryption",
                    codes.DISTINCT_COLLATION,
                )
        if cmd.get("query") is None:
            return {}
        return {"query": self._filter(cmd["query"], cmd.get("collation"))}

    def _aggregate(self, cmd: Mapping[str, Any]) -> dict[str, Any]:
        self.marker.simple_collation = _is_simple(cmd.get("collation"))
        # mongocryptd re-serialises a CSFLE $match ({f: {$eq: <marking>}}) but keeps a Queryable
        # Encryption one in the user's shape (its recorded replies).
        style = Style.IN_PLACE if self.qe else Style.NORMALIZED
        pipeline, _ = PipelineAnalyzer(self.catalog, self.marker, style, qe=self.qe).analyze(
            cmd.get("pipeline"), self.tree
        )
        return {"pipeline": pipeline}

    # -- writes -------------------------------------------------------------------------------

    def _writer(self) -> WriteAnalyzer:
        return WriteAnalyzer(self.tree, self.marker, qe=self.qe)

    def _insert(self, cmd: Mapping[str, Any]) -> dict[str, Any]:
        documents = cmd.get("documents")
        if not isinstance(documents, list):
            refuse("insert needs a documents array", codes.BAD_VALUE)
        writer = self._writer()
        return {"documents": [writer.insert(d) for d in documents]}

    def _update_document(self, update: Any, upsert: bool, find_and_modify: bool = False) -> Any:
        writer = self._writer()
        if isinstance(update, list):
            return writer.pipeline(update, upsert=upsert, find_and_modify=find_and_modify)
        if not isinstance(update, Mapping):
            refuse("An update must be an object or a pipeline", codes.BAD_VALUE)
        if is_operator(update):
            return writer.modifier(update, upsert=upsert)
        return writer.replacement(update, upsert=upsert)

    def _update(self, cmd: Mapping[str, Any]) -> dict[str, Any]:
        out = []
        for statement in _statements(cmd, "update", "updates", ("q", "u")):
            if self.qe and statement.get("multi"):
                refuse(
                    "Multi-document updates are not allowed with Queryable Encryption",
                    codes.QE_MULTI_UPDATE,
                )
            marked = dict(statement)
            marked["q"] = self._filter(statement["q"], statement.get("collation"))
            if statement.get("sort") is not None:
                check_sort(statement["sort"], self.tree)
            marked["u"] = self._update_document(statement["u"], bool(statement.get("upsert")))
            out.append(marked)
        return {"updates": out}

    def _delete(self, cmd: Mapping[str, Any]) -> dict[str, Any]:
        out = []
        for statement in _statements(cmd, "delete", "deletes", ("q",)):
            if self.qe and statement.get("limit", 0) == 0:
                refuse(
                    "Only single document deletes are permitted with Queryable Encryption",
                    codes.QE_MULTI_DELETE,
                )
            marked = dict(statement)
            marked["q"] = self._filter(statement["q"], statement.get("collation"))
            out.append(marked)
        return {"deletes": out}

    def _findAndModify(self, cmd: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.qe and cmd.get("fields") is not None:
            refuse(
                "findAndModify with fields is not allowed with Queryable Encryption",
                codes.BAD_VALUE,
            )
        if self.qe and cmd.get("new"):
            refuse(
                "findAndModify with new: true is not allowed with Queryable Encryption",
                codes.BAD_VALUE,
            )
        if cmd.get("query") is not None:
            out["query"] = self._filter(cmd["query"], cmd.get("collation"))
        if cmd.get("sort") is not None:
            check_sort(cmd["sort"], self.tree)
        if cmd.get("fields") is not None:
            out["fields"] = self._projection(cmd["fields"])
        if cmd.get("update") is not None:
            out["update"] = self._update_document(
                cmd["update"], bool(cmd.get("upsert")), find_and_modify=True
            )
        return out

    # -- collection and index definitions -----------------------------------------------------

    def _validator(self, validator: Any, code: int, what: str) -> None:
        if not isinstance(validator, Mapping):
            refuse(f"{what} must be an object", codes.BAD_VALUE)
        if set(validator) == {"$jsonSchema"} and not self.qe:
            schema = validator["$jsonSchema"]
            if parse_json_schema(schema, True).signature() != self.tree.signature():
                refuse(
                    "The $jsonSchema validator does not describe the same encrypted fields as the "
                    "schema used for automatic encryption",
                    codes.VALIDATOR_SCHEMA_DIFFERS,
                )
            return
        before = self.marker.count
        self._filter(validator)
        if self.marker.count != before:
            refuse(f"Comparison to encrypted fields not supported in {what}.", code)

    def _create(self, cmd: Mapping[str, Any]) -> dict[str, Any]:
        if cmd.get("validator") is not None:
            self._validator(
                cmd["validator"], codes.VALIDATOR_COMPARES_ENCRYPTED, "collection validator"
            )
        return {}

    def _collMod(self, cmd: Mapping[str, Any]) -> dict[str, Any]:
        return self._create(cmd)

    def _createIndexes(self, cmd: Mapping[str, Any]) -> dict[str, Any]:
        indexes = cmd.get("indexes")
        if not isinstance(indexes, list):
            refuse("createIndexes needs an indexes array", codes.BAD_VALUE)
        for index in indexes:
            if isinstance(index, Mapping) and index.get("partialFilterExpression") is not None:
                self._validator(
                    index["partialFilterExpression"],
                    codes.PARTIAL_INDEX_COMPARES_ENCRYPTED,
                    "a partialFilterExpression",
                )
        return {}


class _BulkWrite:
    """The bulkWrite command (Queryable Encryption only; one namespace)."""

    def __init__(self, cmd: dict[str, Any]) -> None:
        self.cmd = cmd

    def reply(self) -> dict[str, Any]:
        cmd = self.cmd
        if "$db" in cmd and cmd["$db"] != "admin":
            refuse("bulkWrite must run against the admin database", codes.INVALID_NAMESPACE)
        if "jsonSchema" in cmd or "csfleEncryptionSchemas" in cmd or "isRemoteSchema" in cmd:
            refuse("The bulkWrite command only supports Queryable Encryption", codes.BAD_VALUE)
        if "encryptionInformation" in cmd:
            refuse(
                "bulkWrite carries encryptionInformation in nsInfo, not at the top level",
                codes.BAD_VALUE,
            )
        ns_info = cmd.get("nsInfo")
        if (
            not isinstance(ns_info, list)
            or len(ns_info) != 1
            or not isinstance(ns_info[0], Mapping)
        ):
            refuse(
                "bulkWrite with Queryable Encryption needs exactly one nsInfo entry",
                codes.BAD_VALUE,
            )
        entry = ns_info[0]
        namespace = entry.get("ns")
        info = entry.get("encryptionInformation")
        if not isinstance(namespace, str) or not isinstance(info, Mapping):
            refuse("bulkWrite nsInfo must carry ns and encryptionInformation", codes.BAD_VALUE)
        params = Params(encryption_information=info)
        database = namespace.partition(".")[0]
        catalog = build_catalog(params, database, namespace, "bulkWrite")
        analysis = _Analysis(catalog)
        requires = catalog.trees[namespace].encrypted_below
        result = {k: v for k, v in cmd.items() if k != "$db"}
        if requires:
            check_fields("bulkWrite", list(cmd)[1:], GENERIC | COMMANDS["bulkWrite"])
            result["ops"] = self._ops(analysis, cmd.get("ops"))
        return {
            "hasEncryptionPlaceholders": analysis.marker.count > 0,
            "schemaRequiresEncryption": requires,
            "result": result,
            "ok": 1.0,
        }

    @staticmethod
    def _ops(analysis: _Analysis, ops: Any) -> list[Any]:
        if not isinstance(ops, list):
            refuse("bulkWrite needs an ops array", codes.BAD_VALUE)
        kinds = [next(iter(op), None) if isinstance(op, Mapping) else None for op in ops]
        if len(ops) > 1 and any(kind != "insert" for kind in kinds):
            refuse(
                "Only insert is supported in BulkWrite with multiple operations and Queryable "
                "Encryption.",
                codes.BAD_VALUE,
            )
        out = []
        for op, kind in zip(ops, kinds):
            if kind not in ("insert", "update", "delete"):
                refuse(f"Unknown bulkWrite operation: {kind}", codes.BAD_VALUE)
            if op[kind] != 0:
                refuse("bulkWrite operations must target nsInfo index 0", codes.BAD_VALUE)
            check_fields(f"bulkWrite.ops.{kind}", op, STATEMENTS[f"bulkWrite.{kind}"])
            marked = dict(op)
            if kind == "insert":
                marked["document"] = analysis._writer().insert(op.get("document"))
            else:
                if op.get("multi"):
                    refuse(
                        "Multi-document updates are not allowed with Queryable Encryption",
                        codes.QE_MULTI_UPDATE if kind == "update" else codes.QE_MULTI_DELETE,
                    )
                marked["filter"] = analysis._filter(op.get("filter"), op.get("collation"))
                if op.get("sort") is not None:
                    check_sort(op["sort"], analysis.tree)
                if kind == "update":
                    if "updateMods" not in op:
                        refuse("bulkWrite update needs updateMods", codes.BAD_VALUE)
                    marked["updateMods"] = analysis._update_document(
                        op["updateMods"], bool(op.get("upsert"))
                    )
            out.append(marked)
        return out


def _statements(
    cmd: Mapping[str, Any], command: str, array: str, required: tuple[str, ...]
) -> Iterator[Mapping[str, Any]]:
    """The statements of an update or delete, each checked for its ``required`` and known fields."""
    statements = cmd.get(array)
    if not isinstance(statements, list):
        article = "an" if array[0] in "aeiou" else "a"
        refuse(f"{command} needs {article} {array} array", codes.BAD_VALUE)
    for statement in statements:
        if not isinstance(statement, Mapping) or any(name not in statement for name in required):
            refuse(f"Each {command} statement needs {' and '.join(required)}", codes.BAD_VALUE)
        check_fields(f"{command}.{array}", statement, STATEMENTS[command])
        yield statement
