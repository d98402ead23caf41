"""Loading a unified test file and running one of its tests.

Implemented: ``schemaVersion`` (1.x up to :data:`SCHEMA_VERSION`), ``runOnRequirements`` (file and
test level: minServerVersion, maxServerVersion, topologies, serverless, csfle), ``skipReason``,
``createEntities`` (client, clientEncryption, database, collection), ``initialData``,
``operations`` (see :mod:`unified.operations`), ``expectEvents`` for command events, and
``outcome``. Anything else in a file raises :class:`~unified.matching.UnsupportedFeature`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
from bson import json_util
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.read_concern import ReadConcern
from pymongo.read_preferences import Primary
from pymongo.server_api import ServerApi
from pymongo.write_concern import WriteConcern

from mongocrypt import ClientEncryption

from .events import CommandRecorder, assert_events
from .matching import UnsupportedFeature, assert_matches, is_placeholder, normalize
from .operations import assert_error, execute

__all__ = ["DATA", "SCHEMA_VERSION", "Runner", "ServerInfo", "descriptions", "load"]

DATA = Path(__file__).resolve().parent.parent / "data" / "spec-unified"
#: The newest schema version whose files this runner accepts (the subset it needs of it).
SCHEMA_VERSION = (1, 22)
#: CSFLE needs a 4.2+ server (libmongocrypt is this project, so always present).
CSFLE_MIN_SERVER = (4, 2, 0)


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
        for providers that talk to a KMS.
    """

    def __init__(
        self,
        spec: Mapping[str, Any],
        uri: str,
        internal: MongoClient[Any],
        server: ServerInfo,
        fixture: Callable[[str], Any],
    ) -> None:
        self.spec, self.uri, self.internal, self.server = spec, uri, internal, server
        self.fixture = fixture

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
        try:
            for entity in self.spec.get("createEntities", []):
                self._create(entity, entities)
            for index, operation in enumerate(test["operations"]):
                try:
                    self._operation(operation, entities)
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
            entities.close()

    def _initial_data(self, collections: Sequence[Mapping[str, Any]]) -> None:
        for data in collections:
            database = self.internal.get_database(
                data["databaseName"], write_concern=WriteConcern(w="majority")
            )
            name = data["collectionName"]
            database.drop_collection(name)
            if "createOptions" in data:
                database.create_collection(name, **data["createOptions"])
            if data["documents"]:
                database[name].insert_many(data["documents"])
            elif "createOptions" not in data:
                database.create_collection(name)

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
        remote = [name for name in providers if name.split(":")[0] != "local"]
        tls: dict[str, Any] = {}
        callback = None
        if remote:
            all_tls = self.fixture("spec_kms_tls_options")
            tls = {name: all_tls[name] for name in remote if name in all_tls}
            callback = self.fixture("redirect_kms")
        encryption = ClientEncryption(
            providers,
            opts["keyVaultNamespace"],
            entities.get(opts["keyVaultClient"], MongoClient),
            kms_tls_options=tls or None,
            key_expiration_ms=opts.get("keyExpirationMS"),
            kms_connect_callback=callback,
        )
        entities.add(options["id"], encryption)

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
                    if field not in spec.get(name, {}):
                        raise UnsupportedFeature(f"no value for the placeholder {name}.{field}")
                    value = spec[name][field]
                providers[name][field] = value
        return providers

    def _operation(self, operation: Mapping[str, Any], entities: Entities) -> None:
        unknown = set(operation) - OPERATION_FIELDS
        if unknown:
            raise UnsupportedFeature(f"operation fields {sorted(unknown)}")
        name, target_name = operation["name"], operation["object"]
        target = None if target_name == "testRunner" else entities.get(target_name)
        try:
            result = execute(target, name, operation.get("arguments", {}))
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
