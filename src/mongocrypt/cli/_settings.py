"""Where a command's settings come from: flags, then environment variables, then a TOML config file.

Also the two error kinds every command raises and the connection to the key vault.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import stat
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional
from urllib.parse import unquote

import pymongo
from bson import json_util
from bson.binary import STANDARD
from bson.codec_options import CodecOptions
from pymongo.errors import ConfigurationError

from mongocrypt import ClientEncryption, _env
from mongocrypt._secrets import is_secret_name

PROG = "mongocrypt"
DEFAULT_URI = "mongodb://localhost:27017"
DEFAULT_KEY_VAULT = "encryption.__keyVault"
DEFAULT_TIMEOUT_MS = 10_000
DOCTOR_TIMEOUT_MS = 5_000
#: A local master key is exactly this many bytes.
LOCAL_KEY_SIZE = 96


CONFIG_KEYS = ("uri", "key_vault", "timeout_ms", "kms_providers", "kms_tls_options")
#: TLS options naming files: relative paths in a config file are relative to that file.
TLS_FILE_OPTIONS = ("tlsCAFile", "tlsCertificateKeyFile")

JSON_IN = json_util.JSONOptions(uuid_representation=STANDARD, tz_aware=True)
RELAXED = json_util.JSONOptions(
    json_mode=json_util.JSONMode.RELAXED, uuid_representation=STANDARD, tz_aware=True
)
CANONICAL = json_util.JSONOptions(
    json_mode=json_util.JSONMode.CANONICAL, uuid_representation=STANDARD, tz_aware=True
)
DOCUMENTS: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True, uuid_representation=STANDARD)


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
        for settings in [*self.kms_providers.values(), *self.kms_tls_options.values()]:
            for name, value in settings.items():
                if not is_secret_name(name):
                    continue
                if isinstance(value, (bytes, bytearray)):
                    found += [base64.b64encode(value).decode(), bytes(value).hex()]
                elif isinstance(value, str):
                    found.append(value)
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
        document = json_util.loads(text, json_options=JSON_IN)
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


def _from_base64(text: bytes) -> bytes:
    """Base64 text decoded, line breaks and other white space ignored (``base64`` wraps at 76).

    :raises ValueError: when the rest is not valid base64.
    """
    return base64.b64decode(b"".join(text.split()), validate=True)


def _local_key(value: object, provider: str) -> bytes:
    """A local master key from bytes or base64 text; never quotes the key in errors."""
    if isinstance(value, str):
        try:
            value = _from_base64(value.encode("ascii", "replace"))
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
        decoded = _from_base64(data)
    except ValueError:
        raise UsageError(
            f"local key file {path} must hold {LOCAL_KEY_SIZE} bytes or their base64, "
            f"not {len(data)} bytes of something else"
        ) from None
    return _local_key(decoded, provider)


def is_local(provider: str) -> bool:
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
        if is_local(name):
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


def _warn_if_exposed(path: Path, config: Mapping[str, Any]) -> None:
    """Warn on stderr when a config file holding secrets is readable by other users."""
    if os.name != "posix" or not (path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH)):
        return
    tables = [
        table
        for section in ("kms_providers", "kms_tls_options")
        if isinstance(config.get(section), Mapping)
        for table in config[section].values()
        if isinstance(table, Mapping)
    ]
    holds_secrets = _uri_password(str(config.get("uri", ""))) is not None or any(
        is_secret_name(name) for table in tables for name in table
    )
    if holds_secrets:
        sys.stderr.write(
            f"{PROG}: warning: config file {path} holds secrets and other users can read it "
            f"(chmod 600 {path})\n"
        )


def check_namespace(value: str) -> str:
    """``value`` if it is a ``database.collection`` namespace, else a usage error."""
    database, _, collection = value.partition(".")
    if not database or not collection or collection.endswith("."):
        raise UsageError(f"key vault namespace must be 'database.collection', not {value!r}")
    return value


def load_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Flags first, then environment variables, then the config file, then defaults."""
    settings = Settings()
    config_path = getattr(args, "config", None) or environ.get(_env.CONFIG)
    config: dict[str, Any] = {}
    base = Path.cwd()
    if config_path:
        path = Path(config_path)
        config = _load_toml(path)
        _warn_if_exposed(path, config)
        base = path.resolve().parent
        unknown = sorted(set(config) - set(CONFIG_KEYS))
        if unknown:
            raise UsageError(
                f"unknown setting {unknown[0]!r} in config file {path} "
                f"(known: {', '.join(CONFIG_KEYS)})"
            )
    uri = getattr(args, "uri", None) or environ.get(_env.URI) or config.get("uri")
    if uri is not None:
        settings.uri, settings.uri_given = str(uri), True
    key_vault = (
        getattr(args, "key_vault", None)
        or environ.get(_env.KEY_VAULT)
        or str(config.get("key_vault", DEFAULT_KEY_VAULT))
    )
    # The doctor reports a bad namespace as a finding (when it checks a server), never stops.
    doctor = not hasattr(args, "kms_providers_file")
    settings.key_vault = key_vault if doctor else check_namespace(key_vault)
    timeout = getattr(args, "timeout_ms", None)
    if timeout is None and "timeout_ms" in config:
        timeout = config["timeout_ms"]
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
            raise UsageError("timeout_ms in the config file must be a positive integer")
    settings.timeout_ms = timeout
    if doctor:  # it needs no KMS credentials
        return settings

    providers = _normalise_providers(config.get("kms_providers", {}), base)
    providers_file = getattr(args, "kms_providers_file", None) or environ.get(
        _env.KMS_PROVIDERS_FILE
    )
    if providers_file:
        providers.update(_normalise_providers(_read_document(providers_file, "KMS providers file")))
    local_files = list(getattr(args, "local_key_file", None) or [])
    if not any(name == "local" for name, _ in local_files):
        if environ.get(_env.LOCAL_KEY_FILE):
            local_files.insert(0, ("local", environ[_env.LOCAL_KEY_FILE]))
        elif environ.get(_env.LOCAL_KEY):
            providers["local"] = {"key": _local_key(environ[_env.LOCAL_KEY], "local")}
    for name, path in local_files:
        providers[name] = {"key": read_local_key_file(path, name)}
    for name in getattr(args, "on_demand", None) or []:
        providers[name] = {}
    settings.kms_providers = providers

    tls_options = _tls_paths(config.get("kms_tls_options", {}), base)
    tls_file = getattr(args, "kms_tls_options_file", None) or environ.get(_env.KMS_TLS_OPTIONS_FILE)
    if tls_file:
        tls_options.update(_read_document(tls_file, "KMS TLS options file"))
    settings.kms_tls_options = tls_options
    return settings


# -- connecting -------------------------------------------------------------------------------


def mongo_client(settings: Settings, timeout_ms: int) -> pymongo.MongoClient[Any]:
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
                f"--on-demand, {_env.LOCAL_KEY_FILE} or a config file (--config)"
            )
        # Listing, showing, deleting and renaming keys never unwrap them: any provider will do.
        providers = {"local": {"key": os.urandom(LOCAL_KEY_SIZE)}}
    timeout_ms = settings.timeout_ms or DEFAULT_TIMEOUT_MS
    client = mongo_client(settings, timeout_ms)
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


def require_provider(settings: Settings, provider: str) -> None:
    if provider not in settings.kms_providers:
        configured = ", ".join(sorted(settings.kms_providers)) or "none"
        raise UsageError(
            f"no settings for KMS provider {provider!r} (configured: {configured}); "
            "add them with --kms-providers-file, --local-key-file, --on-demand or --config"
        )
