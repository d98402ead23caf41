"""Loading a unified test file and running one of its tests.

Implemented: ``schemaVersion`` (1.x up to :data:`SCHEMA_VERSION`), ``runOnRequirements`` (file and
test level: minServerVersion, maxServerVersion, topologies, serverless, csfle with
minLibmongocryptVersion), ``skipReason``, ``createEntities`` (client with ``autoEncryptOpts``,
clientEncryption, database, collection), ``initialData``, ``operations`` (see
:mod:`unified.operations`), ``expectEvents`` for command events, and ``outcome``. Anything else in
a file raises :class:`~unified.matching.UnsupportedFeature`.

Automatic encryption (``autoEncryptOpts``) uses mongocrypt's embedded query analyzer
(``query_analysis="embedded"``): there is no mongocryptd and no crypt_shared, so ``extraOptions``
(which only configure those) are ignored.

Two adaptations to the peers here, both opt-in per :class:`Runner`:

- ``known_key_material``: key documents whose keyMaterial a real cloud KMS wrapped, and whose
  plaintext is known from a recorded KMS reply, are re-wrapped by the cloud KMS mock when
  initialData inserts them (same ``_id``, masterKey and alt names), so the data key, and every
  ciphertext the test expects, stays the same;
- a server that refuses a ``$jsonSchema`` validator with the ``encrypt`` keyword (SecantusDB): the
  test is skipped, unless ``validator_independent`` says its expectations never reach the schema,
  in which case the collection is created without that validator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
from bson import json_util
from bson.binary import Binary
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import OperationFailure
from pymongo.read_concern import ReadConcern
from pymongo.read_preferences import Primary
from pymongo.server_api import ServerApi
from pymongo.write_concern import WriteConcern

from mongocrypt import ClientEncryption, libmongocrypt_version
from mongocrypt.auto_encryption import AutoEncryptionOpts

from .events import CommandRecorder, assert_events
from .matching import UnsupportedFeature, assert_matches, is_placeholder, normalize
from .operations import assert_error, execute

__all__ = [
    "DATA",
    "NEEDS_ENCRYPT_VALIDATOR",
    "SCHEMA_VERSION",
    "Runner",
    "ServerInfo",
    "descriptions",
    "load",
]

DATA = Path(__file__).resolve().parents[2] / "data" / "spec-unified"
#: The newest schema version whose files this runner accepts (the subset it needs of it).
SCHEMA_VERSION = (1, 25)
#: CSFLE needs a 4.2+ server (libmongocrypt is this project, so always present).
CSFLE_MIN_SERVER = (4, 2, 0)
#: Why a test is skipped when the server refuses the collection validator its schema is in.
NEEDS_ENCRYPT_VALIDATOR = "needs a mongod that stores encrypt-keyword validators"
#: Providers whose keys the cloud KMS mock (``cloud_kms``) wraps and unwraps.
CLOUD_PROVIDERS = ("aws", "azure", "gcp")
#: Placeholders the ``spec_kms_providers`` fixture has no value for, filled for the emulators
#: (which do not check them).
PLACEHOLDER_DEFAULTS = {("aws", "sessionToken"): "emulated-session-token"}


def load(name: str) -> dict[str, Any]:
    """A test file of tests/data/spec-unified/, Extended JSON decoded."""
    document: dict[str, Any] = json_util.loads((DATA / name).read_text())
    return document


def descriptions(name: str) -> list[str]:
    """The descriptions of the tests in a file, in order."""
    return [test["description"] for test in load(name)["tests"]]


def _version(text: str) -> tuple[int, ...]:
    parts = [int(part) for part in text.split("-")[0].split(".")[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


@dataclass(frozen=True)
class ServerInfo:
    """What runOnRequirements are checked against."""

    version: tuple[int, ...]
    topology: str  # "single", "replicaset", "sharded" or "load-balanced"

    @classmethod
    def probe(cls, client: MongoClient[Any]) -> ServerInfo:
        version = tuple(client.admin.command("buildInfo")["versionArray"][:3])
        hello = client.admin.command("hello")
        if hello.get("msg") == "isdbgrid":
            topology = "sharded"
        elif "setName" in hello:
            topology = "replicaset"
        elif "serviceId" in hello:
            topology = "load-balanced"
        else:
            topology = "single"
        return cls(version, topology)

    def unmet(self, requirement: Mapping[str, Any]) -> Optional[str]:
        """Why ``requirement`` is not met here, or None when it is."""
        shown = ".".join(map(str, self.version))
        for key, value in requirement.items():
            if key == "minServerVersion" and self.version < _version(value):
                return f"needs server >= {value}, this one is {shown}"
            if key == "maxServerVersion" and self.version > _version(value):
                return f"needs server <= {value}, this one is {shown}"
            if key == "topologies":
                accepted = {"sharded" if t == "sharded-replicaset" else t for t in value}
                if self.topology not in accepted:
                    return f"needs topology {value}, this one is {self.topology}"
            if key == "serverless" and value == "require":
                return "needs Atlas Serverless"
            if key == "csfle":
                if isinstance(value, Mapping):
                    reason = _unmet_csfle_options(value)
                    if reason:
                        return reason
                    value = True
                supported = self.version >= CSFLE_MIN_SERVER
                if value and not supported:
                    return f"needs CSFLE support (server >= 4.2), this one is {shown}"
                if not value and supported:
                    return "runs only where CSFLE is not supported"
            if key not in (
                "minServerVersion",
                "maxServerVersion",
                "topologies",
                "serverless",
                "csfle",
            ):
                raise UnsupportedFeature(f"runOnRequirement {key}")
        return None

    def unmet_any(self, requirements: Sequence[Mapping[str, Any]]) -> Optional[str]:
        """None when one of ``requirements`` is met, else why none is."""
        reasons = [self.unmet(requirement) for requirement in requirements]
        if not requirements or any(reason is None for reason in reasons):
            return None
        return "; ".join(str(reason) for reason in reasons)


def _unmet_csfle_options(options: Mapping[str, Any]) -> Optional[str]:
    unknown = set(options) - {"minLibmongocryptVersion"}
    if unknown:
        raise UnsupportedFeature(f"csfle options {sorted(unknown)}")
    wanted = options.get("minLibmongocryptVersion")
    have = libmongocrypt_version()
    if wanted and _version(have) < _version(wanted):
        return f"needs libmongocrypt >= {wanted}, this one is {have}"
    return None


def _has_encrypt_keyword(value: Any) -> bool:
    """Whether a validator (or part of one) uses the CSFLE ``encrypt`` keyword."""
    if isinstance(value, Mapping):
        return "encrypt" in value or any(_has_encrypt_keyword(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_encrypt_keyword(v) for v in value)
    return False


class Entities:
    """The entity map of one test; closes what it created."""

    def __init__(self) -> None:
        self._map: dict[str, Any] = {}
        self.recorders: dict[str, CommandRecorder] = {}

    def add(self, name: str, entity: Any) -> None:
        if name in self._map:
            raise UnsupportedFeature(f"entity {name!r} defined twice")
        self._map[name] = entity

    def get(self, name: str, kind: type[Any] = object) -> Any:
        entity = self._map[name]
        if not isinstance(entity, kind):
            raise TypeError(f"entity {name!r} is a {type(entity).__name__}, not {kind.__name__}")
        return entity

    def close(self) -> None:
        entities = list(self._map.values())
        for entity in entities:
            if isinstance(entity, ClientEncryption):
                entity.close()
        for entity in entities:
            if isinstance(entity, MongoClient):
                entity.close()
        self._map.clear()


CLIENT_FIELDS = frozenset(
    {
        "id",
        "uriOptions",
        "observeEvents",
        "ignoreCommandMonitoringEvents",
        "observeSensitiveCommands",
        "useMultipleMongoses",
        "serverApi",
        "autoEncryptOpts",
    }
)
AUTO_ENCRYPT_FIELDS = frozenset(
    {
        "keyVaultNamespace",
        "kmsProviders",
        "schemaMap",
        "bypassAutoEncryption",
        "bypassQueryAnalysis",
        "encryptedFieldsMap",
        "keyExpirationMS",
        "extraOptions",
    }
)
CLIENT_ENCRYPTION_FIELDS = frozenset(
    {"keyVaultClient", "keyVaultNamespace", "kmsProviders", "keyExpirationMS"}
)
OPERATION_FIELDS = frozenset(
    {
        "name",
        "object",
        "arguments",
        "expectResult",
        "expectError",
        "ignoreResultAndError",
        "saveResultAsEntity",
    }
)


class Runner:
    """Runs the tests of one file against one server.

    :param spec: the test file, decoded.
    :param uri: the connection string for client entities.
    :param internal: the internal client (initialData, outcome).
    :param server: what the server is, for runOnRequirements.
    :param fixture: gets a pytest fixture by name, used only when a test needs it:
        ``spec_kms_providers`` for placeholders, ``spec_kms_tls_options`` and ``redirect_kms``
        for providers that talk to a KMS, ``cloud_kms`` to re-wrap known keys.
    :param known_key_material: keyMaterial wrapped by a real cloud KMS -> the data key it wraps;
        initialData key documents with such keyMaterial are re-wrapped by the cloud KMS mock.
    :param validator_independent: the test's expectations never reach the collection's schema,
        so a validator the server refuses (the ``encrypt`` keyword) may be left out; otherwise
        such a refusal skips the test (:data:`NEEDS_ENCRYPT_VALIDATOR`).
    """

    def __init__(
        self,
        spec: Mapping[str, Any],
        uri: str,
        internal: MongoClient[Any],
        server: ServerInfo,
        fixture: Callable[[str], Any],
        *,
        known_key_material: Optional[Mapping[bytes, bytes]] = None,
        validator_independent: bool = False,
    ) -> None:
        self.spec, self.uri, self.internal, self.server = spec, uri, internal, server
        self.fixture = fixture
        self.known_key_material = dict(known_key_material or {})
        self.validator_independent = validator_independent

    def run(self, description: str) -> None:
        """Run the test named ``description``; skips when its requirements are not met."""
        major, minor, *_ = _version(self.spec["schemaVersion"])
        if major != SCHEMA_VERSION[0] or minor > SCHEMA_VERSION[1]:
            raise UnsupportedFeature(f"schemaVersion {self.spec['schemaVersion']}")
        (test,) = [t for t in self.spec["tests"] if t["description"] == description]
        for requirements in (self.spec.get("runOnRequirements"), test.get("runOnRequirements")):
            reason = self.server.unmet_any(requirements or [])
            if reason:
                pytest.skip(reason)
        if "skipReason" in test:
            pytest.skip(test["skipReason"])
        self._initial_data(self.spec.get("initialData", []))
        entities = Entities()
        failpoints: list[tuple[MongoClient[Any], str]] = []
        try:
            for entity in self.spec.get("createEntities", []):
                self._create(entity, entities)
            for index, operation in enumerate(test["operations"]):
                try:
                    self._operation(operation, entities, failpoints)
                except AssertionError as error:
                    raise AssertionError(
                        f"operation {index} ({operation['name']}): {error}"
                    ) from None
            for recorder in entities.recorders.values():
                recorder.enabled = False
            for expected in test.get("expectEvents", []):
                assert_events(expected, entities.recorders[expected["client"]].events)
            self._outcome(test.get("outcome", []))
        finally:
            try:
                for client, name in failpoints:
                    client.admin.command({"configureFailPoint": name, "mode": "off"})
            finally:
                entities.close()

    def _initial_data(self, collections: Sequence[Mapping[str, Any]]) -> None:
        for data in collections:
            database = self.internal.get_database(
                data["databaseName"], write_concern=WriteConcern(w="majority")
            )
            name = data["collectionName"]
            database.drop_collection(name)
            if "createOptions" in data:
                self._create_collection(database, name, data["createOptions"])
            if data["documents"]:
                database[name].insert_many([self._rewrap(doc) for doc in data["documents"]])
            elif "createOptions" not in data:
                database.create_collection(name)

    def _create_collection(
        self, database: Database[Any], name: str, options: Mapping[str, Any]
    ) -> None:
        try:
            database.create_collection(name, **options)
        except OperationFailure:
            if not _has_encrypt_keyword(options.get("validator")):
                raise
            if not self.validator_independent:
                pytest.skip(NEEDS_ENCRYPT_VALIDATOR)
            database.create_collection(
                name, **{key: value for key, value in options.items() if key != "validator"}
            )

    def _rewrap(self, document: Mapping[str, Any]) -> Mapping[str, Any]:
        """A key document with known cloud-wrapped keyMaterial, re-wrapped by the cloud KMS mock
        (which the KMS hosts are redirected to); any other document unchanged."""
        material = document.get("keyMaterial")
        master = document.get("masterKey")
        if not isinstance(material, bytes) or not isinstance(master, Mapping):
            return document
        plaintext = self.known_key_material.get(bytes(material))
        if plaintext is None or str(master.get("provider")).split(":")[0] not in CLOUD_PROVIDERS:
            return document
        wrapped = self.fixture("cloud_kms").wrap(plaintext)
        return {**document, "keyMaterial": Binary(wrapped)}

    def _outcome(self, collections: Sequence[Mapping[str, Any]]) -> None:
        for data in collections:
            database = self.internal.get_database(
                data["databaseName"], read_concern=ReadConcern("local"), read_preference=Primary()
            )
            actual = list(database[data["collectionName"]].find({}, sort=[("_id", 1)]))
            expected = normalize(data["documents"])
            assert normalize(actual) == expected, (
                f"{data['databaseName']}.{data['collectionName']} holds {actual!r}, "
                f"expected {expected!r}"
            )

    def _create(self, entity: Mapping[str, Any], entities: Entities) -> None:
        ((kind, options),) = entity.items()
        if kind == "client":
            self._client(options, entities)
        elif kind == "clientEncryption":
            self._client_encryption(options, entities)
        elif kind == "database":
            unknown = set(options) - {"id", "client", "databaseName"}
            if unknown:
                raise UnsupportedFeature(f"database options {sorted(unknown)}")
            client = entities.get(options["client"], MongoClient)
            entities.add(options["id"], client[options["databaseName"]])
        elif kind == "collection":
            unknown = set(options) - {"id", "database", "collectionName"}
            if unknown:
                raise UnsupportedFeature(f"collection options {sorted(unknown)}")
            database = entities.get(options["database"], Database)
            entities.add(options["id"], database[options["collectionName"]])
        else:
            raise UnsupportedFeature(f"{kind} entities")

    def _client(self, options: Mapping[str, Any], entities: Entities) -> None:
        unknown = set(options) - CLIENT_FIELDS
        if unknown:
            raise UnsupportedFeature(f"client options {sorted(unknown)}")
        kwargs: dict[str, Any] = dict(options.get("uriOptions", {}))
        if any(is_placeholder(value) for value in kwargs.values()):
            raise UnsupportedFeature("placeholders in uriOptions")
        if "serverApi" in options:
            api = options["serverApi"]
            kwargs["server_api"] = ServerApi(
                api["version"],
                strict=api.get("strict"),
                deprecation_errors=api.get("deprecationErrors"),
            )
        if "autoEncryptOpts" in options:
            kwargs["auto_encryption_opts"] = self._auto_encryption(options["autoEncryptOpts"])
        recorder = CommandRecorder(
            options.get("observeEvents", []),
            options.get("ignoreCommandMonitoringEvents", []),
            options.get("observeSensitiveCommands", False),
        )
        client: MongoClient[Any] = MongoClient(self.uri, event_listeners=[recorder], **kwargs)
        entities.add(options["id"], client)
        entities.recorders[options["id"]] = recorder

    def _client_encryption(self, options: Mapping[str, Any], entities: Entities) -> None:
        opts = options["clientEncryptionOpts"]
        unknown = set(opts) - CLIENT_ENCRYPTION_FIELDS
        if unknown:
            raise UnsupportedFeature(f"clientEncryptionOpts {sorted(unknown)}")
        providers = self._kms_providers(opts["kmsProviders"])
        tls, callback = self._kms_connection(providers)
        encryption = ClientEncryption(
            providers,
            opts["keyVaultNamespace"],
            entities.get(opts["keyVaultClient"], MongoClient),
            kms_tls_options=tls or None,
            key_expiration_ms=opts.get("keyExpirationMS"),
            kms_connect_callback=callback,
        )
        entities.add(options["id"], encryption)

    def _kms_connection(
        self, providers: Mapping[str, Any]
    ) -> tuple[dict[str, Any], Optional[Callable[..., Any]]]:
        """TLS options and the connect callback (KMS hosts redirected to the emulators) for the
        providers that talk to a KMS."""
        remote = [name for name in providers if name.split(":")[0] != "local"]
        if not remote:
            return {}, None
        all_tls = self.fixture("spec_kms_tls_options")
        tls = {name: all_tls[name] for name in remote if name in all_tls}
        return tls, self.fixture("redirect_kms")

    def _auto_encryption(self, opts: Mapping[str, Any]) -> AutoEncryptionOpts:
        """``autoEncryptOpts`` as mongocrypt's AutoEncryptionOpts with the embedded analyzer;
        ``extraOptions`` only configure mongocryptd/crypt_shared, which it replaces."""
        unknown = set(opts) - AUTO_ENCRYPT_FIELDS
        if unknown:
            raise UnsupportedFeature(f"autoEncryptOpts {sorted(unknown)}")
        providers = self._kms_providers(opts["kmsProviders"])
        tls, callback = self._kms_connection(providers)
        return AutoEncryptionOpts(
            providers,
            opts["keyVaultNamespace"],
            schema_map=opts.get("schemaMap"),
            bypass_auto_encryption=opts.get("bypassAutoEncryption", False),
            kms_tls_options=tls or None,
            bypass_query_analysis=opts.get("bypassQueryAnalysis", False),
            encrypted_fields_map=opts.get("encryptedFieldsMap"),
            key_expiration_ms=opts.get("keyExpirationMS"),
            kms_connect_callback=callback,
            query_analysis="embedded",
        )

    def _kms_providers(self, given: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        """The test's providers, with only the fields it gives; placeholders filled from
        ``spec_kms_providers``, literal values kept."""
        placeholders = any(is_placeholder(v) for fields in given.values() for v in fields.values())
        spec = self.fixture("spec_kms_providers") if placeholders else {}
        providers: dict[str, dict[str, Any]] = {}
        for name, fields in given.items():
            providers[name] = {}
            for field, value in fields.items():
                if is_placeholder(value):
                    default = PLACEHOLDER_DEFAULTS.get((name, field))
                    if field not in spec.get(name, {}) and default is None:
                        raise UnsupportedFeature(f"no value for the placeholder {name}.{field}")
                    value = spec[name][field] if field in spec.get(name, {}) else default
                providers[name][field] = value
        return providers

    def _operation(
        self,
        operation: Mapping[str, Any],
        entities: Entities,
        failpoints: list[tuple[MongoClient[Any], str]],
    ) -> None:
        unknown = set(operation) - OPERATION_FIELDS
        if unknown:
            raise UnsupportedFeature(f"operation fields {sorted(unknown)}")
        name, target_name = operation["name"], operation["object"]
        arguments = operation.get("arguments", {})
        if target_name == "testRunner":
            self._runner_operation(name, arguments, entities, failpoints)
            return
        target = entities.get(target_name)
        try:
            result = execute(target, name, arguments)
        except (UnsupportedFeature, AssertionError):
            raise
        except Exception as error:
            if "expectError" in operation:
                assert_error(operation["expectError"], error)
                return
            if operation.get("ignoreResultAndError"):
                return
            raise
        assert "expectError" not in operation, f"returned {result.value!r}, expected an error"
        if "expectResult" in operation:
            assert_matches(operation["expectResult"], result.value, iterable=result.iterable)
        if "saveResultAsEntity" in operation:
            entities.add(operation["saveResultAsEntity"], result.value)

    def _runner_operation(
        self,
        name: str,
        arguments: Mapping[str, Any],
        entities: Entities,
        failpoints: list[tuple[MongoClient[Any], str]],
    ) -> None:
        """The testRunner's operations: ``wait``, ``failPoint`` (disabled after the test; a
        server without failpoints skips the test), ``assertCollectionExists`` (and ``Not``),
        ``assertIndexExists`` (and ``Not``), checked through the internal client."""
        if name == "wait":
            execute(None, name, arguments)
        elif name == "failPoint":
            client = entities.get(arguments["client"], MongoClient)
            command = arguments["failPoint"]
            try:
                client.admin.command(command)
            except OperationFailure as error:
                if error.code == 59:  # CommandNotFound
                    pytest.skip("needs the server's configureFailPoint command")
                raise
            failpoints.append((client, command["configureFailPoint"]))
        elif name in ("assertCollectionExists", "assertCollectionNotExists"):
            database = self.internal[arguments["databaseName"]]
            exists = arguments["collectionName"] in database.list_collection_names()
            assert exists == (name == "assertCollectionExists"), (
                f"{arguments['databaseName']}.{arguments['collectionName']} exists: {exists}"
            )
        elif name in ("assertIndexExists", "assertIndexNotExists"):
            collection = self.internal[arguments["databaseName"]][arguments["collectionName"]]
            exists = arguments["indexName"] in collection.index_information()
            assert exists == (name == "assertIndexExists"), (
                f"index {arguments['indexName']} on {collection.full_name} exists: {exists}"
            )
        else:
            raise UnsupportedFeature(f"testRunner operation {name}")
