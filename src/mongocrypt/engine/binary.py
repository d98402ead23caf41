"""Marshalling between Python buffers and ``mongocrypt_binary_t``.

libmongocrypt's binary is a public two-field struct (data pointer, length) that only views memory,
so we allocate it with ``ffi.new`` instead of calling ``mongocrypt_binary_new``/``_destroy``:
- input: the struct views the caller's buffer; the returned pair keeps that buffer alive;
- output: libmongocrypt points the struct at memory its context owns; :func:`read_out` copies it
  to ``bytes`` before the context moves on.
"""

from __future__ import annotations

from typing import Any, Union

from mongocrypt.engine.native import ffi

__all__ = ["BufferLike", "read_out", "to_binary"]

BufferLike = Union[bytes, bytearray, memoryview]


def to_binary(data: BufferLike) -> tuple[Any, Any]:
    """A binary viewing ``data``, plus the object that must outlive every use of it.

    :param data: any contiguous buffer (``bytes``, ``bytearray``, ``memoryview``).
    :raises TypeError: if ``data`` is not a buffer.
    """
    try:
        view = ffi.from_buffer("uint8_t[]", data)
    except TypeError:
        raise TypeError(f"expected bytes-like BSON data, not {type(data).__name__}") from None
    binary = ffi.new("mongocrypt_binary_t *")
    binary.data = view
    binary.len = len(view)
    return binary, view


def new_out() -> Any:
    """An empty binary for libmongocrypt to point at its output."""
    return ffi.new("mongocrypt_binary_t *")


def read_out(binary: Any) -> bytes:
    """Copy the bytes an output binary points at."""
    return bytes(ffi.buffer(binary.data, binary.len))
