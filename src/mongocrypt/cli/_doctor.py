"""``mongocrypt doctor``: what is installed, what query analysis would be used, what answers."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.metadata
import logging
import os
import platform
import shutil
import socket
import ssl
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

import pymongo
from pymongo.errors import PyMongoError

import mongocrypt
from mongocrypt import MongoCryptError, _env
from mongocrypt.cli._keys import has_alt_name_index, vault_collection
from mongocrypt.cli._output import Output, short_error
from mongocrypt.cli._settings import (
    DOCTOR_TIMEOUT_MS,
    LOCAL_KEY_SIZE,
    Settings,
    UsageError,
    check_namespace,
    mongo_client,
    redact_uri,
)

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


def _query_analysis(
    environ: Mapping[str, str], crypt_shared: Mapping[str, Any], mongocryptd: Optional[str]
) -> dict[str, Any]:
    from mongocrypt.auto_encryption import QUERY_ANALYSIS_MODES

    setting = environ.get(_env.QUERY_ANALYSIS)
    source = _env.QUERY_ANALYSIS if setting else "default"
    setting = setting or "auto"
    problem = None
    if setting not in QUERY_ANALYSIS_MODES:
        mode = "invalid"
        problem = (
            f"{_env.QUERY_ANALYSIS}={setting!r} is not one of {', '.join(QUERY_ANALYSIS_MODES)}"
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
    return {
        "setting": setting,
        "source": source,
        "mode": mode,
        # mongocrypt.analysis ships in this package, so the embedded analyzer is always there.
        "embedded_analyzer": True,
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


def _check_key_vault(client: pymongo.MongoClient[Any], settings: Settings) -> dict[str, Any]:
    """Whether the key vault exists and has the unique index on keyAltNames."""
    try:
        check_namespace(settings.key_vault)
    except UsageError as exc:
        return {"namespace": settings.key_vault, "error": str(exc)}
    vault = vault_collection(client, settings)
    exists = bool(vault.database.list_collection_names(filter={"name": vault.name}))
    return {
        "namespace": settings.key_vault,
        "exists": exists,
        "unique_alt_names": exists and has_alt_name_index(vault),
    }


def _check_server(settings: Settings, timeout_ms: int) -> dict[str, Any]:
    result: dict[str, Any] = {"uri": redact_uri(settings.uri), "ok": False}
    started = time.monotonic()
    client = mongo_client(settings, timeout_ms)
    try:
        with pymongo.timeout(timeout_ms / 1000):
            client.admin.command("ping")
            result["ok"] = True
            with contextlib.suppress(PyMongoError):
                result["version"] = client.admin.command("buildInfo").get("version")
            result["key_vault"] = _check_key_vault(client, settings)
    except PyMongoError as exc:
        result["error"] = short_error(exc)
    finally:
        client.close()
    result["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


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
        ("features", features),
        ("crypt_shared", shared_text),
        ("mongocryptd", report["mongocryptd"] or "not on PATH"),
        (
            "query analysis",
            f"{analysis['setting']} ({analysis['source']}) -> {analysis['mode']}",
        ),
        ("embedded analyzer", "installed"),
        ("pymongo", drop_in["pymongo"]),
        (
            "pymongocrypt",
            f"{drop_in['pymongocrypt'] or 'not installed'}, mongocrypt's drop-in facade: {facade}"
            + (f" ({drop_in['pymongocrypt_path']})" if drop_in["pymongocrypt_path"] else ""),
        ),
    ]
    server = report["server"]
    if server is None:
        rows.append(("server", f"not checked (give --uri or {_env.URI})"))
    elif server["ok"]:
        version = f"version {server.get('version')}, " if server.get("version") else ""
        rows.append(("server", f"ok: {server['uri']} ({version}{server['duration_ms']} ms)"))
        vault = server["key_vault"]
        if "error" in vault:
            state = "not checked (bad namespace)"
        elif not vault["exists"]:
            state = "not created yet"
        else:
            state = "unique" if vault["unique_alt_names"] else "NO unique"
            state += " index on keyAltNames"
        rows.append(("key vault", f"{vault['namespace']}: {state}"))
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
    vault = (report["server"] or {}).get("key_vault")
    if vault and "error" in vault:
        problems.append(vault["error"])
    elif vault and vault["exists"] and not vault["unique_alt_names"]:
        problems.append(
            f"key vault {vault['namespace']} has no unique index on keyAltNames, so two keys "
            "can share an alternate name: create it with 'mongocrypt keys create-index'"
        )
    problems += [f"KMS {k['endpoint']} failed" for k in report["kms_endpoints"] if not k["ok"]]
    report["problems"] = problems
    report["ok"] = not problems
    out.result(report, lambda: _doctor_text(report))
    return 0 if report["ok"] else 1
