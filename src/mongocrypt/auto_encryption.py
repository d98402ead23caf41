"""Automatic encryption on pymongo's own clients, with mongocrypt doing the encryption I/O.

:class:`AutoEncryptionOpts` is pymongo's option class with mongocrypt's additions; pass it to
``pymongo.MongoClient(auto_encryption_opts=...)`` or ``AsyncMongoClient``. pymongo keeps doing the
commands, the internal clients, and mongocryptd spawning as the specification describes; the
encryption engine it loads (this distribution's ``pymongocrypt``) recognises these options and
routes the encryption I/O through mongocrypt: KMS requests on mongocrypt's transport (concurrent,
per-provider TLS, proxies through ``kms_connect_callback``, events), on-demand credentials with
``credential_providers``, key-vault events, and the query-analysis mode chosen here.

Query analysis (``query_analysis``):

- ``"auto"`` (default): crypt_shared when it loads, else mongocryptd when it can be spawned (the
  spawn path found) or is expected (``mongocryptd_bypass_spawn``, another ``mongocryptd_uri``),
  else the embedded analyzer; the choice and its reason are logged once, at INFO;
- ``"mongocryptd"``: always mongocryptd;
- ``"crypt_shared"``: crypt_shared, required (an error at client creation when it does not load);
- ``"embedded"``: mongocrypt's in-process analyzer: no mongocryptd, no crypt_shared;
- ``"none"``: no analysis (``bypass_query_analysis``): only explicit encryption and decryption.

Only ``"auto"`` and ``"crypt_shared"`` search for and load crypt_shared. For unchanged code that
builds pymongo's own ``AutoEncryptionOpts``, the environment variable ``MONGOCRYPT_QUERY_ANALYSIS``
selects the mode the same way; without it such options get ``"auto"``, and falling back to the
embedded analyzer is logged as a WARNING.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional

import bson
import pymongo
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions, DatetimeConversion
from pymongo.encryption_options import AutoEncryptionOpts as _PymongoAutoEncryptionOpts
from pymongo.errors import PyMongoError

from mongocrypt import _env
from mongocrypt._namespaces import check_namespace_map
from mongocrypt.credentials import AwsCredentialProvider
from mongocrypt.engine import MongoCryptOptions
from mongocrypt.errors import QueryAnalysisError, redact
from mongocrypt.events import EncryptionEventListener, EventPublisher

__all__ = [
    "QUERY_ANALYSIS_MODES",
    "AnalyzerChoice",
    "AutoEncryptionOpts",
    "embedded_marker",
    "kms_connect_callback",
    "mongocryptd_error",
    "query_analysis_mode",
    "restore_max_time",
    "split_max_time",
]

#: What ``key_vault_client`` may be: the key vault's own client, sync or asyncio.
CLIENT_TYPES = (pymongo.MongoClient, pymongo.AsyncMongoClient)
QUERY_ANALYSIS_MODES = ("auto", "mongocryptd", "crypt_shared", "embedded", "none")
#: The modes that search for (and may load) crypt_shared; the others never do.
_SEARCHING_MODES = ("auto", "crypt_shared")
#: pymongo's default ``mongocryptd_uri``: any other says where a mongocryptd is expected.
_DEFAULT_MONGOCRYPTD_URI = "mongodb://localhost:27020"
LOGGER = logging.getLogger("mongocrypt.auto_encryption")


class AutoEncryptionOpts(_PymongoAutoEncryptionOpts):
    """pymongo's ``AutoEncryptionOpts`` (same parameters, same meaning) plus:

    :param credential_providers: ``{"aws": callable}`` returning AWS credentials on demand
        (requires ``kms_providers["aws"] == {}``).
    :param kms_connect_callback: opens KMS connections (see :mod:`mongocrypt.io.proxy`); a
        coroutine function for ``AsyncMongoClient``.
    :param event_listeners: :class:`~mongocrypt.events.EncryptionEventListener` instances.
    :param query_analysis: one of :data:`QUERY_ANALYSIS_MODES` (see the module docstring).

    Automatic encryption applies to collection commands only; database and view operations that
    are not bypassed fail. Using it needs the listCollections privilege (schemas are read from the
    collections' validators unless ``schema_map`` gives them; a local schema map is safer, as a
    malicious server could advertise a false schema). Clients with it may create an internal client
    (the parent's options, minPoolSize 0, no automatic encryption).
    """

    def __init__(
        self,
        kms_providers: Mapping[str, Any],
        key_vault_namespace: str,
        key_vault_client: Any = None,
        schema_map: Optional[Mapping[str, Any]] = None,
        bypass_auto_encryption: bool = False,
        mongocryptd_uri: str = "mongodb://localhost:27020",
        mongocryptd_bypass_spawn: bool = False,
        mongocryptd_spawn_path: str = "mongocryptd",
        mongocryptd_spawn_args: Optional[list[str]] = None,
        kms_tls_options: Optional[Mapping[str, Any]] = None,
        crypt_shared_lib_path: Optional[str] = None,
        crypt_shared_lib_required: bool = False,
        bypass_query_analysis: bool = False,
        encrypted_fields_map: Optional[Mapping[str, Any]] = None,
        key_expiration_ms: Optional[int] = None,
        *,
        credential_providers: Optional[Mapping[str, AwsCredentialProvider]] = None,
        kms_connect_callback: Optional[Callable[..., Any]] = None,
        event_listeners: Optional[Sequence[EncryptionEventListener]] = None,
        query_analysis: str = "auto",
    ) -> None:
        if query_analysis not in QUERY_ANALYSIS_MODES:
            raise ValueError(
                f"query_analysis must be one of {', '.join(QUERY_ANALYSIS_MODES)}, "
                f"not {query_analysis!r}"
            )
        from mongocrypt._client_encryption import check_client, checked_credential_providers

        if key_vault_client is not None:
            check_client(key_vault_client, "key_vault_client", CLIENT_TYPES)
        for name, value in (
            ("schema_map", schema_map),
            ("encrypted_fields_map", encrypted_fields_map),
        ):
            if value is not None:
                check_namespace_map(value, name)
        both = set(schema_map or {}) & set(encrypted_fields_map or {})
        if both:
            raise ValueError(
                f"{', '.join(sorted(both))} is in both schema_map and encrypted_fields_map: "
                "a collection uses either CSFLE or Queryable Encryption"
            )
        if query_analysis not in _SEARCHING_MODES:
            for option, setting in (
                ("crypt_shared_lib_path", crypt_shared_lib_path),
                ("crypt_shared_lib_required", crypt_shared_lib_required),
            ):
                if setting:
                    raise ValueError(
                        f"{option} contradicts query_analysis={query_analysis!r}, which never "
                        "loads crypt_shared (use 'crypt_shared' or 'auto')"
                    )
        if query_analysis == "crypt_shared":
            crypt_shared_lib_required = True
        if query_analysis == "none":
            bypass_query_analysis = True
        super().__init__(
            kms_providers,
            key_vault_namespace,
            key_vault_client=key_vault_client,
            schema_map=schema_map,
            bypass_auto_encryption=bypass_auto_encryption,
            mongocryptd_uri=mongocryptd_uri,
            mongocryptd_bypass_spawn=mongocryptd_bypass_spawn,
            mongocryptd_spawn_path=mongocryptd_spawn_path,
            mongocryptd_spawn_args=mongocryptd_spawn_args,
            kms_tls_options=kms_tls_options,
            crypt_shared_lib_path=crypt_shared_lib_path,
            crypt_shared_lib_required=crypt_shared_lib_required,
            bypass_query_analysis=bypass_query_analysis,
            encrypted_fields_map=encrypted_fields_map,
            key_expiration_ms=key_expiration_ms,
        )
        if kms_connect_callback is not None and not callable(kms_connect_callback):
            raise TypeError(
                f"kms_connect_callback must be callable, not {type(kms_connect_callback).__name__}"
            )
        self.credential_providers = checked_credential_providers(
            credential_providers, kms_providers
        )
        self.kms_connect_callback = kms_connect_callback
        self.events = EventPublisher(event_listeners)
        self.query_analysis = query_analysis


def query_analysis_mode(opts: Any) -> str:
    """The query-analysis mode of ours or of pymongo's own options (then from the environment)."""
    if isinstance(opts, AutoEncryptionOpts):
        return opts.query_analysis
    mode = os.environ.get(_env.QUERY_ANALYSIS, "auto")
    if mode not in QUERY_ANALYSIS_MODES:
        raise ValueError(
            f"{_env.QUERY_ANALYSIS} must be one of {', '.join(QUERY_ANALYSIS_MODES)}, not {mode!r}"
        )
    return mode


def kms_connect_callback(opts: Any) -> Optional[Callable[..., Any]]:
    """Ours, or pymongo's own (>= 4.19): its context has the same host/port/timeout fields."""
    if isinstance(opts, AutoEncryptionOpts):
        return opts.kms_connect_callback
    return getattr(opts, "_kms_connect_callback", None)


def mongocryptd_error(error: PyMongoError) -> QueryAnalysisError:
    """The :class:`QueryAnalysisError` for a failed exchange with mongocryptd (its code kept;
    a server selection timeout stays a timeout)."""
    code = getattr(error, "code", None)
    return QueryAnalysisError(
        f"query analysis by mongocryptd failed: {redact(str(error))}",
        code if isinstance(code, int) else 0,
        timeout=error.timeout,
    )


#: Decoding a marking command and encoding it again keeps every value as it was.
_ROUND_TRIP: CodecOptions[dict[str, Any]] = CodecOptions(
    uuid_representation=UuidRepresentation.UNSPECIFIED,
    datetime_conversion=DatetimeConversion.DATETIME_AUTO,
)


def split_max_time(command: bytes) -> tuple[bytes, Any]:
    """``command`` without its ``maxTimeMS`` (which must never reach mongocryptd), and the value
    taken out (None when there was none)."""
    if b"maxTimeMS\x00" not in command:
        return command, None
    document = bson.decode(command, _ROUND_TRIP)
    value = document.pop("maxTimeMS", None)
    return bson.encode(document, codec_options=_ROUND_TRIP), value


def restore_max_time(reply: Any, value: Any) -> Any:
    """mongocryptd's ``reply`` with ``maxTimeMS`` back in the command it returns (the server
    still gets the bound), when one was taken out."""
    if value is None:
        return reply
    document = bson.decode(bytes(reply), _ROUND_TRIP)
    if isinstance(document.get("result"), dict):
        document["result"]["maxTimeMS"] = value
    return bson.encode(document, codec_options=_ROUND_TRIP)


def embedded_marker() -> Callable[[str, bytes], bytes]:
    """The in-process analyzer's marking function."""
    from mongocrypt import analysis

    marker: Callable[[str, bytes], bytes] = analysis.mark_command
    return marker


class AnalyzerChoice:
    """Which query analyzer a client's automatic encryption uses, decided when the client is
    created (ours, or pymongo's own options with ``MONGOCRYPT_QUERY_ANALYSIS``).

    :param opts: the client's ``AutoEncryptionOpts`` (mongocrypt's or pymongo's).
    """

    def __init__(self, opts: Any) -> None:
        self.opts = opts
        self.mode = query_analysis_mode(opts)
        #: whether the user chose (our option, or the environment variable for pymongo's)
        self.source = (
            f"query_analysis={self.mode!r}"
            if isinstance(opts, AutoEncryptionOpts)
            else (f"{_env.QUERY_ANALYSIS}={self.mode}" if _env.QUERY_ANALYSIS in os.environ else "")
        )

    def handle_options(self, options: MongoCryptOptions) -> MongoCryptOptions:
        """``options`` as the mode needs them: only ``"auto"`` and ``"crypt_shared"`` search for
        or load crypt_shared; ``"crypt_shared"`` requires it, ``"none"`` bypasses analysis.

        :raises ValueError: if crypt_shared is required in a mode that never loads it.
        """
        if self.mode == "auto" or options.bypass_encryption:
            return options
        adjusted = copy.copy(options)
        if self.mode == "crypt_shared":
            adjusted.crypt_shared_lib_required = True
            return adjusted
        if options.crypt_shared_lib_required:
            raise ValueError(
                f"crypt_shared_lib_required contradicts {self.source}: that mode never loads "
                "crypt_shared"
            )
        adjusted.crypt_shared_lib_search_paths = ()
        adjusted.crypt_shared_lib_path = None
        if self.mode == "none":
            adjusted.bypass_query_analysis = True
        return adjusted

    def choose(
        self, options: MongoCryptOptions, crypt_shared_version: Optional[str]
    ) -> Optional[Callable[[str, bytes], bytes]]:
        """Decide and log (once) the analyzer; the embedded analyzer's marker when it is the one
        (None: crypt_shared inside libmongocrypt, mongocryptd through pymongo, or none)."""
        if options.bypass_encryption:  # bypass_auto_encryption: decryption only
            return None
        analyzer, reason = self._decide(options, crypt_shared_version)
        fallback = analyzer == "embedded" and not self.source
        if fallback:
            LOGGER.warning(
                "query analysis: embedded (%s): pymongo would spawn a mongocryptd that is not "
                "there and fail after its server selection timeout; set %s to choose",
                reason,
                _env.QUERY_ANALYSIS,
            )
        else:
            LOGGER.info("query analysis: %s (%s)", analyzer, reason)
        return embedded_marker() if analyzer == "embedded" else None

    def _decide(self, options: MongoCryptOptions, version: Optional[str]) -> tuple[str, str]:
        if options.bypass_query_analysis:
            return "none", "bypass_query_analysis is set"
        if version is not None:
            return "crypt_shared", f"crypt_shared {version} loaded"
        if self.mode != "auto":
            return self.mode, self.source
        opts = self.opts
        if getattr(opts, "_mongocryptd_bypass_spawn", False):
            return "mongocryptd", "no crypt_shared found; mongocryptd_bypass_spawn is set"
        spawn_path = getattr(opts, "_mongocryptd_spawn_path", None) or "mongocryptd"
        found = shutil.which(spawn_path)
        if found is not None:
            return "mongocryptd", f"no crypt_shared found; spawning {found}"
        if getattr(opts, "_mongocryptd_uri", _DEFAULT_MONGOCRYPTD_URI) != _DEFAULT_MONGOCRYPTD_URI:
            return "mongocryptd", "no crypt_shared found; mongocryptd_uri names a mongocryptd"
        return "embedded", f"no crypt_shared found and {spawn_path!r} is not on PATH"
