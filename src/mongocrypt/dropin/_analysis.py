"""Which query analysis a client's automatic encryption uses, and why: the INFO line logged once
when pymongo builds the client's encrypter."""

from __future__ import annotations

import os
from typing import Any, Optional

from mongocrypt import _env, _log
from mongocrypt.auto_encryption import AutoEncryptionOpts, query_analysis_mode
from mongocrypt.engine import MongoCryptOptions

__all__ = ["log_query_analysis"]


def _requested(opts: Any) -> tuple[str, str]:
    """The mode asked for and where that came from."""
    mode = query_analysis_mode(opts)
    if isinstance(opts, AutoEncryptionOpts):
        return mode, f"query_analysis={mode!r} in AutoEncryptionOpts"
    if _env.QUERY_ANALYSIS in os.environ:
        return mode, f"{_env.QUERY_ANALYSIS}={mode}"
    return mode, f"the default, {mode!r}"


def log_query_analysis(
    opts: Any, handle_options: MongoCryptOptions, crypt_shared: Optional[str]
) -> None:
    """Log the mode in use: the requested one, resolved by what actually loaded.

    :param opts: the client's encryption options (ours or pymongo's; None when unknown).
    :param handle_options: the handle's options (``bypass_query_analysis``).
    :param crypt_shared: the loaded crypt_shared version, or None.
    """
    mode, why = _requested(opts)
    if getattr(opts, "_bypass_auto_encryption", False):
        _log.query_analysis("none", "bypass_auto_encryption is set: replies are decrypted only")
    elif handle_options.bypass_query_analysis:
        _log.query_analysis("none", f"bypass_query_analysis is set; {why}")
    elif mode == "embedded":
        _log.query_analysis("embedded", f"mongocrypt's in-process analyzer; {why}")
    elif crypt_shared is not None:
        _log.query_analysis("crypt_shared", f"{crypt_shared} loaded; {why}")
    else:
        _log.query_analysis("mongocryptd", f"crypt_shared was not loaded; {why}")
