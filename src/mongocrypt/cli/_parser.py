"""The argument parser and :func:`main`, which maps outcomes to exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, Optional

from pymongo.errors import PyMongoError, ServerSelectionTimeoutError

import mongocrypt
from mongocrypt import MongoCryptError, _env
from mongocrypt.cli import _doctor, _keys, _values
from mongocrypt.cli._output import Output, short_error, write_error
from mongocrypt.cli._settings import (
    DEFAULT_KEY_VAULT,
    DEFAULT_TIMEOUT_MS,
    DEFAULT_URI,
    DOCTOR_TIMEOUT_MS,
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
    (_env.URI, "connection string (--uri)"),
    (_env.KEY_VAULT, "key vault namespace (--key-vault)"),
    (_env.CONFIG, "TOML config file (--config)"),
    (_env.LOCAL_KEY_FILE, "local master key file (--local-key-file)"),
    (_env.LOCAL_KEY, "local master key, base64"),
    (_env.KMS_PROVIDERS_FILE, "KMS providers JSON file (--kms-providers-file)"),
    (_env.KMS_TLS_OPTIONS_FILE, "KMS TLS options JSON file (--kms-tls-options-file)"),
    (_env.QUERY_ANALYSIS, "automatic encryption's query analysis (see doctor)"),
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


#: The connection options: flag, metavar, help, and extra ``add_argument`` keywords.
_CONNECTION: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("--uri", "URI", f"MongoDB connection string (${_env.URI}; default {DEFAULT_URI})", {}),
    (
        "--key-vault",
        "DB.COLL",
        f"key vault namespace (${_env.KEY_VAULT}; default {DEFAULT_KEY_VAULT})",
        {},
    ),
    ("--config", "FILE", f"TOML config file (${_env.CONFIG})", {}),
    (
        "--timeout-ms",
        "MS",
        f"bound on each operation (default {DEFAULT_TIMEOUT_MS})",
        {"type": _positive},
    ),
)
#: The KMS options, in the same form.
_KMS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    (
        "--local-key-file",
        "[NAME=]FILE",
        "local master key: 96 bytes or their base64 (NAME like local:new; repeatable)",
        {"type": _local_key_arg, "action": "append"},
    ),
    (
        "--kms-providers-file",
        "FILE",
        'JSON / Extended JSON: {"aws": {"accessKeyId": ..., "secretAccessKey": ...}, ...}',
        {},
    ),
    (
        "--kms-tls-options-file",
        "FILE",
        'JSON: {"aws": {"tlsCAFile": ..., "tlsCertificateKeyFile": ...}, ...}',
        {},
    ),
    (
        "--on-demand",
        "PROVIDER",
        "fetch this provider's credentials from the environment or cloud metadata",
        {"action": "append", "choices": ("aws", "gcp", "azure")},
    ),
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
    parents = [output]
    for title, options in (
        ("connection", _CONNECTION),
        ("KMS providers (credentials are never read from flags)", _KMS),
    ):
        parent = _Parser(add_help=False, argument_default=default)
        group = parent.add_argument_group(title)
        for flag, metavar, help, extra in options:
            dest = prefix + flag[2:].replace("-", "_")
            group.add_argument(flag, dest=dest, metavar=metavar, help=help, **extra)
        parents.append(parent)
    return parents


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


#: One argument of a command: ``add_argument``'s positional and keyword arguments.
_Argument = tuple[tuple[str, ...], dict[str, Any]]


def _from_stdin(name: str, what: str) -> _Argument:
    """A positional argument read from stdin when omitted."""
    return (name,), {"nargs": "?", "metavar": name.upper(), "help": f"{what} (default: stdin)"}


def _command(
    subparsers: Any,
    name: str,
    run: Callable[..., int],
    help: str,
    description: Optional[str] = None,
    *,
    parents: Sequence[argparse.ArgumentParser] = (),
    arguments: Sequence[_Argument] = (),
) -> argparse.ArgumentParser:
    """Add the command ``name`` (its description defaults to ``help`` as a sentence)."""
    command: argparse.ArgumentParser = subparsers.add_parser(
        name,
        parents=list(parents),
        help=help,
        description=description or f"{help[0].upper()}{help[1:]}.",
    )
    for flags, options in arguments:
        command.add_argument(*flags, **options)
    command.set_defaults(run=run)
    return command


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

    key = (("key",), {"metavar": "KEY"})
    name = (("name",), {"metavar": "NAME"})
    _command(
        key_commands,
        "create",
        _keys.cmd_keys_create,
        "create a data key",
        parents=common,
        arguments=[
            (("provider",), {"metavar": "PROVIDER", "help": "KMS provider, e.g. local, aws:eu"}),
            (
                ("--master-key",),
                {
                    "metavar": "JSON",
                    "help": 'the provider\'s masterKey, e.g. {"region": ..., "key": ...} '
                    "(not for local)",
                },
            ),
            (
                ("--alt-name",),
                {"action": "append", "metavar": "NAME", "help": "alternate name (repeatable)"},
            ),
        ],
    )
    _command(
        key_commands,
        "list",
        _keys.cmd_keys_list,
        "list data keys",
        parents=common,
        arguments=[(("--provider",), {"help": "only keys wrapped by this KMS provider"})],
    )
    _command(
        key_commands,
        "show",
        _keys.cmd_keys_show,
        "show one data key",
        parents=common,
        arguments=[key],
    )
    _command(
        key_commands,
        "delete",
        _keys.cmd_keys_delete,
        "delete a data key",
        "Delete a data key. Values encrypted with it can no longer be decrypted.",
        parents=common,
        arguments=[
            key,
            (("--yes", "-y"), {"action": "store_true", "help": "do not ask for confirmation"}),
        ],
    )
    _command(
        key_commands,
        "add-alt-name",
        _keys.cmd_keys_add_alt_name,
        "add an alternate name to a key",
        "Add an alternate name to a data key.",
        parents=common,
        arguments=[key, name],
    )
    _command(
        key_commands,
        "remove-alt-name",
        _keys.cmd_keys_remove_alt_name,
        "remove an alternate name from a key",
        "Remove an alternate name from a data key.",
        parents=common,
        arguments=[key, name],
    )
    _command(
        key_commands,
        "rewrap",
        _keys.cmd_keys_rewrap,
        "re-encrypt data keys under a master key",
        "Re-encrypt the matching data keys under another master key, or under each key's own "
        "master key when --provider is not given (rotation). Progress goes to stderr when it "
        "is a terminal; a summary follows.",
        parents=common,
        arguments=[
            (("--filter",), {"metavar": "JSON", "help": "key vault filter (default: every key)"}),
            (("--provider",), {"help": "target KMS provider"}),
            (("--master-key",), {"metavar": "JSON", "help": "target masterKey (not for local)"}),
            (
                ("--batch-size",),
                {"type": int, "default": 100, "metavar": "N", "help": "keys per request (100)"},
            ),
        ],
    )
    _command(
        key_commands,
        "create-index",
        _keys.cmd_keys_create_index,
        "create the unique index on keyAltNames",
        "Create the partial unique index on keyAltNames that the specification advises for a "
        "key vault, so that no two keys can share an alternate name. Fails, naming them, when "
        "some keys already do.",
        parents=common,
    )

    encrypt = _command(
        commands,
        "encrypt",
        _values.cmd_encrypt,
        "encrypt one value",
        "Encrypt one value given as Extended JSON; prints the ciphertext.",
        parents=common,
        arguments=[
            _from_stdin("value", "Extended JSON, e.g. '\"text\"'"),
            (
                ("--algorithm",),
                {
                    "required": True,
                    "type": _values.algorithm,
                    "metavar": "NAME",
                    "help": f"{', '.join(_values.ALGORITHMS)}, or a full algorithm name",
                },
            ),
            (
                ("--query-type",),
                {
                    "choices": _values.QUERY_TYPES,
                    "help": "make a find payload (range: use encrypt-expression)",
                },
            ),
            (
                ("--string-opts",),
                {"metavar": "JSON", "help": '{"caseSensitive": ..., "prefix": {...}, ...}'},
            ),
        ],
    )
    _encryption_options(encrypt)
    expression = _command(
        commands,
        "encrypt-expression",
        _values.cmd_encrypt_expression,
        "encrypt the bounds of a range query",
        "Encrypt the bounds of a range query on a field encrypted with the Range algorithm: an "
        'Extended JSON {"$and": [{"f": {"$gte": LOW}}, {"f": {"$lt": HIGH}}]} in, the expression '
        "to send in a find filter out.",
        parents=common,
        arguments=[_from_stdin("expression", "Extended JSON")],
    )
    _encryption_options(expression)
    _command(
        commands,
        "decrypt",
        _values.cmd_decrypt,
        "decrypt one value",
        "Decrypt one ciphertext given as Extended JSON; prints the value.",
        parents=common,
        arguments=[
            _from_stdin("ciphertext", "Extended JSON binary"),
            (
                ("--canonical",),
                {"action": "store_true", "help": "canonical Extended JSON (keeps BSON types)"},
            ),
        ],
    )

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
    doctor.add_argument("--uri", help=f"ping this server (${_env.URI})")
    doctor.add_argument(
        "--key-vault",
        metavar="DB.COLL",
        help=f"check this key vault's unique index on keyAltNames (default {DEFAULT_KEY_VAULT})",
    )
    doctor.add_argument("--config", metavar="FILE", help=f"TOML config file (${_env.CONFIG})")
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
