"""pymongocrypt's call shapes, converted once into the engine's options."""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from mongocrypt.engine.options import DataKeyOptions, ExplicitEncryptOptions

__all__ = ["data_key_options", "encrypt_options"]


def data_key_options(
    kms_provider: str,
    master_key: Optional[Mapping[str, Any]],
    key_alt_names: Optional[Sequence[str]],
    key_material: Optional[bytes],
) -> DataKeyOptions:
    """The options of pymongocrypt's ``create_data_key(kms_provider, master_key, ...)``."""
    return DataKeyOptions(kms_provider, master_key, tuple(key_alt_names or ()), key_material)


def encrypt_options(
    algorithm: str,
    key_id: Optional[bytes],
    key_alt_name: Optional[str],
    query_type: Optional[str],
    contention_factor: Optional[int],
    range_opts: Optional[bytes],
    is_expression: bool,
    string_opts: Optional[bytes],
    text_opts: Optional[bytes],
) -> ExplicitEncryptOptions:
    """The options of pymongocrypt's ``encrypt(value, algorithm, key_id, ...)``.

    ``text_opts`` is the name pymongo 4.16-4.17 give ``string_opts`` (4.18-4.19 pick the name from
    the encrypter's signature, 4.20 always send ``string_opts``); one or the other may be given.

    Options are immutable, so the last few hundred are kept: pymongo passes the same few shapes
    call after call, and building and checking them again was a quarter of a cached-key
    encryption's time. Arguments that cannot be hashed (a bytearray key id) are built each time.
    In front of that cache the last call is remembered by the identity of its arguments: pymongo
    usually passes the very same objects again (its key id ``Binary``, the algorithm string), and
    hashing a ``Binary`` (a Python-level ``__hash__``, twice for the cache) was most of the cost.
    """
    global _last
    arguments = (
        algorithm,
        key_id,
        key_alt_name,
        query_type,
        contention_factor,
        range_opts,
        is_expression,
        string_opts,
        text_opts,
    )
    last = _last
    if last is not None and all(map(operator.is_, last[0], arguments)):
        return last[1]
    try:
        hash(arguments)
    except TypeError:
        return _encrypt_options(*arguments)
    options = _cached_encrypt_options(*arguments)
    _last = (arguments, options)  # hashable, so immutable: identity stands for equality
    return options


def _encrypt_options(
    algorithm: str,
    key_id: Optional[bytes],
    key_alt_name: Optional[str],
    query_type: Optional[str],
    contention_factor: Optional[int],
    range_opts: Optional[bytes],
    is_expression: bool,
    string_opts: Optional[bytes],
    text_opts: Optional[bytes],
) -> ExplicitEncryptOptions:
    if string_opts is not None and text_opts is not None:
        raise ValueError(
            "pass the String algorithm's options as string_opts or text_opts, not both"
        )
    return ExplicitEncryptOptions(
        algorithm,
        None if key_id is None else bytes(key_id),
        key_alt_name,
        query_type,
        contention_factor,
        range_opts,
        text_opts if string_opts is None else string_opts,
        is_expression,
    )


#: The last hashable call's arguments and its options (see encrypt_options); replaced whole, so a
#: thread always reads a matching pair.
_last: Optional[tuple[tuple[object, ...], ExplicitEncryptOptions]] = None

# typed: True and 1 (or bytes and Binary) are equal, but only one of each pair is valid here.
_cached_encrypt_options = functools.lru_cache(maxsize=256, typed=True)(_encrypt_options)
