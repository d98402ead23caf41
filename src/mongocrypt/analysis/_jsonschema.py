"""CSFLE: a collection's ``$jsonSchema`` (remote or from the client's schema map) as an
encryption tree, with mongocryptd's rules on where ``encrypt`` and ``encryptMetadata`` may appear
and how algorithms and keys are inherited."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Optional

from bson.binary import Binary

from mongocrypt.analysis import _codes as codes
from mongocrypt.analysis._errors import refuse
from mongocrypt.analysis._tree import DETERMINISTIC, RANDOM, Fle1Meta, Kind, Node, resolve
from mongocrypt.analysis._types import BSON_TYPE_NAMES

__all__ = ["ALGORITHMS", "parse_json_schema"]

ALGORITHMS = {
    "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic": DETERMINISTIC,
    "AEAD_AES_256_CBC_HMAC_SHA_512-Random": RANDOM,
}
_ALL_KEYWORDS = frozenset(
    {
        "additionalItems",
        "additionalProperties",
        "allOf",
        "anyOf",
        "bsonType",
        "dependencies",
        "description",
        "encrypt",
        "encryptMetadata",
        "enum",
        "exclusiveMaximum",
        "exclusiveMinimum",
        "items",
        "maxItems",
        "maxLength",
        "maxProperties",
        "maximum",
        "minItems",
        "minLength",
        "minProperties",
        "minimum",
        "multipleOf",
        "not",
        "oneOf",
        "pattern",
        "patternProperties",
        "properties",
        "required",
        "title",
        "type",
        "uniqueItems",
    }
)
_UNSUPPORTED_KEYWORDS = frozenset({"$ref", "$schema", "default", "definitions", "format", "id"})
_NOT_FOR_ENCRYPTION = frozenset({"dependencies"})
_LOCAL_KEYWORDS = frozenset(
    {
        "additionalItems",
        "additionalProperties",
        "allOf",
        "anyOf",
        "bsonType",
        "description",
        "encrypt",
        "encryptMetadata",
        "items",
        "not",
        "oneOf",
        "patternProperties",
        "properties",
        "title",
        "type",
    }
)
_JSON_TYPES = frozenset({"object", "array", "number", "boolean", "string", "null", "integer"})
#: Types neither algorithm can encrypt, and those only Random can.
_NEVER = frozenset({"minKey", "maxKey", "undefined", "null"})
_RANDOM_ONLY = frozenset({"double", "decimal", "bool", "object", "array", "javascriptWithScope"})
_INVALID_ENCRYPT = "Invalid schema containing the 'encrypt' keyword."
_INVALID_METADATA = "Invalid schema containing the 'encryptMetadata' keyword."


def parse_json_schema(schema: Mapping[str, Any], remote: bool) -> Node:
    """The encryption tree of ``schema``.

    :param schema: the JSON schema (``{}`` for a collection without one).
    :param remote: whether it came from the server (``isRemoteSchema``); a local schema may use
        only the keywords that matter to encryption.
    :raises QueryAnalysisError: with mongocryptd's message and code for an invalid schema.
    """
    if not isinstance(schema, Mapping):
        refuse("$jsonSchema must be an object", codes.JSON_SCHEMA_NOT_OBJECT)
    root = _Parser(remote).parse(schema, None, encrypt_allowed=False, path="")
    found = resolve(root, ["_id"])
    if found.kind is Kind.ENCRYPTED and getattr(found.meta, "algorithm", None) == RANDOM:
        refuse(
            f"{_INVALID_ENCRYPT[:-1]}, AEAD_AES_256_CBC_HMAC_SHA_512-Random encryption "
            "algorithm not allowed.",
            codes.RANDOM_WITH_TYPE,
        )
    return root


class _Inherited:
    """The algorithm and key an ``encryptMetadata`` above passes down."""

    __slots__ = ("algorithm", "key")

    def __init__(self, algorithm: Optional[int], key: Optional[Binary | str]) -> None:
        self.algorithm = algorithm
        self.key = key


class _Parser:
    def __init__(self, remote: bool) -> None:
        self.remote = remote

    def parse(
        self,
        schema: Any,
        inherited: Optional[_Inherited],
        *,
        encrypt_allowed: bool,
        path: str,
        forbidden: bool = False,
    ) -> Node:
        """One subschema. ``encrypt_allowed``: the parent pins the type to object;
        ``forbidden``: inside items/allOf/anyOf/oneOf/not or a dotted property name."""
        if not isinstance(schema, Mapping):
            refuse(f"$jsonSchema subschema at '{path}' must be an object", codes.FAILED_TO_PARSE)
        self._check_keywords(schema)
        if "encrypt" in schema:
            others = [keyword for keyword in schema if keyword != "encrypt"]
            if others:
                refuse(
                    f"'encrypt' cannot be used in conjunction with '{others[0]}'",
                    codes.ENCRYPT_WITH_OTHER_KEYWORD,
                )
            if forbidden or not encrypt_allowed:
                refuse(_INVALID_ENCRYPT, codes.INVALID_ENCRYPT)
            return Node(self._encrypt(schema["encrypt"], inherited, path))
        pins_object = _pins_object(schema)
        if "encryptMetadata" in schema:
            if forbidden or not pins_object:
                refuse(_INVALID_METADATA, codes.INVALID_ENCRYPT_METADATA)
            inherited = self._metadata(schema["encryptMetadata"], inherited)
        children: dict[str, Node] = {}
        properties = schema.get("properties", {})
        if not isinstance(properties, Mapping):
            refuse("$jsonSchema keyword 'properties' must be an object", codes.FAILED_TO_PARSE)
        for name, sub in properties.items():
            children[name] = self.parse(
                sub,
                inherited,
                encrypt_allowed=pins_object,
                path=_join(path, name),
                forbidden=forbidden or "." in name,
            )
        patterns = []
        pattern_properties = schema.get("patternProperties", {})
        if not isinstance(pattern_properties, Mapping):
            refuse(
                "$jsonSchema keyword 'patternProperties' must be an object", codes.FAILED_TO_PARSE
            )
        for regex, sub in pattern_properties.items():
            try:
                compiled = re.compile(regex)
            except re.error:
                refuse(
                    f"Invalid regular expression in patternProperties: '{regex}'",
                    codes.PATTERN_PROPERTIES_REGEX,
                )
            node = self.parse(
                sub,
                inherited,
                encrypt_allowed=pins_object,
                path=_join(path, f"/{regex}/"),
                forbidden=forbidden,
            )
            patterns.append((compiled, node))
        additional = None
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            additional = self.parse(
                extra,
                inherited,
                encrypt_allowed=pins_object,
                path=_join(path, "<additionalProperties>"),
                forbidden=forbidden,
            )
        elif extra is not None and not isinstance(extra, bool):
            refuse(
                "$jsonSchema keyword 'additionalProperties' must be a bool or an object",
                codes.FAILED_TO_PARSE,
            )
        self._check_forbidden_contexts(schema, path)
        return Node(children=children, patterns=patterns, additional=additional)

    def _check_keywords(self, schema: Mapping[str, Any]) -> None:
        for keyword in schema:
            if keyword in _UNSUPPORTED_KEYWORDS:
                refuse(
                    f"$jsonSchema keyword '{keyword}' is not currently supported",
                    codes.FAILED_TO_PARSE,
                )
            if keyword not in _ALL_KEYWORDS:
                refuse(f"Unknown $jsonSchema keyword: {keyword}", codes.FAILED_TO_PARSE)
            if keyword in _NOT_FOR_ENCRYPTION:
                refuse(
                    f"JSON schema keyword '{keyword}' is not supported for client-side encryption",
                    codes.UNSUPPORTED_KEYWORD,
                )
            if not self.remote and keyword not in _LOCAL_KEYWORDS:
                refuse(
                    f"JSON schema keyword '{keyword}' is only allowed with a remote schema",
                    codes.REMOTE_ONLY_KEYWORD,
                )
        for name in ("type", "bsonType"):
            if name in schema:
                allowed = _JSON_TYPES if name == "type" else BSON_TYPE_NAMES | {"number"}
                for value in _strings(schema[name], name):
                    if value not in allowed:
                        refuse(f"Unknown type name alias: {value}", codes.BAD_VALUE)

    def _check_forbidden_contexts(self, schema: Mapping[str, Any], path: str) -> None:
        """Subschemas under items/additionalItems/allOf/anyOf/oneOf/not may not encrypt."""
        subschemas: list[Any] = []
        for keyword in ("items", "additionalItems", "not"):
            value = schema.get(keyword)
            if isinstance(value, list) and keyword == "items":
                subschemas.extend(value)
            elif isinstance(value, Mapping):
                subschemas.append(value)
            elif value is not None and not isinstance(value, bool):
                refuse(f"$jsonSchema keyword '{keyword}' must be an object", codes.FAILED_TO_PARSE)
        for keyword in ("allOf", "anyOf", "oneOf"):
            if keyword in schema:
                value = schema[keyword]
                if not isinstance(value, list) or not value:
                    refuse(
                        f"$jsonSchema keyword '{keyword}' must be a non-empty array",
                        codes.FAILED_TO_PARSE,
                    )
                subschemas.extend(value)
        for sub in subschemas:
            self.parse(sub, None, encrypt_allowed=False, path=path, forbidden=True)

    def _metadata(self, value: Any, inherited: Optional[_Inherited]) -> _Inherited:
        if not isinstance(value, Mapping) or not value:
            refuse("encryptMetadata must be a non-empty object", codes.INVALID_ENCRYPT_METADATA)
        for key in value:
            if key not in ("algorithm", "keyId"):
                refuse(
                    f"BSON field 'encryptMetadata.{key}' is an unknown field.", codes.UNKNOWN_FIELD
                )
        algorithm = _algorithm(value["algorithm"]) if "algorithm" in value else None
        key = _key_id(value["keyId"]) if "keyId" in value else None
        if inherited is not None:
            algorithm = inherited.algorithm if algorithm is None else algorithm
            key = inherited.key if key is None else key
        return _Inherited(algorithm, key)

    def _encrypt(self, value: Any, inherited: Optional[_Inherited], path: str) -> Fle1Meta:
        if not isinstance(value, Mapping):
            refuse("The 'encrypt' keyword must be an object", codes.FAILED_TO_PARSE)
        for key in value:
            if key not in ("algorithm", "bsonType", "keyId"):
                refuse(f"BSON field 'encrypt.{key}' is an unknown field.", codes.UNKNOWN_FIELD)
        algorithm = _algorithm(value["algorithm"]) if "algorithm" in value else None
        key = _key_id(value["keyId"]) if "keyId" in value else None
        if algorithm is None and inherited is not None:
            algorithm = inherited.algorithm
        if key is None and inherited is not None:
            key = inherited.key
        if algorithm is None:
            refuse(
                "Encrypt object combined with encryptMetadata needs to specify an algorithm",
                codes.ENCRYPT_METADATA_ALGORITHM,
            )
        if key is None:
            refuse(
                "Encrypt object combined with encryptMetadata needs to specify a keyId",
                codes.ENCRYPT_METADATA_KEY_ID,
            )
        types: Optional[tuple[str, ...]] = None
        if "bsonType" in value:
            types = tuple(_strings(value["bsonType"], "bsonType"))
            for name in types:
                if name not in BSON_TYPE_NAMES:
                    refuse(f"Unknown type name alias: {name}", codes.BAD_VALUE)
        if algorithm == DETERMINISTIC:
            if types is None or len(types) != 1:
                refuse(
                    "A deterministically encrypted field must have exactly one specified type.",
                    codes.DETERMINISTIC_TYPE_COUNT,
                )
            if isinstance(key, str):
                refuse(
                    "A deterministically encrypted field cannot have a keyId represented by a "
                    "JSON pointer",
                    codes.DETERMINISTIC_KEY_POINTER,
                )
        for name in types or ():
            if name in _NEVER or (algorithm == DETERMINISTIC and name in _RANDOM_ONLY):
                refuse(f"Cannot encrypt element of type: {name}", codes.ENCRYPT_TYPE)
        return Fle1Meta(
            algorithm,
            key if isinstance(key, Binary) else None,
            key if isinstance(key, str) else None,
            types,
        )


def _pins_object(schema: Mapping[str, Any]) -> bool:
    for name in ("type", "bsonType"):
        value = schema.get(name)
        if value == "object" or value == ["object"]:
            return True
    return False


def _strings(value: Any, keyword: str) -> list[str]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) for v in values):
        refuse(
            f"$jsonSchema keyword '{keyword}' must be a string or an array of strings",
            codes.FAILED_TO_PARSE,
        )
    if len(set(values)) != len(values):
        refuse(f"$jsonSchema keyword '{keyword}' has duplicate values", codes.FAILED_TO_PARSE)
    return list(values)


def _algorithm(value: Any) -> int:
    if not isinstance(value, str) or value not in ALGORITHMS:
        refuse(
            f"Enumeration value '{value}' for field 'algorithm' is not a valid value.",
            codes.BAD_VALUE,
        )
    return ALGORITHMS[value]


def _key_id(value: Any) -> Binary | str:
    """A keyId: an array of one UUID, or an RFC 6901 pointer naming the keyAltName's field."""
    if isinstance(value, str):
        if not value:
            refuse("JSON Pointer cannot be empty", codes.JSON_POINTER_EMPTY)
        if not value.startswith("/"):
            refuse("JSON Pointer must start with a '/'", codes.JSON_POINTER_SLASH)
        if re.search(r"~(?![01])", value):
            refuse("JSON Pointer may contain '~' only as '~0' or '~1'", codes.JSON_POINTER_TILDE)
        return value
    if isinstance(value, list):
        if not all(isinstance(v, Binary) and v.subtype == 4 for v in value):
            refuse("Array elements must have type UUID, found a different type", codes.KEY_ID_ARRAY)
        if len(value) != 1:
            refuse("A keyId array must contain exactly one UUID", codes.KEY_ID_ARRAY)
        return value[0]  # type: ignore[no-any-return]
    refuse("keyId must be either an array of UUID or a string", codes.KEY_ID_TYPE)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
