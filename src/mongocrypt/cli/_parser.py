"""The argument parser and :func:`main`, which maps outcomes to exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn, Optional

from pymongo.errors import PyMongoError, ServerSelectionTimeoutError

import mongocrypt
from mongocrypt import MongoCryptError
from mongocrypt.cli import _doctor, _keys, _values
from mongocrypt.cli._output import Output, short_error, write_error
from mongocrypt.cli._settings import (
    DEFAULT_KEY_VAULT,
    DEFAULT_TIMEOUT_MS,
    DEFAULT_URI,
    DOCTOR_TIMEOUT_MS,
    ENV_CONFIG,
    ENV_KEY_VAULT,
    ENV_KMS_PROVIDERS_FILE,
    ENV_KMS_TLS_OPTIONS_FILE,
    ENV_LOCAL_KEY,
    ENV_LOCAL_KEY_FILE,
    ENV_QUERY_ANALYSIS,
    ENV_URI,
    PROG,
    OperationError,
    Settings,
    UsageError,
    is_local,
    load_settings,
    redact_uri,
)

# -- the parser -------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse with errors in the ``mongocrypt: error:`` form (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{PROG}: error: {message}\n")


def _local_key_arg(value: str) -> tuple[str, str]:
    name, sep, path = value.partition("=")
    if sep and is_local(name):
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
_GLOBAL = "global_"
EPILOG = "\n".join(
    [
        "environment:",
        *(f"  {name:<33} {text}" for name, text in _ENVIRONMENT),
        "",
        "the output, connection and KMS options work before the command too",
        "(mongocrypt --config FILE keys list); flags after the command win",
        "",
        "exit codes: 0 success, 1 operation failed, 2 usage or configuration error",
    ]
)


def _shared_options(prefix: str, default: Any) -> list[_Parser]:
    """The output, connection and KMS options, as parents for a parser.

    The top-level parser takes them too (``mongocrypt --config FILE keys list``), under
    ``prefix``-ed names and absent unless given; :func:`_merge_global` moves them to the command's.
    """
    output = _Parser(add_help=False, argument_default=default)
    output.add_argument(
        "--json",
        dest=prefix + "json",
        action="store_true",
        help="machine-readable output on stdout",
    )

    connection = _Parser(add_help=False, argument_default=default)
    group = connection.add_argument_group("connection")
    group.add_argument(
        "--uri",
        dest=prefix + "uri",
        metavar="URI",
        help=f"MongoDB connection string (${ENV_URI}; default {DEFAULT_URI})",
    )
    group.add_argument(
        "--key-vault",
        dest=prefix + "key_vault",
        metavar="DB.COLL",
        help=f"key vault namespace (${ENV_KEY_VAULT}; default {DEFAULT_KEY_VAULT})",
    )
    group.add_argument(
        "--config", dest=prefix + "config", metavar="FILE", help=f"TOML config file (${ENV_CONFIG})"
    )
    group.add_argument(
        "--timeout-ms",
        dest=prefix + "timeout_ms",
        type=_positive,
        metavar="MS",
        help=f"bound on each operation (default {DEFAULT_TIMEOUT_MS})",
    )

    kms = _Parser(add_help=False, argument_default=default)
    group = kms.add_argument_group("KMS providers (credentials are never read from flags)")
    group.add_argument(
        "--local-key-file",
        dest=prefix + "local_key_file",
        type=_local_key_arg,
        action="append",
        metavar="[NAME=]FILE",
        help="local master key: 96 bytes or their base64 (NAME like local:new; repeatable)",
    )
    group.add_argument(
        "--kms-providers-file",
        dest=prefix + "kms_providers_file",
        metavar="FILE",
        help='JSON / Extended JSON: {"aws": {"accessKeyId": ..., "secretAccessKey": ...}, ...}',
    )
    group.add_argument(
        "--kms-tls-options-file",
        dest=prefix + "kms_tls_options_file",
        metavar="FILE",
        help='JSON: {"aws": {"tlsCAFile": ..., "tlsCertificateKeyFile": ...}, ...}',
    )
    group.add_argument(
        "--on-demand",
        dest=prefix + "on_demand",
        action="append",
        choices=("aws", "gcp", "azure"),
        help="fetch this provider's credentials from the environment or cloud metadata",
    )

    return [output, connection, kms]


def _merge_global(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Options given before the command join the command's own: lists add up, flags after the
    command win; an option the command does not take is a usage error."""
    for name, value in list(vars(args).items()):
        if not name.startswith(_GLOBAL):
            continue
        delattr(args, name)
        dest = name[len(_GLOBAL) :]
        if not hasattr(args, dest):
            command = " ".join(filter(None, [args.command, getattr(args, "keys_command", None)]))
            parser.error(f"--{dest.replace('_', '-')} does not apply to '{command}'")
        current = getattr(args, dest)
        if isinstance(value, list):
            setattr(args, dest, value + (current or []))
        elif current is None or current is False:
            setattr(args, dest, value)


def _encryption_options(parser: argparse.ArgumentParser) -> None:
    """The data key and Queryable Encryption options of ``encrypt`` and ``encrypt-expression``."""
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--key-id", metavar="UUID", help="the data key's id")
    which.add_argument("--key-alt-name", metavar="NAME", help="the data key's alternate name")
    parser.add_argument(
        "--contention-factor", type=_non_negative, metavar="N", help="indexed, range, string"
    )
    parser.add_argument(
        "--range-opts", metavar="JSON", help='{"min": ..., "max": ..., "sparsity": ...}'
    )
    parser.add_argument("--canonical", action="store_true", help="canonical Extended JSON")


def build_parser() -> argparse.ArgumentParser:
    """The ``mongocrypt`` argument parser."""
    parser = _Parser(
        prog=PROG,
        description="MongoDB client-side encryption: key vault, values, diagnostics.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=_shared_options(_GLOBAL, argparse.SUPPRESS),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {mongocrypt.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    keys = commands.add_parser(
        "keys",
        help="manage the data keys in a key vault",
        description="Manage the data keys in a key vault. KEY is a key's UUID or alternate name.",
    )
    key_commands = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    common = _shared_options("", None)
    output = common[0]

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
    create.set_defaults(run=_keys.cmd_keys_create)

    listing = key_commands.add_parser(
        "list", parents=common, help="list data keys", description="List the data keys."
    )
    listing.add_argument("--provider", help="only keys wrapped by this KMS provider")
    listing.set_defaults(run=_keys.cmd_keys_list)

    show = key_commands.add_parser(
        "show", parents=common, help="show one data key", description="Show one data key."
    )
    show.add_argument("key", metavar="KEY")
    show.set_defaults(run=_keys.cmd_keys_show)

    delete = key_commands.add_parser(
        "delete",
        parents=common,
        help="delete a data key",
        description="Delete a data key. Values encrypted with it can no longer be decrypted.",
    )
    delete.add_argument("key", metavar="KEY")
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(run=_keys.cmd_keys_delete)

    add = key_commands.add_parser(
        "add-alt-name",
        parents=common,
        help="add an alternate name to a key",
        description="Add an alternate name to a data key.",
    )
    add.add_argument("key", metavar="KEY")
    add.add_argument("name", metavar="NAME")
    add.set_defaults(run=_keys.cmd_keys_add_alt_name)

    remove = key_commands.add_parser(
        "remove-alt-name",
        parents=common,
        help="remove an alternate name from a key",
        description="Remove an alternate name from a data key.",
    )
    remove.add_argument("key", metavar="KEY")
    remove.add_argument("name", metavar="NAME")
    remove.set_defaults(run=_keys.cmd_keys_remove_alt_name)

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
    rewrap.set_defaults(run=_keys.cmd_keys_rewrap)

    index = key_commands.add_parser(
        "create-index",
        parents=common,
        help="create the unique index on keyAltNames",
        description=(
            "Create the partial unique index on keyAltNames that the specification advises for "
            "a key vault, so that no two keys can share an alternate name. Fails, naming them, "
            "when some keys already do."
        ),
    )
    index.set_defaults(run=_keys.cmd_keys_create_index)

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
        type=_values.algorithm,
        metavar="NAME",
        help=f"{', '.join(_values.ALGORITHMS)}, or a full algorithm name",
    )
    _encryption_options(encrypt)
    encrypt.add_argument(
        "--query-type",
        choices=_values.QUERY_TYPES,
        help="make a find payload (range: use encrypt-expression)",
    )
    encrypt.add_argument(
        "--string-opts", metavar="JSON", help='{"caseSensitive": ..., "prefix": {...}, ...}'
    )
    encrypt.set_defaults(run=_values.cmd_encrypt)

    expression = commands.add_parser(
        "encrypt-expression",
        parents=common,
        help="encrypt the bounds of a range query",
        description=(
            "Encrypt the bounds of a range query on a field encrypted with the Range algorithm: "
            'an Extended JSON {"$and": [{"f": {"$gte": LOW}}, {"f": {"$lt": HIGH}}]} in, the '
            "expression to send in a find filter out."
        ),
    )
    expression.add_argument(
        "expression", nargs="?", metavar="EXPRESSION", help="Extended JSON (default: stdin)"
    )
    _encryption_options(expression)
    expression.set_defaults(run=_values.cmd_encrypt_expression)

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
    decrypt.set_defaults(run=_values.cmd_decrypt)

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
    doctor.add_argument(
        "--key-vault",
        metavar="DB.COLL",
        help=f"check this key vault's unique index on keyAltNames (default {DEFAULT_KEY_VAULT})",
    )
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
    doctor.set_defaults(run=_doctor.cmd_doctor)
    return parser


# -- entry point ------------------------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code.

    :param argv: the arguments (default: ``sys.argv[1:]``).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        _merge_global(parser, args)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    secrets: list[str] = []
    settings = Settings()
    try:
        settings = load_settings(args, os.environ)
        secrets = settings.secrets()
        return int(args.run(args, settings, Output(args.json)))
    except UsageError as exc:
        write_error(str(exc), secrets)
        return 2
    except OperationError as exc:
        write_error(str(exc), secrets)
        return 1
    except ServerSelectionTimeoutError as exc:
        uri = redact_uri(settings.uri)
        write_error(f"no server reachable at {uri}: {short_error(exc)}", secrets)
        return 1
    except (MongoCryptError, PyMongoError, OSError, ValueError, TypeError) as exc:
        write_error(str(exc) or type(exc).__name__, secrets)
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return 130
