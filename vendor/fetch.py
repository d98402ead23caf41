#!/usr/bin/env python3
"""Fetch the pinned libmongocrypt static archives into vendor/libmongocrypt/.

Each package named in vendor/pins.toml is downloaded with ``apt-get download`` from the Debian
mirror configured on this machine, through a private apt state directory (vendor/.apt/), so the
machine's own apt configuration is never changed. A pin names the suites that may carry its file
(sid or testing for the primary): the same file name from any of them, and every download is
checked against the pinned sha256 before anything is unpacked. There is no automatic fallback to
another version: when no suite has the pinned file any more, the fetch stops and says how to
re-pin.

Besides the archives, the unpacked directory gets a relocatable ``lib/pkgconfig/libmongocrypt.pc``
for them, so a build can also take them as a "system" library through pkg-config
(``MONGOCRYPT_USE_SYSTEM_LIBMONGOCRYPT=1``, as ``make test-fallback`` does with 1.13). The .pc
files inside the .deb cannot serve: they hard-code /usr and require the system's libbson.

Usage::

    python vendor/fetch.py                   # the primary pins
    python vendor/fetch.py --pin fallback    # the older pinned libmongocrypt, for compat builds
    python vendor/fetch.py --dest DIR        # unpack somewhere else
    python vendor/fetch.py --arch arm64 --dest vendor/libmongocrypt-aarch64   # for a cross build

Environment: ``MONGOCRYPT_DEBIAN_MIRROR`` overrides the mirror read from the apt sources.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
PINS = HERE / "pins.toml"
STATE = HERE / ".apt"
DEFAULT_DEST = HERE / "libmongocrypt"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

# What the build needs from each package: archive member path (under usr/) -> destination.
WANTED = {
    "libmongocrypt-dev": {
        "include/mongocrypt/": "include/mongocrypt/",
        "include/kms_message/": "include/kms_message/",
        "lib/{triplet}/libmongocrypt-static.a": "lib/libmongocrypt-static.a",
        "lib/{triplet}/libkms_message-static.a": "lib/libkms_message-static.a",
        "lib/{triplet}/libbson-static-for-libmongocrypt.a": (
            "lib/libbson-static-for-libmongocrypt.a"
        ),
        "share/doc/libmongocrypt-dev/copyright": "licenses/libmongocrypt.copyright",
    },
    "libintelrdfpmath-dev": {
        "lib/{triplet}/libbidgcc000.a": "lib/libbidgcc000.a",
        "share/doc/libintelrdfpmath-dev/copyright": "licenses/intelrdfpmath.copyright",
    },
}
TRIPLETS = {"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}


class FetchError(Exception):
    """A problem the user has to act on; the message says what to do."""


def debian_arch() -> str:
    """The Debian architecture name of this machine."""
    if shutil.which("dpkg"):
        return subprocess.run(
            ["dpkg", "--print-architecture"], check=True, capture_output=True, text=True
        ).stdout.strip()
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def apt_mirror() -> str:
    """The Debian archive URI this machine's apt sources use (never a hard-coded host)."""
    override = os.environ.get("MONGOCRYPT_DEBIAN_MIRROR")
    if override:
        return override.rstrip("/")
    uris: list[str] = []
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for line in Path(path).read_text().splitlines():
            if line.startswith("URIs:"):
                uris.extend(line.split()[1:])
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
        if os.path.exists(path):
            for line in Path(path).read_text().splitlines():
                words = [w for w in line.split() if not w.startswith("[")]
                if words[:1] == ["deb"] and len(words) > 1:
                    uris.append(words[1])
    for uri in uris:
        if uri.rstrip("/").endswith("/debian"):
            return uri.rstrip("/")
    raise FetchError(
        "no Debian archive mirror found in /etc/apt/sources.list{,.d/}; "
        "set MONGOCRYPT_DEBIAN_MIRROR to the URL of a Debian mirror (the one ending in /debian)"
    )


class PrivateApt:
    """apt-get with its lists, cache and sources in vendor/.apt/, for one architecture."""

    def __init__(self, arch: str, suites: list[str]) -> None:
        self.arch = arch
        self.root = STATE / arch
        self.debs = STATE / "debs"
        for sub in ("lists/partial", "cache/archives/partial"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.debs.mkdir(parents=True, exist_ok=True)
        mirror = apt_mirror()
        sources = self.root / "sources.list"
        sources.write_text(
            "".join(f"deb [signed-by={KEYRING}] {mirror} {suite} main\n" for suite in suites)
        )
        self.options = [
            f"-oAPT::Architecture={arch}",
            f"-oAPT::Architectures={arch}",
            f"-oDir::Etc::sourcelist={sources}",
            "-oDir::Etc::sourceparts=-",
            f"-oDir::State::Lists={self.root / 'lists'}",
            f"-oDir::Cache={self.root / 'cache'}",
            "-oDir::State::status=/dev/null",
            "-oDebug::NoLocking=1",
            "-oAPT::Sandbox::User=root",
        ]
        self.updated = False

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        if not shutil.which("apt-get"):
            raise FetchError(
                "apt-get is not installed; vendor/fetch.py needs a Debian-based machine"
            )
        return subprocess.run(
            ["apt-get", "-q", *self.options, *args], cwd=cwd, capture_output=True, text=True
        )

    def download(self, package: str, version: str) -> Path | None:
        """Download one package version; None when the mirror no longer has it."""
        deb = self.debs / f"{package}_{version.replace(':', '%3a')}_{self.arch}.deb"
        if deb.exists():
            return deb
        if not self.updated:
            print(f"fetch: reading package indices from {apt_mirror()}", file=sys.stderr)
            result = self.run("update")
            if result.returncode != 0:
                raise FetchError(f"apt-get update failed:\n{result.stderr.strip()}")
            self.updated = True
        result = self.run("download", f"{package}:{self.arch}={version}", cwd=self.debs)
        if result.returncode != 0:
            print(
                f"fetch: {package} {version} not available: {result.stderr.strip()}",
                file=sys.stderr,
            )
            return None
        return deb if deb.exists() else None


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def deb_data_tar(deb: Path) -> tarfile.TarFile:
    """Open the data.tar.* member of a .deb (an ar archive) without needing dpkg."""
    blob = deb.read_bytes()
    if not blob.startswith(b"!<arch>\n"):
        raise FetchError(f"{deb} is not a Debian package; delete it and run again")
    offset = 8
    while offset + 60 <= len(blob):
        header = blob[offset : offset + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = blob[offset + 60 : offset + 60 + size]
        if name.startswith("data.tar"):
            return tarfile.open(fileobj=io.BytesIO(body), mode="r:*")
        offset += 60 + size + (size & 1)
    raise FetchError(f"{deb} has no data.tar member; delete it and run again")


def unpack(deb: Path, package: str, arch: str, dest: Path) -> None:
    """Copy the members the build needs from ``deb`` into ``dest``."""
    triplet = TRIPLETS.get(arch, f"{arch}-linux-gnu")
    wanted = {f"usr/{src.format(triplet=triplet)}": dst for src, dst in WANTED[package].items()}
    found = set()
    with deb_data_tar(deb) as tar:
        for member in tar.getmembers():
            name = member.name.removeprefix("./")
            if not member.isfile():
                continue
            for src, dst in wanted.items():
                if name == src or (src.endswith("/") and name.startswith(src)):
                    target = dest / (dst + name[len(src) :] if src.endswith("/") else dst)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    extracted = tar.extractfile(member)
                    assert extracted is not None
                    target.write_bytes(extracted.read())
                    found.add(src)
    missing = set(wanted) - found
    if missing:
        raise FetchError(
            f"{deb.name} lacks {sorted(missing)}; the pin in {PINS} points at the wrong package"
        )


def fetch_package(apt: PrivateApt, package: str, choices: dict, role: str) -> tuple[dict, Path]:
    """Download and verify one package's ``role`` pin; returns the pin that was used and the
    .deb. Whichever of the pin's suites has the version serves the file; its sha256 must be the
    pinned one."""
    pin = choices[role]
    expected = pin["sha256"].get(apt.arch)
    if expected is None:
        raise FetchError(f"{PINS} has no sha256 for {package} on {apt.arch}; add one to build here")
    deb = apt.download(package, pin["version"])
    if deb is None:
        suites = " or ".join(pin["suites"])
        raise FetchError(
            f"{package} {pin['version']} ({role} pin) is in neither {suites} any more, and "
            "mongocrypt does not build with another version silently. To re-pin: see which "
            f"version the suites now carry (apt-cache policy {package}, or "
            "https://packages.debian.org/source/sid/libmongocrypt), download that .deb for "
            f"each architecture (apt-get download {package}:amd64=VERSION, and :arm64), check "
            "each file's sha256 against the suite's signed Packages index, write the version, "
            f"the suites and the sha256 values into [{package}.{role}] in {PINS}, and run again."
        )
    actual = sha256(deb)
    if actual != expected:
        deb.unlink()
        raise FetchError(
            f"sha256 mismatch for {deb.name}: pinned {expected}, downloaded {actual}. "
            "Do not build with it. If Debian really rebuilt the package, verify the new file "
            f"against the suite's signed index and update {PINS}."
        )
    used = {"role": role, "version": pin["version"], "suites": pin["suites"], "sha256": actual}
    return used, deb


def pkg_config_file(version: str) -> str:
    """A libmongocrypt.pc for the unpacked archives (relocatable: paths from ``pcfiledir``).

    :param version: the Debian version of the libmongocrypt-dev pin; the .pc carries the
        upstream part.
    """
    upstream = version.split(":")[-1].split("-")[0].split("+")[0]
    # in WANTED's order, which is the link order: each archive uses only those after it
    archives = " ".join(
        "${prefix}/" + dst
        for files in WANTED.values()
        for dst in files.values()
        if dst.endswith(".a")
    )
    return (
        "prefix=${pcfiledir}/../..\n"
        "includedir=${prefix}/include\n\n"
        "Name: libmongocrypt\n"
        "Description: libmongocrypt static archives unpacked by vendor/fetch.py\n"
        f"Version: {upstream}\n"
        "Cflags: -I${includedir}/mongocrypt -DMONGOCRYPT_STATIC_DEFINE -DKMS_MSG_STATIC\n"
        # keep the archives' symbols private, as the vendored build does (another libbson in
        # the process cannot clash with ours)
        f"Libs: {archives} -Wl,--exclude-libs,ALL -lcrypto -ldl -lm -lpthread\n"
    )


def write_pkg_config(dest: Path, version: str) -> None:
    """Write ``dest/lib/pkgconfig/libmongocrypt.pc`` (see :func:`pkg_config_file`)."""
    pc_file = dest / "lib" / "pkgconfig" / "libmongocrypt.pc"
    pc_file.parent.mkdir(parents=True, exist_ok=True)
    pc_file.write_text(pkg_config_file(version))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pin",
        choices=["primary", "fallback"],
        default="primary",
        help="which libmongocrypt pin to use (default: primary)",
    )
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="where to unpack")
    parser.add_argument("--arch", help="Debian architecture to fetch for (default: this machine's)")
    args = parser.parse_args(argv)

    pins = tomllib.loads(PINS.read_text())
    arch = args.arch or debian_arch()
    stamp_path = args.dest / "pins.json"
    try:
        wanted_roles = {"libmongocrypt-dev": args.pin, "libintelrdfpmath-dev": "primary"}
        stamp = json.loads(stamp_path.read_text()) if stamp_path.exists() else None
        if stamp is not None and up_to_date(stamp, pins, wanted_roles, arch):
            # the archives are; the .pc is rewritten, as this script may have changed
            write_pkg_config(args.dest, stamp["packages"]["libmongocrypt-dev"]["version"])
            print(f"fetch: {args.dest} is up to date", file=sys.stderr)
            return 0
        suites = sorted(
            {suite for p, role in wanted_roles.items() for suite in pins[p][role]["suites"]}
        )
        apt = PrivateApt(arch, suites)
        used: dict[str, dict] = {}
        staging = args.dest.with_name(args.dest.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        for package, role in wanted_roles.items():
            used[package], deb = fetch_package(apt, package, pins[package], role)
            unpack(deb, package, arch, staging)
        write_pkg_config(staging, used["libmongocrypt-dev"]["version"])
        (staging / "pins.json").write_text(
            json.dumps({"arch": arch, "packages": used}, indent=2) + "\n"
        )
        shutil.rmtree(args.dest, ignore_errors=True)
        staging.rename(args.dest)
    except FetchError as exc:
        print(f"fetch: error: {exc}", file=sys.stderr)
        return 1
    summary = ", ".join(f"{package} {pin['version']}" for package, pin in used.items())
    print(f"fetch: unpacked {summary} into {args.dest}", file=sys.stderr)
    return 0


def up_to_date(stamp: dict, pins: dict, roles: dict[str, str], arch: str) -> bool:
    """Whether an earlier unpack holds exactly the wanted pin of every package."""
    for package, role in roles.items():
        if stamp.get("arch") != arch or stamp["packages"].get(package, {}).get("sha256") != pins[
            package
        ][role]["sha256"].get(arch):
            return False
    return True


if __name__ == "__main__":
    sys.exit(main())
