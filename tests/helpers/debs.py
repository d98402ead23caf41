"""Minimal Debian packages for the tests of vendor/fetch.py and tools/sysroot.py."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Optional


def make_deb(path: Path, files: dict[str, bytes], links: Optional[dict[str, str]] = None) -> Path:
    """A .deb (an ar archive of debian-binary and data.tar.xz) holding ``files`` (name ->
    content) and symbolic ``links`` (name -> target)."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(f"./{name}")
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    members = [(b"debian-binary", b"2.0\n"), (b"data.tar.xz", data.getvalue())]
    blob = b"!<arch>\n"
    for member, body in members:
        header = (
            member.ljust(16) + b"0".ljust(12) + b"0".ljust(6) + b"0".ljust(6) + b"100644".ljust(8)
        )
        header += str(len(body)).encode().ljust(10) + b"`\n"
        blob += header + body + (b"\n" if len(body) % 2 else b"")
    path.write_bytes(blob)
    return path
