"""The embedded analyzer against libmongocrypt's recorded query-analysis pairs.

Every folder copied into ``tests/data/analysis/`` (from libmongocrypt's ``test/data``) is in
exactly one of the lists below:

- ``EXACT``: our reply equals the recorded one (result and both flags; markings are decoded and
  compared field by field, with their BSON types);
- ``DECLARED``: equal once the listed, named differences of the recording are set aside; each is
  an artefact of how the reply was written (by hand for libmongocrypt's own tests), never a
  change to the analyzer;
- ``UNMATCHED``: the recording answers something else, or shows behaviour the analyzer refuses
  on purpose; the reason says which;
- ``UNRECORDED``: libmongocrypt recorded the command it sends but no reply; the test pins what
  the analyzer answers.

Where a folder has no ``cmd-to-mongocryptd.json``, the command is obtained from libmongocrypt
itself (the engine, driven with the folder's collection info, schema map or encryptedFields map).
Every reply the analyzer gives for such a folder is also fed back to libmongocrypt, which must
accept its markings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

import bson
import pytest
from bson import json_util
from bson.binary import Binary, UuidRepresentation
from bson.codec_options import DatetimeConversion
from bson.json_util import JSONMode, JSONOptions

from mongocrypt.analysis import QueryAnalysisError, analyze, mark_command
from mongocrypt.engine import MongoCrypt, MongoCryptOptions, State
from mongocrypt.errors import MongoCryptError

DATA = Path(__file__).resolve().parents[1] / "data" / "analysis"
JSON = JSONOptions(
    json_mode=JSONMode.CANONICAL,
    uuid_representation=UuidRepresentation.UNSPECIFIED,
    datetime_conversion=DatetimeConversion.DATETIME_AUTO,
)
REPLIES = (
    "mongocryptd-reply.json",
    "reply-from-mongocryptd.json",
    "mongocryptd_reply.json",
    "bad-create-cmd-mongocryptd-reply.json",
)
COMMANDS = ("cmd-to-mongocryptd.json", "bad-create-cmd-to-mongocryptd.json")

EXACT = [
    "bulkWrite/unencrypted",
    "dollardb/preserved_fle1",
    "lookup/csfle-sibling",
    "lookup/qe",
    "multikey",
    "qe_keyAltName",
    "qe_keyAltName/create",
]

#: Differences a recording may have, and what the comparison then sets aside.
FLAGS = "flags"  # libmongocrypt's `hasEncryptedPlaceholders` key; absent schemaRequiresEncryption
KU = "ku"  # a user key id (ku) other than the index key id: automatic encryption uses one key
ORDER = "order"  # `documents` before `encryptionInformation` (mongocryptd puts the batch last)
PLACEHOLDERS = "placeholders"  # hasEncryptionPlaceholders false although `result` has markings
REQUIRES = "requires"  # schemaRequiresEncryption true although no schema encrypts anything
EINFO = "einfo"  # encryptionInformation as an older libmongocrypt sent it (no esc/ecoc names)

DECLARED: dict[str, tuple[set[str], str]] = {
    "dollardb/preserved_empty": ({FLAGS}, "hand-written flags"),
    "fle1-create/with-schema": ({FLAGS}, "hand-written flags"),
    "fle1-create/without-schema": ({FLAGS}, "hand-written flags"),
    "fle1-explain/with-mongocryptd": ({FLAGS}, "hand-written flags"),
    "fle2-create": ({FLAGS}, "hand-written flags"),
    "fle2-find-explicit": ({FLAGS}, "hand-written flags"),
    "fle2-insert-v2": ({FLAGS, KU, ORDER}, "hand-written placeholder and field order"),
    "fle2-insert-v2-with-str-encode-version": (
        {FLAGS, KU, ORDER},
        "hand-written placeholder and field order",
    ),
    "fle2-insert-range/decimal128-v2": ({FLAGS, KU, ORDER}, "hand-written key ids and order"),
    "fle2-insert-range/decimal128-precision-v2": (
        {FLAGS, KU, ORDER},
        "hand-written key ids and order",
    ),
    "lookup/mixed/csfle/csfle": ({PLACEHOLDERS}, "recorded flag contradicts the result"),
    "lookup/mixed/csfle/no-schema": ({PLACEHOLDERS}, "recorded flag contradicts the result"),
    "lookup/mixed/qe/no-schema": ({PLACEHOLDERS}, "recorded flag contradicts the result"),
    "lookup/mixed/qe/qe": ({PLACEHOLDERS}, "recorded flag contradicts the result"),
    "lookup/qe-encryptedFieldsMap": ({PLACEHOLDERS}, "recorded flag contradicts the result"),
    "lookup/qe-self": ({PLACEHOLDERS}, "recorded flag contradicts the result"),
    "lookup/qe-with-payload": ({PLACEHOLDERS}, "recorded flag contradicts the result"),
    "lookup/mixed/no-schema/no-schema": (
        {REQUIRES},
        "both schemas are empty, yet the recording says the schema requires encryption",
    ),
    "range-sends-cryptoParams/auto-find-int32": (
        {EINFO},
        "recorded with a libmongocrypt that did not add default esc/ecoc collection names",
    ),
    "range-sends-cryptoParams/auto-insert-int32": (
        {EINFO},
        "recorded with a libmongocrypt that did not add default esc/ecoc collection names",
    ),
}

UNMATCHED = {
    "dollardb/omitted": "hand-written: ku differs from ki and the equality is written without "
    "$eq; mongocryptd writes {$eq: marking} in find filters (the specification's fle2v2 find "
    "and update tests record that form)",
    "fle2-bad-str-encode-version": "hand-written: the reply's encryptionInformation moves keyId "
    "out of `fields` (not what was sent) and keeps it in a create result",
    "fle2-create-encrypted-collection": "hand-written: the reply's encryptionInformation moves "
    "keyId out of `fields`, which no analyzer does; the recorded create reply "
    "(qe_keyAltName/create) drops encryptionInformation",
    "fle2-create-encrypted-collection-encrypted-fields-unset-str-encode-version": "hand-written: "
    "as fle2-create-encrypted-collection",
    "fle2-text-search-create-encrypted-collection": "hand-written: keeps encryptionInformation in "
    "a create result, which the recorded create reply (qe_keyAltName/create) drops",
    "fle2-text-search-create-encrypted-collection-with-str-encode-version": "hand-written: as "
    "fle2-text-search-create-encrypted-collection",
    "fle2-delete/empty": "hand-written: encryptionInformation sits beside `result` and `$db` is "
    "kept inside it",
    "fle2-delete/success": "hand-written: marks `value`, a field the encryptedFields do not "
    "encrypt",
    "fle2-explain/with-mongocryptd": "hand-written: ku differs from ki, no $eq, no verbosity "
    "(mongocryptd adds allPlansExecution, as the specification's explain test records)",
    "fle2-find-equality-v2": "hand-written: answers an insert (`documents`) to a find, and its "
    "encryptedFields use bsonType 'int32', not a BSON type name (refused)",
    "fle2-find-range/date-v2": "hand-written: a one-sided $gt placeholder with payloadId 1234 "
    "answers an equality (mongocryptd sends a closed [v, v] interval)",
    "fle2-find-range/decimal128-precision-v2": "hand-written: as fle2-find-range/date-v2",
    "fle2-find-range/decimal128-v2": "hand-written: as fle2-find-range/date-v2",
    "fle2-insert-range/date-v2": "hand-written: invented min/max, and the echoed encryptedFields "
    "say bsonType long",
    "fle2-insert-range/double-v2": "hand-written: min is the smallest positive double, not the "
    "lowest, and the echoed encryptedFields say bsonType long",
    "fle2-insert-range/int32-v2": "hand-written: min/max (0, 1234567) that the encryptedFields "
    "do not configure",
    "fle2-insert-range/int64-v2": "hand-written: min/max that the encryptedFields do not configure",
    "fle2-insert-text-search": "hand-written: an equality placeholder (a=2) for a substring "
    "field; text-search fields get a=4 with a text spec",
    "fle2-insert-text-search-with-str-encode-version": "hand-written: as fle2-insert-text-search",
    "no-trimFactor/find": "recorded with a pre-8.0 analyzer (default sparsity 1, no trimFactor); "
    "the analyzer applies the current defaults (sparsity 2, trimFactor 6), as "
    "range-sends-cryptoParams records",
    "no-trimFactor/insert": "as no-trimFactor/find",
    "lookup/mixed/no-schema/csfle": "refused on purpose: the fields of a $lookup `as` array "
    "cannot be used afterwards (query-analysis reference, sections 2.6 and 3.3)",
    "lookup/mixed/no-schema/qe": "refused on purpose: as lookup/mixed/no-schema/csfle",
    "lookup/mixed/qe/non-csfle-schema": "refused on purpose: equality on an unindexed QE field "
    "(63165); the recording marks it with another field's key",
}

#: Folders with the command libmongocrypt sends but no reply: the refusal the analyzer answers
#: with, or how many markings its reply holds (0: the result is the command as sent).
UNRECORDED: dict[str, Union[str, int]] = {
    "bulkWrite/jsonSchema": "The bulkWrite command only supports Queryable Encryption",
    "lookup/csfle": 0,
    "lookup/csfle-only-schemaMap": 0,
    "lookup/csfle-schemaMap": 0,
    "lookup/csfle-self": 0,
    "lookup/mixed/csfle/qe": 1,
    "lookup/mixed/qe/csfle": 1,
}

#: Folders libmongocrypt cannot be driven to the markings state for (or whose reply is refused).
NOT_DRIVEN = {
    "fle2-insert-text-search": "libmongocrypt refuses the substringPreview query type",
    "fle2-insert-text-search-with-str-encode-version": "as fle2-insert-text-search",
    "fle2-text-search-create-encrypted-collection": "as fle2-insert-text-search",
    "fle2-text-search-create-encrypted-collection-with-str-encode-version": "as above",
    "qe_keyAltName/create": "libmongocrypt fetches the keyAltName's key before the markings",
    "fle2-find-equality-v2": "the encryptedFields are invalid (bsonType 'int32'): refused",
    "lookup/mixed/no-schema/csfle": "refused on purpose",
    "lookup/mixed/no-schema/qe": "refused on purpose",
    "lookup/mixed/qe/non-csfle-schema": "refused on purpose",
}


def folders() -> list[str]:
    found = set()
    for path in DATA.rglob("*.json"):
        if path.name in REPLIES or path.name in COMMANDS:
            found.add(path.parent.relative_to(DATA).as_posix())
    return sorted(found)


def load(path: Path) -> Any:
    return json_util.loads(path.read_text(), json_options=JSON)


def first(folder: str, names: tuple[str, ...]) -> Optional[Path]:
    for name in names:
        if (DATA / folder / name).exists():
            return DATA / folder / name
    return None


# -- libmongocrypt as the source of commands and the consumer of replies ------------------------


class Driven:
    """libmongocrypt driven up to the markings state for a folder's command."""

    def __init__(self, folder: str) -> None:
        base = DATA / folder
        command = load(first(folder, ("cmd.json", "command.json")) or base / "cmd.json")
        options: dict[str, Any] = {}
        for name in ("encrypted-field-map.json", "encrypted-field-config-map.json"):
            if (base / name).exists():
                options["encrypted_fields_map"] = load(base / name)
        for name in ("schema-map.json", "schema_map.json"):
            if (base / name).exists():
                options["schema_map"] = load(base / name)
        self.infos = [bson.encode(load(p)) for p in sorted(base.glob("coll[iI]nfo*.json"))]
        self.crypt = MongoCrypt(
            MongoCryptOptions(
                {"local": {"key": b"\x01" * 96}}, crypt_shared_lib_search_paths=[], **options
            )
        )
        self.ctx = self.crypt.encryption_context(command.get("$db", "db"), bson.encode(command))
        self._collection_infos()
        assert self.ctx.state is State.NEED_MONGO_MARKINGS
        operation = self.ctx.mongo_operation()
        if next(iter(bson.decode(operation))) == "isMaster":
            self.ctx.add_mongo_operation_result(mark_command("db", operation))
            self.ctx.complete_mongo_operation()
            self._collection_infos()
            operation = self.ctx.mongo_operation()
        self.command = dict(bson.decode(operation, codec_options=JSON))

    def _collection_infos(self) -> None:
        while self.ctx.state in (State.NEED_MONGO_COLLINFO, State.NEED_MONGO_COLLINFO_WITH_DB):
            for info in self.infos:
                self.ctx.add_mongo_operation_result(info)
            self.ctx.complete_mongo_operation()

    def consume(self, reply: dict[str, Any]) -> State:
        """Feed ``reply``; libmongocrypt raises if it rejects a marking."""
        self.ctx.add_mongo_operation_result(bson.encode(reply))
        self.ctx.complete_mongo_operation()
        return self.ctx.state

    def close(self) -> None:
        self.ctx.close()
        self.crypt.close()


def command_for(folder: str) -> tuple[dict[str, Any], Optional[Driven]]:
    recorded = first(folder, COMMANDS)
    if recorded is not None:
        return load(recorded), None
    driven = Driven(folder)
    return driven.command, driven


# -- comparison -----------------------------------------------------------------------------------


def decoded(value: Any) -> Any:
    """Markings opened up (``{"<marking 0>": {...}}``), everything else as is."""
    if isinstance(value, Binary) and value.subtype == 6 and value[:1] in (b"\x00", b"\x03"):
        inner = bson.decode(bytes(value[1:]), codec_options=JSON)
        return {f"<marking {value[0]}>": decoded(inner)}
    if isinstance(value, dict):
        return {k: decoded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decoded(v) for v in value]
    return value


def text(value: Any) -> str:
    """Type-exact, order-preserving text of a decoded value (for readable diffs)."""
    return json_util.dumps(decoded(value), json_options=JSON, indent=1)


def user_key_is_index_key(value: Any) -> Any:
    if isinstance(value, dict):
        if "<marking 3>" in value:
            placeholder = dict(value["<marking 3>"])
            placeholder["ku"] = placeholder["ki"]
            return {"<marking 3>": placeholder}
        return {k: user_key_is_index_key(v) for k, v in value.items()}
    if isinstance(value, list):
        return [user_key_is_index_key(v) for v in value]
    return value


def compare(
    folder: str, ours: dict[str, Any], recorded: dict[str, Any], command: dict[str, Any]
) -> None:
    differences = DECLARED.get(folder, (set(), ""))[0]
    expected_result = decoded(recorded["result"])
    actual_result = decoded(ours["result"])
    if KU in differences:
        expected_result = user_key_is_index_key(expected_result)
    if ORDER in differences:
        expected_result = dict(sorted(expected_result.items()))
        actual_result = dict(sorted(actual_result.items()))
    if EINFO in differences:
        expected_result["encryptionInformation"] = command["encryptionInformation"]
    assert text(actual_result) == text(expected_result)
    flags = dict(recorded)
    if FLAGS in differences and "hasEncryptedPlaceholders" in flags:
        flags["hasEncryptionPlaceholders"] = flags.pop("hasEncryptedPlaceholders")
    for flag in ("hasEncryptionPlaceholders", "schemaRequiresEncryption"):
        if flag not in flags:
            assert FLAGS in differences, f"{flag} missing from the recording"
            continue
        if (flag == "hasEncryptionPlaceholders" and PLACEHOLDERS in differences) or (
            flag == "schemaRequiresEncryption" and REQUIRES in differences
        ):
            assert ours[flag] is not flags[flag]
            continue
        assert ours[flag] is flags[flag], flag
    if "ok" in recorded:
        assert ours["ok"] == recorded["ok"]


# -- tests ----------------------------------------------------------------------------------------


def test_every_fixture_folder_is_classified() -> None:
    classified = [*EXACT, *DECLARED, *UNMATCHED, *UNRECORDED]
    assert len(classified) == len(set(classified))
    assert sorted(classified) == folders()


@pytest.mark.parametrize("folder", EXACT + sorted(DECLARED))
def test_recorded_reply(folder: str) -> None:
    command, driven = command_for(folder)
    if driven is not None:
        driven.close()
    recorded = load(first(folder, REPLIES))  # type: ignore[arg-type]  # the folders chosen all have one
    compare(folder, analyze(command), recorded, command)


def driveable() -> list[str]:
    return [
        folder
        for folder in folders()
        if first(folder, ("cmd.json", "command.json")) is not None and folder not in NOT_DRIVEN
    ]


@pytest.mark.parametrize("folder", driveable())
def test_libmongocrypt_accepts_the_reply(folder: str) -> None:
    """libmongocrypt's command for the folder, answered by the analyzer, is consumed: every
    marking parses and the context moves on to fetching keys (or is ready)."""
    try:
        driven = Driven(folder)
    except MongoCryptError as exc:
        if "This is currently not supported" not in str(exc):
            raise
        pytest.skip(f"this libmongocrypt refuses mixed CSFLE and QE collections: {exc}")
    try:
        reply = analyze(driven.command)
        state = driven.consume(reply)
        assert state is (
            State.NEED_MONGO_KEYS if reply["hasEncryptionPlaceholders"] else State.READY
        )
    finally:
        driven.close()


@pytest.mark.parametrize("folder", sorted(UNRECORDED))
def test_unrecorded_command(folder: str) -> None:
    command = load(first(folder, COMMANDS))  # type: ignore[arg-type]  # the folders chosen all have one
    expected = UNRECORDED[folder]
    if isinstance(expected, str):
        with pytest.raises(QueryAnalysisError, match=expected):
            analyze(command)
        return
    reply = analyze(command)
    assert reply["schemaRequiresEncryption"] is True
    assert text(reply["result"]).count("<marking") == expected
    assert reply["hasEncryptionPlaceholders"] is (expected > 0)
    if expected == 0:
        sent = {
            k: v
            for k, v in command.items()
            if k not in ("jsonSchema", "isRemoteSchema", "csfleEncryptionSchemas")
        }
        assert text(reply["result"]) == text(sent)


@pytest.mark.parametrize("folder", sorted(UNMATCHED))
def test_unmatched_fixture_is_listed_with_a_reason(folder: str) -> None:
    assert first(folder, REPLIES) is not None
    assert len(UNMATCHED[folder]) > 20


@pytest.mark.parametrize(
    "folder",
    [
        "lookup/mixed/no-schema/csfle",
        "lookup/mixed/no-schema/qe",
        "lookup/mixed/qe/non-csfle-schema",
    ],
)
def test_fixtures_refused_on_purpose(folder: str) -> None:
    command, _ = command_for(folder)
    with pytest.raises(QueryAnalysisError):
        analyze(command)
