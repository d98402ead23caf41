"""vendor/fetch.py: pins are verified, the pinned file is taken from any suite the pin names and
never replaced by another version, missing or mismatching packages are clear errors, the mirror
comes from the machine's apt sources, and .deb files unpack without dpkg (with a .pc file)."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType
from typing import Optional

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
    for name, body in members:
        header = (
            name.ljust(16) + b"0".ljust(12) + b"0".ljust(6) + b"0".ljust(6) + b"100644".ljust(8)
        )
        header += str(len(body)).encode().ljust(10) + b"`\n"
        blob += header + body + (b"\n" if len(body) % 2 else b"")
    path.write_bytes(blob)
    return path


class FakeApt:
    """Stands in for PrivateApt: serves prepared .deb files by (suite, version), from whichever
    of its suites has the version, as apt does with several suites in its sources."""

    def __init__(
        self, debs: dict[tuple[str, str], Path], arch: str = "amd64", suites: tuple[str, ...] = ()
    ) -> None:
        self.debs = debs
        self.arch = arch
        self.suites = suites or tuple(sorted({suite for suite, _ in debs}))

    def download(self, package: str, version: str) -> Optional[Path]:
        for suite in self.suites:
            if (suite, version) in self.debs:
                return self.debs[(suite, version)]
        return None


def pins_for(deb: Path, fallback: Optional[Path] = None) -> dict:
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    return {
        "primary": {
            "version": "2.0-1",
            "suites": ["sid", "testing"],
            "sha256": {"amd64": digest(deb)},
        },
        "fallback": {
            "version": "1.0-1",
            "suites": ["trixie"],
            "sha256": {"amd64": digest(fallback) if fallback else "0" * 64},
        },
    }


@pytest.mark.parametrize("suite", ["sid", "testing"])
def test_the_pinned_file_is_taken_from_sid_or_testing(
    fetch: ModuleType, tmp_path: Path, suite: str
) -> None:
    """The same file (same version, same sha256) is accepted from either suite the pin names."""
    deb = make_deb(tmp_path / "p.deb", {"usr/share/doc/x": b"x"})
    apt = FakeApt({(suite, "2.0-1"): deb}, suites=("sid", "testing"))
    used, path = fetch.fetch_package(apt, "libmongocrypt-dev", pins_for(deb), "primary")
    assert (used["role"], used["version"], path) == ("primary", "2.0-1", deb)
    assert used["suites"] == ["sid", "testing"]


def test_a_different_file_from_testing_is_refused(fetch: ModuleType, tmp_path: Path) -> None:
    """testing serves the pin only with the pinned hash: another build of it is refused."""
    pinned = make_deb(tmp_path / "p.deb", {"a": b"1"})
    rebuilt = make_deb(tmp_path / "r.deb", {"a": b"rebuilt"})
    apt = FakeApt({("testing", "2.0-1"): rebuilt}, suites=("sid", "testing"))
    with pytest.raises(fetch.FetchError, match=r"sha256 mismatch.*Do not build with it"):
        fetch.fetch_package(apt, "libmongocrypt-dev", pins_for(pinned), "primary")
    assert not rebuilt.exists()


def test_hash_mismatch_is_refused_and_the_file_deleted(fetch: ModuleType, tmp_path: Path) -> None:
    deb = make_deb(tmp_path / "p.deb", {"a": b"1"})
    pins = pins_for(deb)
    deb.write_bytes(deb.read_bytes() + b"tampered")
    with pytest.raises(fetch.FetchError, match=r"sha256 mismatch.*Do not build with it"):
        fetch.fetch_package(FakeApt({("sid", "2.0-1"): deb}), "libmongocrypt-dev", pins, "primary")
    assert not deb.exists()


def test_no_silent_downgrade_when_neither_suite_has_the_pin(
    fetch: ModuleType, tmp_path: Path
) -> None:
    """The primary pin gone from sid and testing stops the fetch with the way to re-pin, even
    though the mirror still has the (older) fallback version."""
    old = make_deb(tmp_path / "old.deb", {"a": b"old"})
    primary = make_deb(tmp_path / "new.deb", {"a": b"new"})
    apt = FakeApt({("trixie", "1.0-1"): old}, suites=("sid", "testing", "trixie"))
    with pytest.raises(fetch.FetchError) as info:
        fetch.fetch_package(apt, "libmongocrypt-dev", pins_for(primary, old), "primary")
    message = str(info.value)
    assert "2.0-1 (primary pin) is in neither sid or testing" in message
    assert "does not build with another version silently" in message
    assert "apt-get download libmongocrypt-dev:amd64=VERSION" in message
    assert "[libmongocrypt-dev.primary]" in message and "pins.toml" in message


def test_the_fallback_pin_is_fetched_only_when_asked(fetch: ModuleType, tmp_path: Path) -> None:
    old = make_deb(tmp_path / "old.deb", {"a": b"old"})
    primary = make_deb(tmp_path / "new.deb", {"a": b"new"})
    apt = FakeApt({("trixie", "1.0-1"): old})
    used, path = fetch.fetch_package(apt, "libmongocrypt-dev", pins_for(primary, old), "fallback")
    assert (used["role"], used["version"], path) == ("fallback", "1.0-1", old)


def test_the_command_line_has_no_automatic_fallback(fetch: ModuleType) -> None:
    with pytest.raises(SystemExit):
        fetch.main(["--pin", "auto"])


def test_pins_file_names_suites_for_every_pin(fetch: ModuleType) -> None:
    """The pins the build uses: the primary libmongocrypt from sid or testing; no other pin of
    another role is used automatically."""
    pins = fetch.tomllib.loads(fetch.PINS.read_text())
    assert pins["libmongocrypt-dev"]["primary"]["suites"] == ["sid", "testing"]
    assert pins["libmongocrypt-dev"]["fallback"]["version"].startswith("1.13.")
    assert set(pins["libintelrdfpmath-dev"]) == {"primary"}
    for choices in pins.values():
        for pin in choices.values():
            assert pin["suites"] and set(pin["sha256"]) == {"amd64", "arm64"}


def test_pkg_config_file_describes_the_unpacked_archives(fetch: ModuleType, tmp_path: Path) -> None:
    """The .pc written beside the archives makes them usable through pkg-config, from wherever
    the directory is (paths relative to the .pc file)."""
    pc_dir = tmp_path / "unpacked" / "lib" / "pkgconfig"
    pc_dir.mkdir(parents=True)
    (pc_dir / "libmongocrypt.pc").write_text(fetch.pkg_config_file("1.13.2-1+deb13u2"))
    env = {**os.environ, "PKG_CONFIG_PATH": str(pc_dir)}

    def pkg_config(*args: str) -> str:
        return subprocess.run(
            ["pkg-config", *args, "libmongocrypt"], env=env, capture_output=True, text=True
        ).stdout.strip()

    assert pkg_config("--modversion") == "1.13.2"
    root = (tmp_path / "unpacked").resolve()
    cflags = pkg_config("--cflags").split()
    assert [Path(f[2:]).resolve() for f in cflags if f.startswith("-I")] == [
        root / "include" / "mongocrypt"
    ]
    assert "-DMONGOCRYPT_STATIC_DEFINE" in cflags
    libs = pkg_config("--libs").split()
    archives = [Path(f).resolve().relative_to(root).as_posix() for f in libs if f.endswith(".a")]
    assert archives == [
        "lib/libmongocrypt-static.a",
        "lib/libkms_message-static.a",
        "lib/libbson-static-for-libmongocrypt.a",
        "lib/libbidgcc000.a",
    ]
    assert "-lcrypto" in libs and "-Wl,--exclude-libs,ALL" in libs


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


def test_up_to_date_needs_the_wanted_pins(fetch: ModuleType) -> None:
    pins = {
        "libmongocrypt-dev": {
            "primary": {"sha256": {"amd64": "p"}},
            "fallback": {"sha256": {"amd64": "f"}},
        }
    }
    stamp = {"arch": "amd64", "packages": {"libmongocrypt-dev": {"sha256": "p"}}}
    assert fetch.up_to_date(stamp, pins, {"libmongocrypt-dev": "primary"}, "amd64")
    assert not fetch.up_to_date(stamp, pins, {"libmongocrypt-dev": "fallback"}, "amd64")
    assert not fetch.up_to_date(stamp, pins, {"libmongocrypt-dev": "primary"}, "arm64")


def test_an_up_to_date_unpack_gets_its_pkg_config_file(fetch: ModuleType, tmp_path: Path) -> None:
    """An unpack that is already up to date still gets the .pc this script now writes."""
    pins = fetch.tomllib.loads(fetch.PINS.read_text())
    arch = fetch.debian_arch()
    stamp = {
        "arch": arch,
        "packages": {
            package: {"version": p["primary"]["version"], "sha256": p["primary"]["sha256"][arch]}
            for package, p in pins.items()
        },
    }
    (tmp_path / "pins.json").write_text(json.dumps(stamp))
    assert fetch.main(["--dest", str(tmp_path)]) == 0
    pc_file = (tmp_path / "lib" / "pkgconfig" / "libmongocrypt.pc").read_text()
    upstream = pins["libmongocrypt-dev"]["primary"]["version"].split("-")[0]
    assert f"Version: {upstream}\n" in pc_file
