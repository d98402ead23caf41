"""engine/binary.py: binaries viewing Python buffers, and outputs copied out."""

from __future__ import annotations

import pytest

from mongocrypt.engine.binary import BinaryView, BufferLike, new_out, read_out
from mongocrypt.engine.native import ffi


@pytest.mark.parametrize(
    "data", [b"\x05\0\0\0\0", bytearray(b"\x05\0\0\0\0"), memoryview(b"xx\x05\0\0\0\0")[2:]]
)
def test_a_view_points_at_the_callers_bytes(data: BufferLike) -> None:
    with BinaryView(data) as binary:
        assert binary.len == 5
        assert bytes(ffi.buffer(binary.data, binary.len)) == bytes(data)


def test_a_view_is_not_a_copy() -> None:
    data = bytearray(b"abc")
    with BinaryView(data) as binary:
        data[0] = ord("z")
        assert bytes(ffi.buffer(binary.data, binary.len)) == b"zbc"


def test_the_buffer_is_pinned_while_viewed_and_released_after() -> None:
    data = bytearray(b"abc")
    with BinaryView(data), pytest.raises(BufferError):
        data.append(0)
    data.append(0)  # released: resizing works again
    assert data == b"abc\0"


def test_the_export_is_released_when_the_block_fails() -> None:
    view = memoryview(bytearray(b"abc"))
    with pytest.raises(RuntimeError, match="refused"), BinaryView(view):
        with pytest.raises(BufferError):
            view.release()  # still exported inside the block
        raise RuntimeError("refused")
    view.release()  # no export left behind by the failure


@pytest.mark.parametrize("empty", [b"", bytearray(), memoryview(b"abc")[3:]])
def test_empty_buffers_are_refused_and_not_left_exported(empty: BufferLike) -> None:
    with pytest.raises(ValueError, match="expected BSON data, got an empty buffer"):
        BinaryView(empty)
    if isinstance(empty, memoryview):
        empty.release()  # would raise BufferError if the refused export were still alive


@pytest.mark.parametrize("value", ["text", 5, None, [1]])
def test_non_buffers_are_a_type_error_naming_the_type(value: object) -> None:
    with pytest.raises(TypeError, match=f"not {type(value).__name__}$"):
        BinaryView(value)  # type: ignore[arg-type]  # a wrong type on purpose


def test_non_contiguous_views_are_refused() -> None:
    with pytest.raises(BufferError, match="contiguous"):
        BinaryView(memoryview(b"abcdef")[::2])


def test_outputs_are_copied_out() -> None:
    source = ffi.new("uint8_t[]", b"abc")
    out = new_out()
    assert out.len == 0
    out.data, out.len = source, 3
    copy = read_out(out)
    source[0] = ord("z")
    assert copy == b"abc"
    assert isinstance(copy, bytes)
