"""Typed options of the public API, as the specification names them (snake_case).

Each validates on construction and names the offending option; ``document`` gives the BSON shape
libmongocrypt expects. They are open classes: new options can be added without breaking callers.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Optional, TypeVar, Union

import bson
from bson import Binary, Int64
from bson.binary import UUID_SUBTYPE
from pymongo.results import BulkWriteResult

from mongocrypt._namespaces import check_namespace
from mongocrypt._secrets import shown
from mongocrypt.engine.native import has_string_algorithm
from mongocrypt.engine.options import DataKeyOptions, ExplicitEncryptOptions, check_data_key_fields

__all__ = [
    "Algorithm",
    "AlgorithmName",
    "DataKeyOpts",
    "EncryptOpts",
    "QueryType",
    "QueryTypeName",
    "RangeOpts",
    "RewrapManyDataKeyOpts",
    "RewrapManyDataKeyResult",
    "RewrapProgress",
    "StringOpts",
    "check_namespace",
    "key_id_binary",
]

KeyId = Union[Binary, uuid.UUID]
#: ``rewrap_many_data_key``'s progress callback: (keys matched, keys rewrapped so far).
RewrapProgress = Callable[[int, int], None]


#: The algorithm names libmongocrypt knows (matched case-insensitively, as libmongocrypt does).
AlgorithmName = Literal[
    "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic",
    "AEAD_AES_256_CBC_HMAC_SHA_512-Random",
    "Indexed",
    "Unindexed",
    "Range",
    "String",
]
#: The query types libmongocrypt knows (matched case-insensitively).
QueryTypeName = Literal["equality", "range", "prefix", "suffix", "substring"]


class Algorithm:
    """The algorithm names of the specification.

    Payloads of ``INDEXED``, ``RANGE`` and ``STRING`` are meant for the server: insert or query
    them through a client with automatic encryption configured (``bypass_query_analysis`` may be
    set, ``bypass_auto_encryption`` may not). The ``STRING`` algorithm (prefix, suffix and
    substring queries) is experimental: not covered by security guarantees, and it may change
    incompatibly.

    The constants have :data:`AlgorithmName` literal types, so a type checker accepts them and
    refuses a misspelt string; :meth:`named` turns a string known only at run time (a setting, a
    command-line argument) into one.
    """

    DETERMINISTIC: Final = "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"
    RANDOM: Final = "AEAD_AES_256_CBC_HMAC_SHA_512-Random"
    INDEXED: Final = "Indexed"
    UNINDEXED: Final = "Unindexed"
    RANGE: Final = "Range"
    STRING: Final = "String"

    @staticmethod
    def names() -> tuple[AlgorithmName, ...]:
        """The names this build's libmongocrypt accepts (``String`` only where it has it)."""
        names: tuple[AlgorithmName, ...] = (
            Algorithm.DETERMINISTIC,
            Algorithm.RANDOM,
            Algorithm.INDEXED,
            Algorithm.UNINDEXED,
            Algorithm.RANGE,
        )
        return (*names, Algorithm.STRING) if has_string_algorithm else names

    @staticmethod
    def named(name: str, option: str = "algorithm") -> AlgorithmName:
        """The algorithm ``name`` spells, in any case.

        :raises ValueError: naming ``option`` and the valid names when libmongocrypt has none such.
        """
        return _named(name, Algorithm.names(), option)


class QueryType:
    """The query types of the specification (:data:`QueryTypeName` literals)."""

    EQUALITY: Final = "equality"
    RANGE: Final = "range"
    PREFIX: Final = "prefix"
    SUFFIX: Final = "suffix"
    SUBSTRING: Final = "substring"

    @staticmethod
    def names() -> tuple[QueryTypeName, ...]:
        """The query types this build's libmongocrypt accepts."""
        names: tuple[QueryTypeName, ...] = (QueryType.EQUALITY, QueryType.RANGE)
        if has_string_algorithm:
            names += (QueryType.PREFIX, QueryType.SUFFIX, QueryType.SUBSTRING)
        return names

    @staticmethod
    def named(name: str, option: str = "query_type") -> QueryTypeName:
        """The query type ``name`` spells, in any case.

        :raises ValueError: naming ``option`` and the valid names when libmongocrypt has none such.
        """
        return _named(name, QueryType.names(), option)


_Name = TypeVar("_Name", bound=str)


def _named(name: object, names: tuple[_Name, ...], option: str) -> _Name:
    _check(name, str, option)
    assert isinstance(name, str)
    for known in names:
        if known.lower() == name.lower():
            return known
    raise ValueError(f"{option} must be one of {', '.join(names)}, not {name!r}")


def key_id_binary(key_id: object, option: str = "key_id") -> Binary:
    """A data key id as BSON binary subtype 4.

    :raises TypeError: if ``key_id`` is neither a UUID nor a subtype-4 Binary.
    """
    if isinstance(key_id, uuid.UUID):
        return Binary.from_uuid(key_id)
    if isinstance(key_id, Binary) and key_id.subtype == UUID_SUBTYPE and len(key_id) == 16:
        return key_id
    raise TypeError(f"{option} must be a uuid.UUID or a bson Binary of subtype 4, not {key_id!r}")


def _check(value: object, types: Union[type, tuple[type, ...]], option: str) -> None:
    """:raises TypeError: naming ``option`` unless ``value`` is one of ``types`` (a bool is no
    int)."""
    allowed = types if isinstance(types, tuple) else (types,)
    if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
        names = " or ".join(t.__name__ for t in allowed)
        raise TypeError(f"{option} must be {names}, not {type(value).__name__}")


@dataclass(frozen=True)
class DataKeyOpts:
    """Options of ``create_data_key``.

    :param master_key: the provider's masterKey, required for aws (region, key, endpoint?), azure
        (keyVaultEndpoint, keyName, keyVersion?), gcp (projectId, location, keyRing, keyName,
        keyVersion?, endpoint?) and kmip (keyId?, endpoint?, delegated?; ``{}`` is valid); omitted
        for local providers. Endpoints are passed to libmongocrypt as given.
    :param key_alt_names: alternate names, each unique in the key vault.
    :param key_material: 96 bytes to use as the key (default: random).
    """

    master_key: Optional[Mapping[str, Any]] = None
    key_alt_names: Sequence[str] = ()
    key_material: Optional[bytes] = None

    def __post_init__(self) -> None:
        check_data_key_fields(self.master_key, self.key_alt_names, self.key_material)

    def engine_options(self, kms_provider: str) -> DataKeyOptions:
        """These options as the engine takes them, for a key wrapped by ``kms_provider``."""
        return DataKeyOptions(
            kms_provider, self.master_key, tuple(self.key_alt_names), self.key_material
        )

    def __repr__(self) -> str:
        return (
            f"DataKeyOpts(master_key={self.master_key!r}, "
            f"key_alt_names={list(self.key_alt_names)!r}, "
            f"key_material={shown('key_material', self.key_material)})"
        )


@dataclass(frozen=True)
class RangeOpts:
    """Range index options; must match the collection's encryptedFields.

    :param min: lower bound (required for double/decimal128 together with ``max``/``precision``).
    :param max: upper bound.
    :param sparsity: tokens per level (int64); libmongocrypt's default when omitted.
    :param precision: decimal digits kept (double and decimal128 only).
    :param trim_factor: how many top levels to trim; 0 is a valid value.
    """

    min: Any = None
    max: Any = None
    sparsity: Optional[int] = None
    precision: Optional[int] = None
    trim_factor: Optional[int] = None

    def __post_init__(self) -> None:
        # sparsity is stored as an int64, precision and trim_factor as int32s.
        for name, bits in (("sparsity", 63), ("precision", 31), ("trim_factor", 31)):
            value = getattr(self, name)
            if value is not None:
                _check(value, int, name)
                if not 0 <= value < 2**bits:
                    raise ValueError(f"{name} must be >= 0 and < 2**{bits}, not {value}")

    @property
    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        for key, value in (
            ("min", self.min),
            ("max", self.max),
            ("precision", self.precision),
            ("trimFactor", self.trim_factor),
        ):
            if value is not None:
                doc[key] = value
        if self.sparsity is not None:
            doc["sparsity"] = Int64(self.sparsity)
        return doc


#: Each part of the String options and the lengths it needs.
_STRING_PARTS = {
    "prefix": ("strMinQueryLength", "strMaxQueryLength"),
    "suffix": ("strMinQueryLength", "strMaxQueryLength"),
    "substring": ("strMaxLength", "strMinQueryLength", "strMaxQueryLength"),
}


def _check_string_part(name: str, value: object) -> None:
    """:raises ValueError: or TypeError naming ``name`` and the length that is wrong or lacking."""
    _check(value, Mapping, name)
    assert isinstance(value, Mapping)
    needed = _STRING_PARTS[name]
    unknown = sorted(set(value) - set(needed))
    missing = [key for key in needed if key not in value]
    if unknown or missing:
        raise ValueError(
            f"{name} takes exactly {', '.join(needed)}"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unknown {', '.join(map(str, unknown))}" if unknown else "")
        )
    for key in needed:  # libmongocrypt reads each as a positive int32
        _check(value[key], int, f"{name}[{key!r}]")
        if not 0 < value[key] < 2**31:
            raise ValueError(f"{name}[{key!r}] must be > 0 and < 2**31, not {value[key]}")
    if value["strMinQueryLength"] > value["strMaxQueryLength"]:
        raise ValueError(f"{name}: strMinQueryLength must not exceed strMaxQueryLength")
    if name == "substring" and value["strMaxQueryLength"] > value["strMaxLength"]:
        raise ValueError("substring: strMaxQueryLength must not exceed strMaxLength")


@dataclass(frozen=True)
class StringOpts:
    """Options of the String algorithm (prefix/suffix/substring queries).

    :param case_sensitive: whether matching is case sensitive.
    :param diacritic_sensitive: whether matching is diacritic sensitive.
    :param prefix: ``{"strMinQueryLength": n, "strMaxQueryLength": m}``.
    :param suffix: the same for suffixes.
    :param substring: ``{"strMaxLength": l, "strMinQueryLength": n, "strMaxQueryLength": m}``.
    """

    case_sensitive: bool
    diacritic_sensitive: bool
    prefix: Optional[Mapping[str, int]] = None
    suffix: Optional[Mapping[str, int]] = None
    substring: Optional[Mapping[str, int]] = None

    def __post_init__(self) -> None:
        _check(self.case_sensitive, bool, "case_sensitive")
        _check(self.diacritic_sensitive, bool, "diacritic_sensitive")
        given = [name for name in _STRING_PARTS if getattr(self, name) is not None]
        if not given:
            raise ValueError("StringOpts needs one of prefix, suffix and substring")
        if "substring" in given and len(given) > 1:
            raise ValueError("StringOpts: substring cannot be combined with prefix or suffix")
        for name in given:
            _check_string_part(name, getattr(self, name))

    @property
    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "caseSensitive": self.case_sensitive,
            "diacriticSensitive": self.diacritic_sensitive,
        }
        for name in ("prefix", "suffix", "substring"):
            value = getattr(self, name)
            if value is not None:
                doc[name] = dict(value)
        return doc


@dataclass(frozen=True)
class EncryptOpts:
    """Options of ``encrypt`` and ``encrypt_expression``.

    :param algorithm: one of :class:`Algorithm` (any case); other names are refused, naming
        the valid ones.
    :param key_id: the data key's id (exactly one of ``key_id`` and ``key_alt_name``).
    :param key_alt_name: the data key's alternate name.
    :param contention_factor: Indexed/Range/String only; 0 is a real value.
    :param query_type: one of :class:`QueryType` (any case), for find payloads.
    :param range_opts: Range only.
    :param string_opts: String only.
    """

    algorithm: AlgorithmName
    key_id: Optional[KeyId] = None
    key_alt_name: Optional[str] = None
    contention_factor: Optional[int] = None
    query_type: Optional[QueryTypeName] = None
    range_opts: Optional[RangeOpts] = None
    string_opts: Optional[StringOpts] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "algorithm", Algorithm.named(self.algorithm))
        if self.query_type is not None:
            object.__setattr__(self, "query_type", QueryType.named(self.query_type))
        if (self.key_id is None) == (self.key_alt_name is None):
            raise ValueError("exactly one of key_id and key_alt_name must be given")
        if self.key_id is not None:
            key_id_binary(self.key_id)
        if self.key_alt_name is not None:
            _check(self.key_alt_name, str, "key_alt_name")
        queryable = self.algorithm in (Algorithm.INDEXED, Algorithm.RANGE, Algorithm.STRING)
        if self.contention_factor is not None:
            _check(self.contention_factor, int, "contention_factor")
            if not 0 <= self.contention_factor < 2**63:
                raise ValueError(
                    f"contention_factor must be >= 0 and < 2**63, not {self.contention_factor}"
                )
            if not queryable:
                raise ValueError(
                    f"contention_factor is for the Indexed, Range and String algorithms, "
                    f"not {self.algorithm}"
                )
        for name, kind, algorithm in (
            ("range_opts", RangeOpts, Algorithm.RANGE),
            ("string_opts", StringOpts, Algorithm.STRING),
        ):
            value = getattr(self, name)
            if value is not None:
                _check(value, kind, name)
            if (value is not None) != (self.algorithm == algorithm):
                raise ValueError(
                    f"{name} is required with the {algorithm} algorithm, and only then"
                )

    def engine_options(self, is_expression: bool = False) -> ExplicitEncryptOptions:
        """These options as the engine takes them (``is_expression`` for ``encrypt_expression``).

        Built once per instance and kind and kept, since the options are frozen (building them
        was a sixth of a small value's encryption); not kept with String options, whose affix
        mappings may be the caller's mutable dicts.

        :raises ValueError: or TypeError, as the engine's own checks find.
        """
        name = "_engine_expression" if is_expression else "_engine_value"
        built: Optional[ExplicitEncryptOptions] = self.__dict__.get(name)
        if built is None:
            built = self._build_engine_options(is_expression)
            if self.string_opts is None:
                self.__dict__[name] = built  # frozen: not through setattr
        return built

    def _build_engine_options(self, is_expression: bool) -> ExplicitEncryptOptions:
        return ExplicitEncryptOptions(
            self.algorithm,
            None if self.key_id is None else bytes(key_id_binary(self.key_id)),
            self.key_alt_name,
            self.query_type,
            self.contention_factor,
            None if self.range_opts is None else bson.encode(self.range_opts.document),
            None if self.string_opts is None else bson.encode(self.string_opts.document),
            is_expression,
        )


@dataclass(frozen=True)
class RewrapManyDataKeyOpts:
    """Where ``rewrap_many_data_key`` moves the keys.

    :param provider: the target KMS provider (required).
    :param master_key: the target masterKey (not for local providers).
    """

    provider: str
    master_key: Optional[Mapping[str, Any]] = field(default=None)

    def __post_init__(self) -> None:
        _check(self.provider, str, "provider")
        if self.master_key is not None:
            _check(self.master_key, Mapping, "master_key")


@dataclass(frozen=True)
class RewrapManyDataKeyResult:
    """What ``rewrap_many_data_key`` did.

    :param bulk_write_result: the key vault update's result; None when no key matched.
    """

    bulk_write_result: Optional[BulkWriteResult] = None
