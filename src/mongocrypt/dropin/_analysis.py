"""Which query analysis a client's automatic encryption uses, decided once when pymongo builds the
client's encrypter, and logged (INFO; WARNING when pymongo's own options fall back to the embedded
analyzer); and the exchange with mongocryptd (no ``maxTimeMS``, failures as
:class:`~mongocrypt.errors.QueryAnalysisError`)."""

from __future__ import annotations

import copy
import os
import shutil
from typing import Any, Callable, Optional

import bson
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions, DatetimeConversion
from pymongo.errors import PyMongoError

from mongocrypt import _env, _log
from mongocrypt.auto_encryption import (
    AutoEncryptionOpts,
    embedded_marker,
    query_analysis_mode,
)
from mongocrypt.engine import MongoCryptOptions
from mongocrypt.errors import QueryAnalysisError, redact

__all__ = ["AnalyzerChoice", "mongocryptd_error", "restore_max_time", "split_max_time"]

#: pymongo's default ``mongocryptd_uri``: any other says where a mongocryptd is expected.
_DEFAULT_MONGOCRYPTD_URI = "mongodb://localhost:27020"


class AnalyzerChoice:
    """Which query analyzer a client's automatic encryption uses, decided when pymongo builds its
    encrypter (the mode from our options, or ``MONGOCRYPT_QUERY_ANALYSIS`` for pymongo's).

    :param opts: the client's ``AutoEncryptionOpts`` (mongocrypt's or pymongo's; None when
        unknown).
    """

    def __init__(self, opts: Any) -> None:
        self.opts = opts
        self.mode = query_analysis_mode(opts)
        #: whether the mode was chosen (our option, or the environment variable), not defaulted
        self.chosen = isinstance(opts, AutoEncryptionOpts) or _env.QUERY_ANALYSIS in os.environ
        if isinstance(opts, AutoEncryptionOpts):
            self.source = f"query_analysis={self.mode!r} in AutoEncryptionOpts"
        elif self.chosen:
            self.source = f"{_env.QUERY_ANALYSIS}={self.mode}"
        else:
            self.source = f"the default, {self.mode!r}"

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
        """Decide the analyzer and log it, once; the embedded analyzer's marker when it is the one
        (None: crypt_shared inside libmongocrypt, mongocryptd through pymongo, or none)."""
        analyzer, reason = self._decide(options, crypt_shared_version)
        if analyzer == "embedded" and self.mode == "auto" and not self.chosen:
            _log.query_analysis_fallback(reason, _env.QUERY_ANALYSIS)
        else:
            _log.query_analysis(analyzer, reason)
        return embedded_marker() if analyzer == "embedded" else None

    def _decide(self, options: MongoCryptOptions, version: Optional[str]) -> tuple[str, str]:
        if options.bypass_encryption:
            return "none", "bypass_auto_encryption is set: replies are decrypted only"
        if options.bypass_query_analysis:
            return "none", f"bypass_query_analysis is set; {self.source}"
        if version is not None:
            return "crypt_shared", f"{version} loaded; {self.source}"
        if self.mode == "embedded":
            return "embedded", f"mongocrypt's in-process analyzer; {self.source}"
        if self.mode != "auto":
            return self.mode, self.source
        opts = self.opts
        if getattr(opts, "_mongocryptd_bypass_spawn", False):
            found = "mongocryptd_bypass_spawn is set"
        elif (spawned := shutil.which(_spawn_path(opts))) is not None:
            found = f"spawning {spawned}"
        elif getattr(opts, "_mongocryptd_uri", _DEFAULT_MONGOCRYPTD_URI) != (
            _DEFAULT_MONGOCRYPTD_URI
        ):
            found = "mongocryptd_uri names a mongocryptd"
        else:
            return "embedded", (
                f"crypt_shared was not loaded and {_spawn_path(opts)!r} is not on PATH; "
                f"{self.source}"
            )
        return "mongocryptd", f"crypt_shared was not loaded; {found}; {self.source}"


def _spawn_path(opts: Any) -> str:
    return getattr(opts, "_mongocryptd_spawn_path", None) or "mongocryptd"


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
