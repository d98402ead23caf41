"""The ``mongocrypt`` command: key vault management, single-value encryption, and a doctor.

Settings come from flags, then environment variables, then a TOML config file (``--config``);
KMS credentials are never taken from the command line (other users can read it) and never printed.

Exit codes: 0 success, 1 the operation failed, 2 usage or configuration error. Errors go to
stderr as ``mongocrypt: error: ...``; ``--json`` puts one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib
import importlib.metadata
import json
import logging
import os
import platform
import re
import shutil
import socket
import ssl
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NoReturn, Optional, TextIO
from urllib.parse import unquote

import bson
import pymongo
from bson import Binary, json_util
from bson.binary import STANDARD
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo.errors import ConfigurationError, PyMongoError, ServerSelectionTimeoutError
from pymongo.read_concern import ReadConcern

import mongocrypt
from mongocrypt import (
    Algorithm,
    ClientEncryption,
    DataKeyOpts,
    EncryptOpts,
    MongoCryptError,
    RangeOpts,
    RewrapManyDataKeyOpts,
    StringOpts,
)
from mongocrypt.engine.native import crypto_in_use

__all__ = ["main"]

PROG = "mongocrypt"
DEFAULT_URI = "mongodb://localhost:27017"
DEFAULT_KEY_VAULT = "encryption.__keyVault"
DEFAULT_TIMEOUT_MS = 10_000
DOCTOR_TIMEOUT_MS = 5_000
#: A local master key is exactly this many bytes.
LOCAL_KEY_SIZE = 96

ENV_URI = "MONGODB_URI"
ENV_KEY_VAULT = "MONGOCRYPT_KEY_VAULT"
ENV_CONFIG = "MONGOCRYPT_CONFIG"
ENV_LOCAL_KEY = "MONGOCRYPT_LOCAL_KEY"
ENV_LOCAL_KEY_FILE = "MONGOCRYPT_LOCAL_KEY_FILE"
ENV_KMS_PROVIDERS_FILE = "MONGOCRYPT_KMS_PROVIDERS_FILE"
ENV_KMS_TLS_OPTIONS_FILE = "MONGOCRYPT_KMS_TLS_OPTIONS_FILE"
ENV_QUERY_ANALYSIS = "MONGOCRYPT_QUERY_ANALYSIS"

ALGORITHMS = {
    "deterministic": Algorithm.DETERMINISTIC,
    "random": Algorithm.RANDOM,
    "indexed": Algorithm.INDEXED,
    "unindexed": Algorithm.UNINDEXED,
    "range": Algorithm.RANGE,
    "string": Algorithm.STRING,
}
QUERY_TYPES = ("equality", "range", "prefix", "suffix", "substring")
#: Provider setting names whose values are secrets (redacted from any message).
SECRET_FIELDS = frozenset(
    {
        "key",
        "secretAccessKey",
        "sessionToken",
        "clientSecret",
        "privateKey",
        "accessToken",
        "tlsCertificateKeyFilePassword",
    }
)
CONFIG_KEYS = ("uri", "key_vault", "timeout_ms", "kms_providers", "kms_tls_options")
#: TLS options naming files: relative paths in a config file are relative to that file.
TLS_FILE_OPTIONS = ("tlsCAFile", "tlsCertificateKeyFile")

_JSON_IN = json_util.JSONOptions(uuid_representation=STANDARD, tz_aware=True)
_RELAXED = json_util.JSONOptions(
    json_mode=json_util.JSONMode.RELAXED, uuid_representation=STANDARD, tz_aware=True
)
_CANONICAL = json_util.JSONOptions(
    json_mode=json_util.JSONMode.CANONICAL, uuid_representation=STANDARD, tz_aware=True
)
_DOCUMENTS: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True, uuid_representation=STANDARD)


class UsageError(Exception):
    """A bad invocation or configuration, found before anything ran (exit code 2)."""


class OperationError(Exception):
    """The operation ran and failed (exit code 1)."""


# -- settings ---------------------------------------------------------------------------------


@dataclass
class Settings:
    """What a command connects to, resolved from flags, environment and config file."""

    uri: str = DEFAULT_URI
    uri_given: bool = False
    key_vault: str = DEFAULT_KEY_VAULT
    timeout_ms: Optional[int] = None
    kms_providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    kms_tls_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def secrets(self) -> list[str]:
        """Every secret string these settings hold, in the forms a message could show them."""
        found: list[str] = []
        password = _uri_password(self.uri)
        if password:
            found += [password, unquote(password)]
        for settings in self.kms_providers.values():
            for name, value in settings.items():
                if name not in SECRET_FIELDS:
                    continue
                if isinstance(value, (bytes, bytearray)):
                    found += [base64.b64encode(value).decode(), bytes(value).hex()]
                elif isinstance(value, str):
                    found.append(value)
        for options in self.kms_tls_options.values():
            password = options.get("tlsCertificateKeyFilePassword")
            if isinstance(password, str):
                found.append(password)
        return [s for s in found if len(s) >= 4]


def _uri_password(uri: str) -> Optional[str]:
    match = re.match(r"^mongodb(?:\+srv)?://[^:@/]*:([^@/]*)@", uri)
    return match.group(1) if match else None


def redact_uri(uri: str) -> str:
    """``uri`` with any password replaced by ``***``."""
    return re.sub(r"^(mongodb(?:\+srv)?://[^:@/]*:)[^@/]*@", r"\1***@", uri)


def _load_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python < 3.11
        try:
            import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
        except ImportError as exc:
            raise UsageError("reading a TOML config file on Python < 3.11 needs tomli") from exc
    try:
        with path.open("rb") as stream:
            document: dict[str, Any] = tomllib.load(stream)
            return document
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}") from None


def _read_document(path: str, what: str) -> dict[str, Any]:
    """A JSON / Extended JSON object from ``path``; errors never quote the file's content."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        document = json_util.loads(text, json_options=_JSON_IN)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{what} {path} is not valid JSON: {exc.msg} (line {exc.lineno})"
        ) from None
    except Exception as exc:
        raise UsageError(
            f"{what} {path} is not valid Extended JSON ({type(exc).__name__})"
        ) from None
    if not isinstance(document, dict) or not all(isinstance(v, dict) for v in document.values()):
        raise UsageError(f"{what} {path} must be a JSON object of objects, one per provider")
    return document


def _local_key(value: object, provider: str) -> bytes:
    """A local master key from bytes or base64 text; never quotes the key in errors."""
    if isinstance(value, str):
        try:
            value = base64.b64decode(value.strip(), validate=True)
        except ValueError:
            raise UsageError(f"the master key of {provider!r} is not valid base64") from None
    if not isinstance(value, (bytes, bytearray)):
        raise UsageError(f"the master key of {provider!r} must be bytes or base64 text")
    if len(value) != LOCAL_KEY_SIZE:
        raise UsageError(
            f"the master key of {provider!r} must be {LOCAL_KEY_SIZE} bytes, not {len(value)}"
        )
    return bytes(value)


def read_local_key_file(path: str, provider: str = "local") -> bytes:
    """A local master key file: 96 raw bytes, or their base64 text."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read local key file {path}: {exc.strerror}") from None
    if len(data) == LOCAL_KEY_SIZE:
        return data
    try:
        decoded = base64.b64decode(data.strip(), validate=True)
    except ValueError:
        raise UsageError(
            f"local key file {path} must hold {LOCAL_KEY_SIZE} bytes or their base64, "
            f"not {len(data)} bytes of something else"
        ) from None
    return _local_key(decoded, provider)


def _is_local(provider: str) -> bool:
    return provider == "local" or provider.startswith("local:")


def _normalise_providers(
    providers: Mapping[str, Mapping[str, Any]], base: Optional[Path] = None
) -> dict[str, dict[str, Any]]:
    """Local providers' keys as bytes (from ``key`` or ``key_file``); others unchanged."""
    result: dict[str, dict[str, Any]] = {}
    for name, settings in providers.items():
        if not isinstance(settings, Mapping):
            raise UsageError(f"the settings of KMS provider {name!r} must be a table/object")
        settings = dict(settings)
        if _is_local(name):
            if "key_file" in settings:
                path = Path(str(settings.pop("key_file")))
                if base is not None and not path.is_absolute():
                    path = base / path
                settings["key"] = read_local_key_file(str(path), name)
            elif "key" in settings:
                settings["key"] = _local_key(settings["key"], name)
            else:
                raise UsageError(f"KMS provider {name!r} needs 'key' or 'key_file'")
        result[name] = settings
    return result


def _tls_paths(options: Mapping[str, Any], base: Path) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {}
    for provider, settings in options.items():
        if not isinstance(settings, Mapping):
            raise UsageError(f"kms_tls_options.{provider} must be a table")
        resolved = dict(settings)
        for name in TLS_FILE_OPTIONS:
            if isinstance(resolved.get(name), str) and not Path(resolved[name]).is_absolute():
                resolved[name] = str(base / resolved[name])
        result[provider] = resolved
    return result


def _namespace(value: str) -> str:
    database, _, collection = value.partition(".")
    if not database or not collection or collection.endswith("."):
        raise UsageError(f"key vault namespace must be 'database.collection', not {value!r}")
    return value


def load_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Flags first, then environment variables, then the config file, then defaults."""
    settings = Settings()
    config_path = getattr(args, "config", None) or environ.get(ENV_CONFIG)
    config: dict[str, Any] = {}
    base = Path.cwd()
    if config_path:
        path = Path(config_path)
        config = _load_toml(path)
        base = path.resolve().parent
        unknown = sorted(set(config) - set(CONFIG_KEYS))
        if unknown:
            raise UsageError(
                f"unknown setting {unknown[0]!r} in config file {path} "
                f"(known: {', '.join(CONFIG_KEYS)})"
            )
    uri = getattr(args, "uri", None) or environ.get(ENV_URI) or config.get("uri")
    if uri is not None:
        settings.uri, settings.uri_given = str(uri), True
    if hasattr(args, "key_vault"):  # every command but doctor
        settings.key_vault = _namespace(
            args.key_vault
            or environ.get(ENV_KEY_VAULT)
            or str(config.get("key_vault", DEFAULT_KEY_VAULT))
        )
    timeout = getattr(args, "timeout_ms", None)
    if timeout is None and "timeout_ms" in config:
        timeout = config["timeout_ms"]
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
            raise UsageError("timeout_ms in the config file must be a positive integer")
    settings.timeout_ms = timeout
    if not hasattr(args, "kms_providers_file"):  # doctor needs no KMS credentials
        return settings

    providers = _normalise_providers(config.get("kms_providers", {}), base)
    providers_file = getattr(args, "kms_providers_file", None) or environ.get(
        ENV_KMS_PROVIDERS_FILE
    )
    if providers_file:
        providers.update(_normalise_providers(_read_document(providers_file, "KMS providers file")))
    local_files = list(getattr(args, "local_key_file", None) or [])
    if not any(name == "local" for name, _ in local_files):
        if environ.get(ENV_LOCAL_KEY_FILE):
            local_files.insert(0, ("local", environ[ENV_LOCAL_KEY_FILE]))
        elif environ.get(ENV_LOCAL_KEY):
            providers["local"] = {"key": _local_key(environ[ENV_LOCAL_KEY], "local")}
    for name, path in local_files:
        providers[name] = {"key": read_local_key_file(path, name)}
    for name in getattr(args, "on_demand", None) or []:
        providers[name] = {}
    settings.kms_providers = providers

    tls_options = _tls_paths(config.get("kms_tls_options", {}), base)
    tls_file = getattr(args, "kms_tls_options_file", None) or environ.get(ENV_KMS_TLS_OPTIONS_FILE)
    if tls_file:
        tls_options.update(_read_document(tls_file, "KMS TLS options file"))
    settings.kms_tls_options = tls_options
    return settings


# -- connecting -------------------------------------------------------------------------------


def _mongo_client(settings: Settings, timeout_ms: int) -> pymongo.MongoClient[Any]:
    try:
        return pymongo.MongoClient(
            settings.uri,
            appname="mongocrypt-cli",
            uuidRepresentation="standard",
            tz_aware=True,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
        )
    except (ConfigurationError, ValueError, TypeError) as exc:
        raise UsageError(f"bad connection string {redact_uri(settings.uri)!r}: {exc}") from None


@contextlib.contextmanager
def key_vault_session(
    settings: Settings, need_kms: bool
) -> Iterator[tuple[pymongo.MongoClient[Any], ClientEncryption]]:
    """A client and a ClientEncryption on the key vault, closed afterwards."""
    providers: Mapping[str, Any] = settings.kms_providers
    if not providers:
        if need_kms:
            raise UsageError(
                "no KMS provider configured: use --local-key-file, --kms-providers-file, "
                f"--on-demand, {ENV_LOCAL_KEY_FILE} or a config file (--config)"
            )
        # Listing, showing, deleting and renaming keys never unwrap them: any provider will do.
        providers = {"local": {"key": os.urandom(LOCAL_KEY_SIZE)}}
    timeout_ms = settings.timeout_ms or DEFAULT_TIMEOUT_MS
    client = _mongo_client(settings, timeout_ms)
    try:
        with ClientEncryption(
            providers,
            settings.key_vault,
            client,
            kms_tls_options=settings.kms_tls_options or None,
            timeout_ms=timeout_ms,
        ) as client_encryption:
            yield client, client_encryption
    finally:
        client.close()


def _require_provider(settings: Settings, provider: str) -> None:
    if provider not in settings.kms_providers:
        configured = ", ".join(sorted(settings.kms_providers)) or "none"
        raise UsageError(
            f"no settings for KMS provider {provider!r} (configured: {configured}); "
            "add them with --kms-providers-file, --local-key-file, --on-demand or --config"
        )


# -- values and documents ---------------------------------------------------------------------


def parse_json(text: str, what: str) -> Any:
    """An Extended JSON value given by the user."""
    try:
        return json_util.loads(text, json_options=_JSON_IN)
    except Exception as exc:
        hint = " (quote strings as JSON: '\"text\"')" if what == "value" else ""
        raise UsageError(f"{what} is not valid (Extended) JSON: {exc}{hint}") from None


def _json_object(text: Optional[str], what: str) -> Optional[dict[str, Any]]:
    if text is None:
        return None
    value = parse_json(text, what)
    if not isinstance(value, dict):
        raise UsageError(f"{what} must be a JSON object")
    return value


def _plain(value: Any) -> Any:
    """``value`` as JSON types (relaxed Extended JSON for BSON-specific ones)."""
    return json.loads(json_util.dumps(value, json_options=_RELAXED))


def key_summary(document: Mapping[str, Any]) -> dict[str, Any]:
    """A key document as shown to people and programs (wrapped key material left out)."""
    if isinstance(document, RawBSONDocument):
        decoded: dict[str, Any] = bson.decode(document.raw, codec_options=_DOCUMENTS)
        document = decoded
    master_key = dict(document.get("masterKey") or {})
    key_id = document.get("_id")
    if isinstance(key_id, Binary) and key_id.subtype == 4:
        key_id = key_id.as_uuid()
    return {
        "id": str(key_id),
        "keyAltNames": list(document.get("keyAltNames") or []),
        "provider": master_key.pop("provider", None),
        "masterKey": _plain(master_key),
        "creationDate": _date(document.get("creationDate")),
        "updateDate": _date(document.get("updateDate")),
        "status": document.get("status"),
    }


def _date(value: Any) -> Optional[str]:
    return value.isoformat() if hasattr(value, "isoformat") else None


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


# -- output -----------------------------------------------------------------------------------


class Output:
    """Writes results: JSON when asked, otherwise lines for people."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    def result(self, data: Any, text: Callable[[], str]) -> None:
        if self.as_json:
            self.stream.write(json.dumps(data, indent=2) + "\n")
        else:
            rendered = text()
            if rendered:
                self.stream.write(rendered + "\n")


class Progress:
    """A progress bar on stderr, drawn only when stderr is a terminal."""

    WIDTH = 30

    def __init__(self, total: int, label: str) -> None:
        self.total = total
        self.done = 0
        self.label = label
        self.enabled = total > 0 and sys.stderr.isatty()

    def advance(self, count: int) -> None:
        self.done += count
        if self.enabled:
            filled = self.WIDTH * self.done // self.total
            bar = "#" * filled + "." * (self.WIDTH - filled)
            sys.stderr.write(f"\r{self.label} [{bar}] {self.done}/{self.total}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _key_line(key: Mapping[str, Any]) -> str:
    names = ", ".join(key["keyAltNames"]) or "-"
    return f"{key['id']}  {key['provider']:<14}  {key['creationDate'] or '-':<32}  {names}"


def _key_details(key: Mapping[str, Any]) -> str:
    lines = [
        f"id:            {key['id']}",
        f"provider:      {key['provider']}",
        f"alt names:     {', '.join(key['keyAltNames']) or '-'}",
        f"created:       {key['creationDate'] or '-'}",
        f"updated:       {key['updateDate'] or '-'}",
        f"status:        {key['status']}",
    ]
    lines += [f"masterKey.{name}: {value}" for name, value in key["masterKey"].items()]
    return "\n".join(lines)


# -- keys -------------------------------------------------------------------------------------


def cmd_keys_create(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    _require_provider(settings, args.provider)
    master_key = _json_object(args.master_key, "--master-key")
    opts = DataKeyOpts(master_key=master_key, key_alt_names=args.alt_name or ())
    with key_vault_session(settings, need_kms=True) as (_client, client_encryption):
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
        return "\n".join([header, *(_key_line(k) for k in keys)])

    out.result(keys, text)
    return 0


def cmd_keys_show(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    with key_vault_session(settings, need_kms=False) as (_client, client_encryption):
        key = find_key(client_encryption, args.key)
    out.result(key, lambda: _key_details(key))
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
    with key_vault_session(settings, need_kms=False) as (_client, client_encryption):
        key = find_key(client_encryption, args.key)
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
    query = _json_object(args.filter, "--filter") or {}
    master_key = _json_object(args.master_key, "--master-key")
    if master_key is not None and args.provider is None:
        raise UsageError("--master-key needs --provider")
    if args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    opts = None
    if args.provider is not None:
        _require_provider(settings, args.provider)
        opts = RewrapManyDataKeyOpts(args.provider, master_key)
    started = time.monotonic()
    rewrapped = 0
    with key_vault_session(settings, need_kms=True) as (client, client_encryption):
        database, collection = settings.key_vault.split(".", 1)
        vault = client[database].get_collection(collection, read_concern=ReadConcern("majority"))
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
            raise OperationError(
                f"rewrap stopped after {rewrapped} of {len(ids)} keys: {exc}"
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


# -- encrypt / decrypt ------------------------------------------------------------------------


def _input_value(value: Optional[str]) -> str:
    if value is None or value == "-":
        value = sys.stdin.read()
    if not value.strip():
        raise UsageError("no value given (pass it as an argument or on stdin)")
    return value


def _range_opts(text: Optional[str]) -> Optional[RangeOpts]:
    document = _json_object(text, "--range-opts")
    if document is None:
        return None
    names = {"min": "min", "max": "max", "sparsity": "sparsity", "precision": "precision"}
    names["trimFactor"] = "trim_factor"
    unknown = sorted(set(document) - set(names))
    if unknown:
        raise UsageError(f"unknown --range-opts field {unknown[0]!r} (known: {', '.join(names)})")
    try:
        return RangeOpts(**{names[k]: v for k, v in document.items()})
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--range-opts: {exc}") from None


def _string_opts(text: Optional[str]) -> Optional[StringOpts]:
    document = _json_object(text, "--string-opts")
    if document is None:
        return None
    names = {
        "caseSensitive": "case_sensitive",
        "diacriticSensitive": "diacritic_sensitive",
        "prefix": "prefix",
        "suffix": "suffix",
        "substring": "substring",
    }
    unknown = sorted(set(document) - set(names))
    if unknown:
        raise UsageError(f"unknown --string-opts field {unknown[0]!r} (known: {', '.join(names)})")
    try:
        return StringOpts(**{names[k]: v for k, v in document.items()})
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--string-opts: {exc}") from None


def _dump(value: Any, canonical: bool) -> str:
    return json_util.dumps(value, json_options=_CANONICAL if canonical else _RELAXED)


def cmd_encrypt(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    value = parse_json(_input_value(args.value), "value")
    algorithm = ALGORITHMS.get(args.algorithm.lower(), args.algorithm)
    key_id = None
    if args.key_id is not None:
        try:
            key_id = uuid.UUID(args.key_id)
        except ValueError:
            raise UsageError(f"--key-id must be a UUID, not {args.key_id!r}") from None
    try:
        opts = EncryptOpts(
            algorithm,
            key_id=key_id,
            key_alt_name=args.key_alt_name,
            contention_factor=args.contention_factor,
            query_type=args.query_type,
            range_opts=_range_opts(args.range_opts),
            string_opts=_string_opts(args.string_opts),
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    with key_vault_session(settings, need_kms=True) as (_client, client_encryption):
        ciphertext = client_encryption.encrypt(value, opts)
    data = {"ciphertext": json.loads(_dump(ciphertext, True))}
    out.result(data, lambda: _dump(ciphertext, args.canonical))
    return 0


def cmd_decrypt(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    ciphertext = parse_json(_input_value(args.ciphertext), "ciphertext")
    if not (isinstance(ciphertext, Binary) and ciphertext.subtype == 6):
        raise UsageError(
            'ciphertext must be Extended JSON binary of subtype 6: {"$binary": '
            '{"base64": "...", "subType": "06"}}'
        )
    with key_vault_session(settings, need_kms=True) as (_client, client_encryption):
        value = client_encryption.decrypt(ciphertext)
    data = {"value": json.loads(_dump(value, True))}
    out.result(data, lambda: _dump(value, args.canonical))
    return 0


# -- doctor -----------------------------------------------------------------------------------


def _crypt_shared(path: Optional[str]) -> dict[str, Any]:
    from mongocrypt.engine import MongoCrypt, MongoCryptOptions

    where = path or "$SYSTEM"
    # libmongocrypt logs each candidate it fails to open: keep those lines as the report's detail.
    log = _Collect()
    logger = logging.getLogger("mongocrypt.libmongocrypt")
    logger.addHandler(log)
    propagate, logger.propagate = logger.propagate, False
    try:
        options = MongoCryptOptions(
            {"local": {"key": bytes(LOCAL_KEY_SIZE)}}, crypt_shared_lib_path=path
        )
        with MongoCrypt(options) as handle:
            version = handle.crypt_shared_lib_version
        error = None
    except MongoCryptError as exc:
        version, error = None, str(exc)
    finally:
        logger.removeHandler(log)
        logger.propagate = propagate
    return {
        "found": version is not None,
        "version": version,
        "searched": where,
        "error": error,
        "log": log.messages,
    }


class _Collect(logging.Handler):
    """Keeps the messages it receives."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _embedded_analyzer() -> bool:
    try:
        analysis = importlib.import_module("mongocrypt.analysis")
    except ImportError:
        return False
    return callable(getattr(analysis, "mark_command", None))


def _query_analysis(
    environ: Mapping[str, str], crypt_shared: Mapping[str, Any], mongocryptd: Optional[str]
) -> dict[str, Any]:
    from mongocrypt.auto_encryption import QUERY_ANALYSIS_MODES

    setting = environ.get(ENV_QUERY_ANALYSIS)
    source = ENV_QUERY_ANALYSIS if setting else "default"
    setting = setting or "auto"
    embedded = _embedded_analyzer()
    problem = None
    if setting not in QUERY_ANALYSIS_MODES:
        mode = "invalid"
        problem = (
            f"{ENV_QUERY_ANALYSIS}={setting!r} is not one of {', '.join(QUERY_ANALYSIS_MODES)}"
        )
    elif setting == "auto":
        if crypt_shared["found"]:
            mode = "crypt_shared"
        elif mongocryptd:
            mode = "mongocryptd"
        else:
            mode = "none available (use query_analysis='embedded')"
    else:
        mode = setting
        if setting == "crypt_shared" and not crypt_shared["found"]:
            problem = "query analysis is crypt_shared but crypt_shared was not found"
        elif setting == "mongocryptd" and not mongocryptd:
            problem = "query analysis is mongocryptd but mongocryptd is not on PATH"
        elif setting == "embedded" and not embedded:
            problem = "query analysis is embedded but the embedded analyzer is not installed"
    return {
        "setting": setting,
        "source": source,
        "mode": mode,
        "embedded_analyzer": embedded,
        "problem": problem,
    }


def _drop_in() -> dict[str, Any]:
    info: dict[str, Any] = {
        "pymongo": pymongo.version,
        "pymongocrypt": None,
        "pymongocrypt_path": None,
        "facade_active": False,
    }
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        info["pymongocrypt"] = importlib.metadata.version("pymongocrypt")
    try:
        facade = importlib.import_module("pymongocrypt")
    except ImportError:
        return info
    location = getattr(facade, "__file__", None)
    if location:
        ours = Path(mongocrypt.__file__).resolve().parent.parent
        package = Path(location).resolve().parent
        info["pymongocrypt_path"] = str(package)
        info["facade_active"] = package.parent == ours
    return info


def _check_server(settings: Settings, timeout_ms: int) -> dict[str, Any]:
    result: dict[str, Any] = {"uri": redact_uri(settings.uri), "ok": False}
    started = time.monotonic()
    client = _mongo_client(settings, timeout_ms)
    try:
        with pymongo.timeout(timeout_ms / 1000):
            client.admin.command("ping")
            result["ok"] = True
            with contextlib.suppress(PyMongoError):
                result["version"] = client.admin.command("buildInfo").get("version")
    except PyMongoError as exc:
        result["error"] = _short(exc)
    finally:
        client.close()
    result["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


def _short(exc: PyMongoError) -> str:
    """A server selection error without pymongo's topology description."""
    return str(exc).split(", Timeout: ")[0]


def _tls_context(ca_file: Optional[str], cert_file: Optional[str]) -> ssl.SSLContext:
    from mongocrypt.io.tls import default_kms_context, kms_ssl_contexts

    options = {}
    if ca_file:
        options["tlsCAFile"] = ca_file
    if cert_file:
        options["tlsCertificateKeyFile"] = cert_file
    if not options:
        return default_kms_context()
    try:
        return kms_ssl_contexts({"kms": options})["kms"]
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load the KMS TLS files: {exc}") from None


def _check_kms(endpoint: str, context: ssl.SSLContext, timeout_ms: int) -> dict[str, Any]:
    from mongocrypt.io.kms import parse_endpoint

    result: dict[str, Any] = {"endpoint": endpoint, "ok": False}
    started = time.monotonic()
    try:
        host, port = parse_endpoint(endpoint)
        sock = socket.create_connection((host, port), timeout=timeout_ms / 1000)
        with context.wrap_socket(sock, server_hostname=host) as tls:
            result["ok"] = True
            result["tls_version"] = tls.version()
    except ssl.SSLCertVerificationError as exc:
        result["error"] = f"certificate verification failed: {exc.verify_message}"
    except (OSError, ValueError) as exc:
        result["error"] = str(exc) or type(exc).__name__
    result["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _doctor_text(report: Mapping[str, Any]) -> str:
    lib = report["libmongocrypt"]
    shared = report["crypt_shared"]
    analysis = report["query_analysis"]
    drop_in = report["drop_in"]
    features = ", ".join(f"{name}: {_yes(on)}" for name, on in report["features"].items())
    if shared["found"]:
        shared_text = f"found, version {shared['version']} (searched {shared['searched']})"
    elif shared["error"]:
        shared_text = f"not loaded (searched {shared['searched']}): {shared['error']}"
    else:
        shared_text = f"not found (searched {shared['searched']})"
    facade = "active" if drop_in["facade_active"] else "not active"
    rows = [
        ("mongocrypt", f"{report['mongocrypt']} (Python {report['python']})"),
        ("libmongocrypt", f"{lib['version']}, native crypto: {_yes(lib['native_crypto'])}"),
        ("crypto", lib["crypto"]),
        ("features", features),
        ("crypt_shared", shared_text),
        ("mongocryptd", report["mongocryptd"] or "not on PATH"),
        (
            "query analysis",
            f"{analysis['setting']} ({analysis['source']}) -> {analysis['mode']}",
        ),
        ("embedded analyzer", "installed" if analysis["embedded_analyzer"] else "not installed"),
        ("pymongo", drop_in["pymongo"]),
        (
            "pymongocrypt",
            f"{drop_in['pymongocrypt'] or 'not installed'}, mongocrypt's drop-in facade: {facade}"
            + (f" ({drop_in['pymongocrypt_path']})" if drop_in["pymongocrypt_path"] else ""),
        ),
    ]
    server = report["server"]
    if server is None:
        rows.append(("server", f"not checked (give --uri or {ENV_URI})"))
    elif server["ok"]:
        version = f"version {server.get('version')}, " if server.get("version") else ""
        rows.append(("server", f"ok: {server['uri']} ({version}{server['duration_ms']} ms)"))
    else:
        rows.append(("server", f"FAILED: {server['uri']}: {server['error']}"))
    for kms in report["kms_endpoints"]:
        label = f"kms {kms['endpoint']}"
        if kms["ok"]:
            rows.append((label, f"ok: {kms['tls_version']} ({kms['duration_ms']} ms)"))
        else:
            rows.append((label, f"FAILED: {kms['error']}"))
    lines = [f"{label:<18} {value}" for label, value in rows]
    lines += [f"problem: {problem}" for problem in report["problems"]]
    return "\n".join(lines)


def cmd_doctor(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    timeout_ms = settings.timeout_ms or DOCTOR_TIMEOUT_MS
    context = _tls_context(args.kms_ca_file, args.kms_cert_file) if args.kms_endpoint else None
    shared = _crypt_shared(args.crypt_shared_lib_path)
    mongocryptd = shutil.which("mongocryptd")
    analysis = _query_analysis(os.environ, shared, mongocryptd)
    report: dict[str, Any] = {
        "mongocrypt": mongocrypt.__version__,
        "python": platform.python_version(),
        "libmongocrypt": {
            "version": mongocrypt.libmongocrypt_version(),
            "native_crypto": mongocrypt.is_crypto_available(),
            "crypto": crypto_in_use(),
        },
        "features": {
            name: bool(getattr(mongocrypt, name))
            for name in sorted(mongocrypt.__all__)
            if name.startswith("has_")
        },
        "crypt_shared": shared,
        "mongocryptd": mongocryptd,
        "query_analysis": analysis,
        "drop_in": _drop_in(),
        "server": _check_server(settings, timeout_ms) if settings.uri_given else None,
        "kms_endpoints": [
            _check_kms(endpoint, context, timeout_ms)
            for endpoint in args.kms_endpoint or []
            if context is not None
        ],
    }
    problems = []
    if analysis["problem"]:
        problems.append(analysis["problem"])
    if report["server"] is not None and not report["server"]["ok"]:
        problems.append("the server did not answer ping")
    problems += [f"KMS {k['endpoint']} failed" for k in report["kms_endpoints"] if not k["ok"]]
    report["problems"] = problems
    report["ok"] = not problems
    out.result(report, lambda: _doctor_text(report))
    return 0 if report["ok"] else 1


# -- the parser -------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse with errors in the ``mongocrypt: error:`` form (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{PROG}: error: {message}\n")


def _local_key_arg(value: str) -> tuple[str, str]:
    name, sep, path = value.partition("=")
    if sep and _is_local(name):
        return name, path
    return "local", value


def _positive(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {value}")
    return number


def _non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {value}")
    return number


_ENVIRONMENT = [
    (ENV_URI, "connection string (--uri)"),
    (ENV_KEY_VAULT, "key vault namespace (--key-vault)"),
    (ENV_CONFIG, "TOML config file (--config)"),
    (ENV_LOCAL_KEY_FILE, "local master key file (--local-key-file)"),
    (ENV_LOCAL_KEY, "local master key, base64"),
    (ENV_KMS_PROVIDERS_FILE, "KMS providers JSON file (--kms-providers-file)"),
    (ENV_KMS_TLS_OPTIONS_FILE, "KMS TLS options JSON file (--kms-tls-options-file)"),
    (ENV_QUERY_ANALYSIS, "automatic encryption's query analysis (see doctor)"),
]
EPILOG = "\n".join(
    [
        "environment:",
        *(f"  {name:<33} {text}" for name, text in _ENVIRONMENT),
        "",
        "exit codes: 0 success, 1 operation failed, 2 usage or configuration error",
    ]
)


def build_parser() -> argparse.ArgumentParser:
    """The ``mongocrypt`` argument parser."""
    output = _Parser(add_help=False)
    output.add_argument("--json", action="store_true", help="machine-readable output on stdout")

    connection = _Parser(add_help=False)
    group = connection.add_argument_group("connection")
    group.add_argument(
        "--uri", help=f"MongoDB connection string (${ENV_URI}; default {DEFAULT_URI})"
    )
    group.add_argument(
        "--key-vault",
        metavar="DB.COLL",
        help=f"key vault namespace (${ENV_KEY_VAULT}; default {DEFAULT_KEY_VAULT})",
    )
    group.add_argument("--config", metavar="FILE", help=f"TOML config file (${ENV_CONFIG})")
    group.add_argument(
        "--timeout-ms",
        type=_positive,
        metavar="MS",
        help=f"bound on each operation (default {DEFAULT_TIMEOUT_MS})",
    )

    kms = _Parser(add_help=False)
    group = kms.add_argument_group("KMS providers (credentials are never read from flags)")
    group.add_argument(
        "--local-key-file",
        type=_local_key_arg,
        action="append",
        metavar="[NAME=]FILE",
        help="local master key: 96 bytes or their base64 (NAME like local:new; repeatable)",
    )
    group.add_argument(
        "--kms-providers-file",
        metavar="FILE",
        help='JSON / Extended JSON: {"aws": {"accessKeyId": ..., "secretAccessKey": ...}, ...}',
    )
    group.add_argument(
        "--kms-tls-options-file",
        metavar="FILE",
        help='JSON: {"aws": {"tlsCAFile": ..., "tlsCertificateKeyFile": ...}, ...}',
    )
    group.add_argument(
        "--on-demand",
        action="append",
        choices=("aws", "gcp", "azure"),
        help="fetch this provider's credentials from the environment or cloud metadata",
    )

    parser = _Parser(
        prog=PROG,
        description="MongoDB client-side encryption: key vault, values, diagnostics.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {mongocrypt.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    keys = commands.add_parser(
        "keys",
        help="manage the data keys in a key vault",
        description="Manage the data keys in a key vault. KEY is a key's UUID or alternate name.",
    )
    key_commands = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    common = [output, connection, kms]

    create = key_commands.add_parser(
        "create", parents=common, help="create a data key", description="Create a data key."
    )
    create.add_argument("provider", metavar="PROVIDER", help="KMS provider, e.g. local, aws:eu")
    create.add_argument(
        "--master-key",
        metavar="JSON",
        help='the provider\'s masterKey, e.g. {"region": ..., "key": ...} (not for local)',
    )
    create.add_argument(
        "--alt-name", action="append", metavar="NAME", help="alternate name (repeatable)"
    )
    create.set_defaults(run=cmd_keys_create)

    listing = key_commands.add_parser(
        "list", parents=common, help="list data keys", description="List the data keys."
    )
    listing.add_argument("--provider", help="only keys wrapped by this KMS provider")
    listing.set_defaults(run=cmd_keys_list)

    show = key_commands.add_parser(
        "show", parents=common, help="show one data key", description="Show one data key."
    )
    show.add_argument("key", metavar="KEY")
    show.set_defaults(run=cmd_keys_show)

    delete = key_commands.add_parser(
        "delete",
        parents=common,
        help="delete a data key",
        description="Delete a data key. Values encrypted with it can no longer be decrypted.",
    )
    delete.add_argument("key", metavar="KEY")
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(run=cmd_keys_delete)

    add = key_commands.add_parser(
        "add-alt-name",
        parents=common,
        help="add an alternate name to a key",
        description="Add an alternate name to a data key.",
    )
    add.add_argument("key", metavar="KEY")
    add.add_argument("name", metavar="NAME")
    add.set_defaults(run=cmd_keys_add_alt_name)

    remove = key_commands.add_parser(
        "remove-alt-name",
        parents=common,
        help="remove an alternate name from a key",
        description="Remove an alternate name from a data key.",
    )
    remove.add_argument("key", metavar="KEY")
    remove.add_argument("name", metavar="NAME")
    remove.set_defaults(run=cmd_keys_remove_alt_name)

    rewrap = key_commands.add_parser(
        "rewrap",
        parents=common,
        help="re-encrypt data keys under a master key",
        description=(
            "Re-encrypt the matching data keys under another master key, or under each key's "
            "own master key when --provider is not given (rotation). Progress goes to stderr "
            "when it is a terminal; a summary follows."
        ),
    )
    rewrap.add_argument("--filter", metavar="JSON", help="key vault filter (default: every key)")
    rewrap.add_argument("--provider", help="target KMS provider")
    rewrap.add_argument("--master-key", metavar="JSON", help="target masterKey (not for local)")
    rewrap.add_argument(
        "--batch-size", type=int, default=100, metavar="N", help="keys per request (100)"
    )
    rewrap.set_defaults(run=cmd_keys_rewrap)

    encrypt = commands.add_parser(
        "encrypt",
        parents=common,
        help="encrypt one value",
        description="Encrypt one value given as Extended JSON; prints the ciphertext.",
    )
    encrypt.add_argument(
        "value", nargs="?", metavar="VALUE", help="Extended JSON, e.g. '\"text\"' (default: stdin)"
    )
    encrypt.add_argument(
        "--algorithm",
        required=True,
        metavar="NAME",
        help=f"{', '.join(ALGORITHMS)}, or a full algorithm name",
    )
    which = encrypt.add_mutually_exclusive_group(required=True)
    which.add_argument("--key-id", metavar="UUID", help="the data key's id")
    which.add_argument("--key-alt-name", metavar="NAME", help="the data key's alternate name")
    encrypt.add_argument(
        "--contention-factor", type=_non_negative, metavar="N", help="indexed, range, string"
    )
    encrypt.add_argument("--query-type", choices=QUERY_TYPES, help="make a find payload")
    encrypt.add_argument(
        "--range-opts", metavar="JSON", help='{"min": ..., "max": ..., "sparsity": ...}'
    )
    encrypt.add_argument(
        "--string-opts", metavar="JSON", help='{"caseSensitive": ..., "prefix": {...}, ...}'
    )
    encrypt.add_argument("--canonical", action="store_true", help="canonical Extended JSON")
    encrypt.set_defaults(run=cmd_encrypt)

    decrypt = commands.add_parser(
        "decrypt",
        parents=common,
        help="decrypt one value",
        description="Decrypt one ciphertext given as Extended JSON; prints the value.",
    )
    decrypt.add_argument(
        "ciphertext", nargs="?", metavar="CIPHERTEXT", help="Extended JSON binary (default: stdin)"
    )
    decrypt.add_argument(
        "--canonical", action="store_true", help="canonical Extended JSON (keeps BSON types)"
    )
    decrypt.set_defaults(run=cmd_decrypt)

    doctor = commands.add_parser(
        "doctor",
        parents=[output],
        help="check the installation and connectivity",
        description=(
            "Report the linked libmongocrypt, crypt_shared, mongocryptd, the query analysis "
            "automatic encryption would use, pymongo and the drop-in facade; check a server "
            "(--uri) and KMS endpoints. Exits 1 when a check fails."
        ),
    )
    doctor.add_argument("--uri", help=f"ping this server (${ENV_URI})")
    doctor.add_argument("--config", metavar="FILE", help=f"TOML config file (${ENV_CONFIG})")
    doctor.add_argument(
        "--timeout-ms",
        type=_positive,
        metavar="MS",
        help=f"bound on each check (default {DOCTOR_TIMEOUT_MS})",
    )
    doctor.add_argument(
        "--kms-endpoint",
        action="append",
        metavar="HOST:PORT",
        help="check a TLS handshake with this KMS (repeatable)",
    )
    doctor.add_argument("--kms-ca-file", metavar="FILE", help="CA for KMS checks (default: system)")
    doctor.add_argument("--kms-cert-file", metavar="FILE", help="client certificate (e.g. KMIP)")
    doctor.add_argument(
        "--crypt-shared-lib-path", metavar="FILE", help="check this crypt_shared library"
    )
    doctor.set_defaults(run=cmd_doctor)
    return parser


# -- entry point ------------------------------------------------------------------------------


def _scrub(message: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        message = message.replace(secret, "<redacted>")
    return message


def _error(message: str, secrets: Sequence[str]) -> None:
    sys.stderr.write(f"{PROG}: error: {_scrub(message, secrets)}\n")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code.

    :param argv: the arguments (default: ``sys.argv[1:]``).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    secrets: list[str] = []
    settings = Settings()
    try:
        settings = load_settings(args, os.environ)
        secrets = settings.secrets()
        return int(args.run(args, settings, Output(args.json)))
    except UsageError as exc:
        _error(str(exc), secrets)
        return 2
    except OperationError as exc:
        _error(str(exc), secrets)
        return 1
    except ServerSelectionTimeoutError as exc:
        uri = redact_uri(settings.uri)
        _error(f"no server reachable at {uri}: {_short(exc)}", secrets)
        return 1
    except (MongoCryptError, PyMongoError, OSError, ValueError, TypeError) as exc:
        _error(str(exc) or type(exc).__name__, secrets)
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
