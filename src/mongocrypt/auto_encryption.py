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

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional

import pymongo
from pymongo.encryption_options import AutoEncryptionOpts as _PymongoAutoEncryptionOpts

from mongocrypt import _env
from mongocrypt.credentials import AwsCredentialProvider
from mongocrypt.engine.options import check_kms_providers, check_maps
from mongocrypt.events import EncryptionEventListener, EventPublisher
from mongocrypt.options import check_namespace

__all__ = [
    "EXTRA_OPTIONS",
    "QUERY_ANALYSIS_MODES",
    "AutoEncryptionOpts",
    "embedded_marker",
    "kms_connect_callback",
    "query_analysis_mode",
]

#: What ``key_vault_client`` may be: the key vault's own client, sync or asyncio.
CLIENT_TYPES = (pymongo.MongoClient, pymongo.AsyncMongoClient)
QUERY_ANALYSIS_MODES = ("auto", "mongocryptd", "crypt_shared", "embedded", "none")
#: The modes that search for (and may load) crypt_shared; the others never do.
SEARCHING_MODES = ("auto", "crypt_shared")
LOGGER = logging.getLogger("mongocrypt.auto_encryption")
#: The specification's extraOptions keys, the keyword parameter each sets, and its default.
EXTRA_OPTIONS: dict[str, tuple[str, Any]] = {
    "mongocryptdURI": ("mongocryptd_uri", "mongodb://localhost:27020"),
    "mongocryptdBypassSpawn": ("mongocryptd_bypass_spawn", False),
    "mongocryptdSpawnPath": ("mongocryptd_spawn_path", "mongocryptd"),
    "mongocryptdSpawnArgs": ("mongocryptd_spawn_args", None),
    "cryptSharedLibPath": ("crypt_shared_lib_path", None),
    "cryptSharedLibRequired": ("crypt_shared_lib_required", False),
}


def _with_extra_options(
    extra_options: Optional[Mapping[str, Any]], keywords: dict[str, Any]
) -> dict[str, Any]:
    """``keywords`` with the values ``extra_options`` gives; its unknown keys are ignored."""
    if extra_options is None:
        return keywords
    if not isinstance(extra_options, Mapping):
        raise TypeError(f"extra_options must be a mapping, not {type(extra_options).__name__}")
    chosen = dict(keywords)
    for key, value in extra_options.items():
        if key not in EXTRA_OPTIONS:
            LOGGER.debug("extra_options: ignoring %r, an option this version does not know", key)
            continue
        keyword, default = EXTRA_OPTIONS[key]
        if keywords[keyword] != default:
            raise ValueError(f"{keyword} and extra_options[{key!r}] both given: give one")
        chosen[keyword] = value
    return chosen


class AutoEncryptionOpts(_PymongoAutoEncryptionOpts):
    """pymongo's ``AutoEncryptionOpts`` (same parameters, same meaning) plus:

    :param credential_providers: ``{"aws": callable}`` returning AWS credentials on demand
        (requires ``kms_providers["aws"] == {}``).
    :param kms_connect_callback: opens KMS connections (see :mod:`mongocrypt.io.proxy`); a
        coroutine function for ``AsyncMongoClient``.
    :param event_listeners: :class:`~mongocrypt.events.EncryptionEventListener` instances.
    :param query_analysis: one of :data:`QUERY_ANALYSIS_MODES` (see the module docstring).
    :param extra_options: the specification's open ``extraOptions`` document: the keys of
        :data:`EXTRA_OPTIONS` set the keyword parameter of the same meaning (give one or the
        other); keys this version does not know are ignored, so options can come and go.

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
        extra_options: Optional[Mapping[str, Any]] = None,
    ) -> None:
        if query_analysis not in QUERY_ANALYSIS_MODES:
            raise ValueError(
                f"query_analysis must be one of {', '.join(QUERY_ANALYSIS_MODES)}, "
                f"not {query_analysis!r}"
            )
        from mongocrypt._client_encryption import check_client, checked_credential_providers

        if key_vault_client is not None:
            check_client(key_vault_client, "key_vault_client", CLIENT_TYPES)
        check_namespace(key_vault_namespace)
        check_maps(schema_map, encrypted_fields_map)
        check_kms_providers(kms_providers)
        both = set(schema_map or {}) & set(encrypted_fields_map or {})
        if both:
            raise ValueError(
                f"{', '.join(sorted(both))} is in both schema_map and encrypted_fields_map: "
                "a collection uses either CSFLE or Queryable Encryption"
            )
        analysis = _with_extra_options(
            extra_options,
            {
                "mongocryptd_uri": mongocryptd_uri,
                "mongocryptd_bypass_spawn": mongocryptd_bypass_spawn,
                "mongocryptd_spawn_path": mongocryptd_spawn_path,
                "mongocryptd_spawn_args": mongocryptd_spawn_args,
                "crypt_shared_lib_path": crypt_shared_lib_path,
                "crypt_shared_lib_required": crypt_shared_lib_required,
            },
        )
        if query_analysis not in SEARCHING_MODES:
            for option in ("crypt_shared_lib_path", "crypt_shared_lib_required"):
                if analysis[option]:
                    raise ValueError(
                        f"{option} contradicts query_analysis={query_analysis!r}, which never "
                        "loads crypt_shared (use 'crypt_shared' or 'auto')"
                    )
        if query_analysis == "crypt_shared":
            analysis["crypt_shared_lib_required"] = True
        if query_analysis == "none":
            bypass_query_analysis = True
        super().__init__(
            kms_providers,
            key_vault_namespace,
            key_vault_client=key_vault_client,
            schema_map=schema_map,
            bypass_auto_encryption=bypass_auto_encryption,
            kms_tls_options=kms_tls_options,
            bypass_query_analysis=bypass_query_analysis,
            **analysis,
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


def embedded_marker() -> Callable[[str, bytes], bytes]:
    """The in-process analyzer's marking function."""
    from mongocrypt import analysis

    marker: Callable[[str, bytes], bytes] = analysis.mark_command
    return marker
