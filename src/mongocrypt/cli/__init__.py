"""The ``mongocrypt`` command: key vault management, single-value encryption, and a doctor.

Settings come from flags, then environment variables, then a TOML config file (``--config``);
KMS credentials are never taken from the command line (other users can read it) and never printed.

Exit codes: 0 success, 1 the operation failed, 2 usage or configuration error. Errors go to
stderr as ``mongocrypt: error: ...``; ``--json`` puts one JSON document on stdout.

Modules: ``_settings`` (flags, environment, config file, the key-vault connection), ``_output``,
``_keys`` (``keys ...``), ``_values`` (``encrypt``, ``decrypt``), ``_doctor`` and ``_parser``
(the parser and :func:`main`).
"""

from mongocrypt.cli._parser import main

__all__ = ["main"]
