"""The few places where pymongo's calls differ between its versions.

pymongo 4.16-4.17 pass the String algorithm's options as ``text_opts``; 4.18-4.19 look at the
encrypter's signature and pass ``string_opts`` when it has that name; 4.20 always passes
``string_opts``. The facade's encrypters accept both names and hand the options to the engine.
"""

from __future__ import annotations

from typing import Optional

from mongocrypt.engine import AsyncExplicitEncrypter as _AsyncEngineEncrypter
from mongocrypt.engine import ExplicitEncrypter as _EngineEncrypter
from mongocrypt.engine.binary import BufferLike


def _string_options(string_opts: Optional[bytes], text_opts: Optional[bytes]) -> Optional[bytes]:
    if string_opts is not None and text_opts is not None:
        raise ValueError(
            "pass the String algorithm's options as string_opts or text_opts, not both"
        )
    return string_opts if string_opts is not None else text_opts


class ExplicitEncrypter(_EngineEncrypter):
    """The engine's explicit encrypter, accepting ``text_opts`` as pymongo 4.16-4.17 send it."""

    def encrypt(
        self,
        value: BufferLike,
        algorithm: str,
        key_id: Optional[bytes] = None,
        key_alt_name: Optional[str] = None,
        query_type: Optional[str] = None,
        contention_factor: Optional[int] = None,
        range_opts: Optional[bytes] = None,
        is_expression: bool = False,
        string_opts: Optional[bytes] = None,
        text_opts: Optional[bytes] = None,
    ) -> bytes:
        return super().encrypt(
            value,
            algorithm,
            key_id,
            key_alt_name,
            query_type,
            contention_factor,
            range_opts,
            is_expression,
            _string_options(string_opts, text_opts),
        )


class AsyncExplicitEncrypter(_AsyncEngineEncrypter):
    """The async twin of :class:`ExplicitEncrypter`."""

    async def encrypt(
        self,
        value: BufferLike,
        algorithm: str,
        key_id: Optional[bytes] = None,
        key_alt_name: Optional[str] = None,
        query_type: Optional[str] = None,
        contention_factor: Optional[int] = None,
        range_opts: Optional[bytes] = None,
        is_expression: bool = False,
        string_opts: Optional[bytes] = None,
        text_opts: Optional[bytes] = None,
    ) -> bytes:
        return await super().encrypt(
            value,
            algorithm,
            key_id,
            key_alt_name,
            query_type,
            contention_factor,
            range_opts,
            is_expression,
            _string_options(string_opts, text_opts),
        )
