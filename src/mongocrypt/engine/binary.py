"""Marshalling between Python buffers and ``mongocrypt_binary_t``.

libmongocrypt's binary is a public two-field struct (data pointer, length) that only views memory,
so we allocate it with ``ffi.new`` instead of calling ``mongocrypt_binary_new``/``_destroy``:
- input: the struct views the caller's buffer, pinned for a ``with`` block (:class:`BinaryView`);
- output: libmongocrypt points the struct at memory its context owns; :func:`read_out` copies it
  to ``bytes`` before the context moves on.
"""

from __future__ import annotations

from typing import Any, Union

from mongocrypt.engine.native import ffi

__all__ = ["BinaryView", "BufferLike", "new_out", "read_out"]

BufferLike = Union[bytes, bytearray, memoryview]


class BinaryView:
    """A binary viewing a caller's buffer for the length of a ``with`` block.

    The buffer is exported (pinned) while the block runs and released when it ends, also when
    libmongocrypt refused the input: an export left alive in a traceback would make the buffer's
    owner (a memoryview pymongo passes) fail, and crash, when it is collected later.

    :param data: any contiguous buffer (``bytes``, ``bytearray``, ``memoryview``).
    :raises TypeError: if ``data`` is not a buffer.
    :raises ValueError: if ``data`` is empty.
    """

    __slots__ = ("binary", "view")

    def __init__(self, data: BufferLike) -> None:
        try:
            self.view = ffi.from_buffer("uint8_t[]", data)
        except TypeError:
            raise TypeError(f"expected bytes-like BSON data, not {type(data).__name__}") from None
        if len(self.view) == 0:  # libbson asserts (aborts the process) on a NULL data pointer
            ffi.release(self.view)
            raise ValueError("expected BSON data, got an empty buffer")
        self.binary = ffi.new("mongocrypt_binary_t *")
        self.binary.data = self.view
        self.binary.len = len(self.view)

    def __enter__(self) -> Any:
        return self.binary

    def __exit__(self, *exc_info: object) -> None:
        ffi.release(self.view)


def new_out() -> Any:
    """An empty binary for libmongocrypt to point at its output."""
    return ffi.new("mongocrypt_binary_t *")


def read_out(binary: Any) -> bytes:
    """Copy the bytes an output binary points at."""
    return bytes(ffi.buffer(binary.data, binary.len))
