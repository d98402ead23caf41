"""The analysis protocol: the schema fields libmongocrypt adds to a command (``jsonSchema`` and
``isRemoteSchema``, ``csfleEncryptionSchemas``, ``encryptionInformation``), checked, and the
catalog of encryption trees they describe."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

from mongocrypt.analysis import _codes as codes
from mongocrypt.analysis._errors import refuse
from mongocrypt.analysis._jsonschema import parse_json_schema
from mongocrypt.analysis._pipeline import Catalog
from mongocrypt.analysis._qe import parse_encrypted_fields
from mongocrypt.analysis._tree import PLAIN, Node

__all__ = ["Params", "build_catalog", "infer_database", "read_params"]


@dataclass
class Params:
    """The analysis fields of a command, checked."""

    json_schema: Optional[Mapping[str, Any]] = None
    remote: Optional[bool] = None
    csfle_schemas: Optional[Mapping[str, Any]] = None
    encryption_information: Optional[Mapping[str, Any]] = None


def read_params(cmd: Mapping[str, Any], name: str) -> Params:
    """The analysis fields of ``cmd`` (the command ``name``), each checked on its own and
    against the others."""
    params = Params()
    if "jsonSchema" in cmd:
        if not isinstance(cmd["jsonSchema"], Mapping):
            refuse("jsonSchema must be an object", codes.JSON_SCHEMA_NOT_OBJECT)
        params.json_schema = cmd["jsonSchema"]
    if "isRemoteSchema" in cmd:
        if not isinstance(cmd["isRemoteSchema"], bool):
            refuse("isRemoteSchema must be a boolean", codes.REMOTE_SCHEMA_NOT_BOOL)
        params.remote = cmd["isRemoteSchema"]
    if "encryptionInformation" in cmd:
        if not isinstance(cmd["encryptionInformation"], Mapping):
            refuse(
                "encryptionInformation must be an object", codes.ENCRYPTION_INFORMATION_NOT_OBJECT
            )
        params.encryption_information = cmd["encryptionInformation"]
    if "csfleEncryptionSchemas" in cmd:
        explained = cmd.get("explain") if name == "explain" else None
        if name != "aggregate" and not (
            isinstance(explained, Mapping) and next(iter(explained), None) == "aggregate"
        ):
            refuse(
                "csfleEncryptionSchemas is only supported for the aggregate command",
                codes.CSFLE_SCHEMAS_NOT_AGGREGATE,
            )
        if not isinstance(cmd["csfleEncryptionSchemas"], Mapping):
            refuse("csfleEncryptionSchemas must be an object", codes.CSFLE_SCHEMAS_NOT_OBJECT)
        params.csfle_schemas = cmd["csfleEncryptionSchemas"]
    if params.json_schema is not None and params.encryption_information is not None:
        refuse(
            "jsonSchema and encryptionInformation cannot be used together",
            codes.JSON_SCHEMA_WITH_ENCRYPTION_INFORMATION,
        )
    if params.remote is not None and params.encryption_information is not None:
        refuse(
            "isRemoteSchema and encryptionInformation cannot be used together",
            codes.REMOTE_SCHEMA_WITH_ENCRYPTION_INFORMATION,
        )
    if params.json_schema is not None and params.csfle_schemas is not None:
        refuse(
            "jsonSchema and csfleEncryptionSchemas cannot be used together",
            codes.JSON_SCHEMA_WITH_CSFLE_SCHEMAS,
        )
    if (params.json_schema, params.csfle_schemas, params.encryption_information) == (None,) * 3:
        refuse("jsonSchema or encryptionInformation is required", codes.SCHEMA_MISSING)
    if params.json_schema is not None and params.remote is None:
        refuse("isRemoteSchema is required when jsonSchema is given", codes.REMOTE_SCHEMA_MISSING)
    return params


def _schema_namespaces(params: Params) -> list[str]:
    names: list[str] = []
    if params.csfle_schemas is not None:
        names.extend(params.csfle_schemas)
    schema = (params.encryption_information or {}).get("schema")
    if isinstance(schema, Mapping):
        names.extend(schema)
    return names


def infer_database(params: Params, collection: str) -> str:
    """The database, when ``$db`` was removed: from the schema namespace naming the collection."""
    names = _schema_namespaces(params)
    for namespace in names:
        database, _, coll = namespace.partition(".")
        if coll == collection:
            return database
    return names[0].partition(".")[0] if names else ""


def build_catalog(params: Params, database: str, namespace: str, name: str) -> Catalog:
    trees: dict[str, Node] = {}
    qe: set[str] = set()
    multiple = False
    if params.json_schema is not None:
        assert params.remote is not None
        trees[namespace] = parse_json_schema(params.json_schema, params.remote)
    if params.csfle_schemas is not None:
        multiple = True
        for ns, entry in params.csfle_schemas.items():
            if not isinstance(entry, Mapping):
                refuse(
                    f"csfleEncryptionSchemas['{ns}'] must be an object",
                    codes.CSFLE_SCHEMAS_ENTRY_NOT_OBJECT,
                )
            if "isRemoteSchema" not in entry:
                refuse(
                    f"csfleEncryptionSchemas['{ns}'] needs isRemoteSchema",
                    codes.CSFLE_SCHEMAS_ENTRY_REMOTE_SCHEMA,
                )
            schema, remote = entry.get("jsonSchema"), entry["isRemoteSchema"]
            if not isinstance(schema, Mapping):
                refuse(
                    f"csfleEncryptionSchemas['{ns}'].jsonSchema must be an object",
                    codes.JSON_SCHEMA_NOT_OBJECT,
                )
            if not isinstance(remote, bool):
                refuse(
                    f"csfleEncryptionSchemas['{ns}'].isRemoteSchema must be a bool",
                    codes.REMOTE_SCHEMA_NOT_BOOL,
                )
            trees[ns] = parse_json_schema(schema, remote)
    if params.encryption_information is not None:
        info = params.encryption_information
        if info.get("type", 1) != 1:
            refuse("encryptionInformation.type must be 1", codes.BAD_VALUE)
        schema = info.get("schema")
        if not isinstance(schema, Mapping) or not schema:
            refuse("encryptionInformation.schema must be a non-empty object", codes.BAD_VALUE)
        if name != "aggregate" and len(schema) != 1:
            refuse(
                "encryptionInformation.schema must have exactly one namespace",
                codes.ENCRYPTION_INFORMATION_NAMESPACES,
            )
        if len(schema) > 1:
            multiple = True
        for ns, efc in schema.items():
            if ns in trees:
                refuse(
                    f"Namespace '{ns}' has both a JSON schema and encryptedFields",
                    codes.NAMESPACE_WITH_BOTH_SCHEMAS,
                )
            trees[ns] = parse_encrypted_fields(efc, ns) if efc else PLAIN
            qe.add(ns)
    if namespace not in trees:
        if params.csfle_schemas is not None:
            refuse(
                f"csfleEncryptionSchemas must contain the command's namespace {namespace}",
                codes.CSFLE_SCHEMAS_WITHOUT_NAMESPACE,
            )
        refuse(
            f"encryptionInformation must contain the command's namespace {namespace}",
            codes.ENCRYPTION_INFORMATION_WITHOUT_NAMESPACE,
        )
    return Catalog(database, namespace, trees, qe, multiple)
