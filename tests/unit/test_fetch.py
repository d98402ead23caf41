"""vendor/fetch.py: pins are verified, missing or mismatching packages are clear errors, the
mirror comes from the machine's apt sources, and .deb files unpack without dpkg."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import sys
import tarfile
from pathlib import Path
from types import ModuleType
from typing import Any, Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fetch() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vendor_fetch", ROOT / "vendor" / "fetch.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["vendor_fetch"] = module
    spec.loader.exec_module(module)
    return module


def make_deb(path: Path, files: dict[str, bytes]) -> Path:
    """A minimal .deb: an ar archive holding debian-binary and data.tar.xz."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
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


class FakeApt:
    """Stands in for PrivateApt: serves prepared .deb files, or nothing."""

    def __init__(self, debs: dict[str, Path], arch: str = "amd64") -> None:
        self.debs = debs
        self.arch = arch

    def download(self, package: str, version: str) -> Optional[Path]:
        return self.debs.get(version)


def pins_for(deb: Path, fallback: Optional[Path] = None) -> dict[str, Any]:
    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    return {
        "primary": {"version": "2.0-1", "suite": "sid", "sha256": {"amd64": digest(deb)}},
        "fallback": {
            "version": "1.0-1",
            "suite": "trixie",
            "sha256": {"amd64": digest(fallback) if fallback else "0" * 64},
        },
    }


def test_verified_download_is_used(fetch: ModuleType, tmp_path: Path) -> None:
    deb = make_deb(tmp_path / "p.deb", {"usr/share/doc/x": b"x"})
    used, path = fetch.fetch_package(
        FakeApt({"2.0-1": deb}), "libmongocrypt-dev", pins_for(deb), "auto"
    )
    assert (used["role"], used["version"], path) == ("primary", "2.0-1", deb)


def test_hash_mismatch_is_refused_and_the_file_deleted(fetch: ModuleType, tmp_path: Path) -> None:
    deb = make_deb(tmp_path / "p.deb", {"a": b"1"})
    pins = pins_for(deb)
    deb.write_bytes(deb.read_bytes() + b"tampered")
    with pytest.raises(fetch.FetchError, match=r"sha256 mismatch.*Do not build with it"):
        fetch.fetch_package(FakeApt({"2.0-1": deb}), "libmongocrypt-dev", pins, "auto")
    assert not deb.exists()


def test_fallback_when_primary_left_the_mirror(
    fetch: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = make_deb(tmp_path / "old.deb", {"a": b"old"})
    primary = make_deb(tmp_path / "new.deb", {"a": b"new"})
    used, path = fetch.fetch_package(
        FakeApt({"1.0-1": old}), "libmongocrypt-dev", pins_for(primary, old), "auto"
    )
    assert (used["role"], path) == ("fallback", old)
    assert "using the fallback pin" in capsys.readouterr().err


def test_nothing_on_the_mirror_says_what_to_do(fetch: ModuleType, tmp_path: Path) -> None:
    deb = make_deb(tmp_path / "p.deb", {"a": b"1"})
    with pytest.raises(fetch.FetchError, match=r"no longer on the mirror.*pin it with its sha256"):
        fetch.fetch_package(FakeApt({}), "libmongocrypt-dev", pins_for(deb), "auto")


def test_missing_architecture_hash(fetch: ModuleType, tmp_path: Path) -> None:
    deb = make_deb(tmp_path / "p.deb", {"a": b"1"})
    with pytest.raises(fetch.FetchError, match="no sha256 for libmongocrypt-dev on riscv64"):
        fetch.fetch_package(
            FakeApt({}, arch="riscv64"), "libmongocrypt-dev", pins_for(deb), "primary"
        )


def test_unpack_takes_what_the_build_needs(fetch: ModuleType, tmp_path: Path) -> None:
    lib = "usr/lib/x86_64-linux-gnu/"
    files = {
        "usr/include/mongocrypt/mongocrypt.h": b"header",
        "usr/include/kms_message/kms_message.h": b"kms header",
        lib + "libmongocrypt-static.a": b"a1",
        lib + "libkms_message-static.a": b"a2",
        lib + "libbson-static-for-libmongocrypt.a": b"a3",
        lib + "libmongocrypt.so": b"not wanted",
        "usr/share/doc/libmongocrypt-dev/copyright": b"licence",
    }
    dest = tmp_path / "out"
    fetch.unpack(make_deb(tmp_path / "p.deb", files), "libmongocrypt-dev", "amd64", dest)
    found = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert found == [
        "include/kms_message/kms_message.h",
        "include/mongocrypt/mongocrypt.h",
        "lib/libbson-static-for-libmongocrypt.a",
        "lib/libkms_message-static.a",
        "lib/libmongocrypt-static.a",
        "licenses/libmongocrypt.copyright",
    ]


def test_unpack_reports_a_package_without_the_archives(fetch: ModuleType, tmp_path: Path) -> None:
    deb = make_deb(tmp_path / "p.deb", {"usr/share/doc/other/copyright": b"x"})
    with pytest.raises(fetch.FetchError, match="points at the wrong package"):
        fetch.unpack(deb, "libintelrdfpmath-dev", "amd64", tmp_path / "out")


def test_not_a_deb(fetch: ModuleType, tmp_path: Path) -> None:
    bogus = tmp_path / "x.deb"
    bogus.write_bytes(b"<html>404</html>")
    with pytest.raises(fetch.FetchError, match="not a Debian package"):
        fetch.unpack(bogus, "libmongocrypt-dev", "amd64", tmp_path / "out")


def test_mirror_override(fetch: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONGOCRYPT_DEBIAN_MIRROR", "http://mirror.invalid/debian/")
    assert fetch.apt_mirror() == "http://mirror.invalid/debian"


def testup_to_date_needs_the_preferred_pins(fetch: ModuleType) -> None:
    pins = {
        "libmongocrypt-dev": {
            "primary": {"sha256": {"amd64": "p"}},
            "fallback": {"sha256": {"amd64": "f"}},
        }
    }
    stamp = {"arch": "amd64", "packages": {"libmongocrypt-dev": {"sha256": "p"}}}
    assert fetch.up_to_date(stamp, pins, {"libmongocrypt-dev": "auto"}, "amd64")
    assert not fetch.up_to_date(stamp, pins, {"libmongocrypt-dev": "fallback"}, "amd64")
    assert not fetch.up_to_date(stamp, pins, {"libmongocrypt-dev": "auto"}, "arm64")
