#!/usr/bin/env python3
"""Make a Debian arm64 sysroot (a folder laid out like an arm64 machine's /) from .debs.

The aarch64 wheel is cross-compiled against one (libc, libcrypto and Python headers) and tested
in another (an arm64 Python run by qemu-aarch64). apt resolves the packages' dependencies and
downloads them through a private state folder, vendor/.apt/sysroot-arm64/ (vendor/fetch.py's
PrivateApt), so the machine's apt configuration is never changed and no foreign architecture is
added; apt checks every .deb against the suite's signed index. Nothing is installed: each .deb's
files are unpacked into the folder, and absolute symlinks are made relative so they stay inside
it (an absolute ``libm.so`` link would send the linker to the host's files).

Usage::

    python tools/sysroot.py --dest build/aarch64/sysroot-build libc6-dev libssl-dev
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "vendor"))
from fetch import FetchError, PrivateApt, deb_data_tar

# Debian 12: glibc 2.36 and Python 3.11. The cross build's glibc symbol versions (and so the
# wheel's manylinux tag) come from here, so it is fixed rather than taken from the host.
SUITES = ["bookworm", "bookworm-updates"]
ARCH = "arm64"
STAMP = ".sysroot.json"


def resolve(apt: PrivateApt, packages: list[str]) -> dict[str, tuple[str, str]]:
    """What installing ``packages`` on an empty arm64 system needs: name -> (version, arch)."""
    result = apt.run("install", "--simulate", "--no-install-recommends", *packages)
    if result.returncode != 0:
        raise FetchError(f"apt cannot resolve {' '.join(packages)}:\n{result.stderr.strip()}")
    # Lines look like: Inst libc6 (2.36-9+deb12u10 Debian:12.11/stable [arm64])
    found = re.findall(r"^Inst (\S+) \((\S+) .*\[(\w+)\]\)", result.stdout, re.M)
    return {name.split(":")[0]: (version, arch) for name, version, arch in found}


def unpack(deb: Path, dest: Path) -> None:
    """Extract every regular file, directory and link of ``deb`` under ``dest``."""
    with deb_data_tar(deb) as tar:
        members = [m for m in tar.getmembers() if m.isfile() or m.isdir() or m.issym() or m.islnk()]
        tar.extractall(dest, members, filter="tar")


def relative_symlinks(root: Path) -> int:
    """Point absolute symlinks under ``root`` at the same path inside ``root``."""
    changed = 0
    for link in [p for p in root.rglob("*") if p.is_symlink()]:
        target = os.readlink(link)
        if target.startswith("/"):
            link.unlink()
            link.symlink_to(os.path.relpath(root / target.lstrip("/"), link.parent))
            changed += 1
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, required=True, help="the sysroot folder to make")
    parser.add_argument("packages", nargs="+", help="arm64 packages to unpack, with dependencies")
    args = parser.parse_args(argv)
    stamp = args.dest / STAMP
    wanted = sorted(args.packages)
    if stamp.exists() and json.loads(stamp.read_text())["requested"] == wanted:
        print(f"sysroot: {args.dest} is up to date", file=sys.stderr)
        return 0
    try:
        apt = PrivateApt(ARCH, SUITES, name=f"sysroot-{ARCH}")
        print("sysroot: reading package indices", file=sys.stderr)
        update = apt.run("update")
        if update.returncode != 0:
            raise FetchError(f"apt-get update failed:\n{update.stderr.strip()}")
        needed = resolve(apt, wanted)
        download = apt.run(
            "install", "--download-only", "--yes", "--no-install-recommends", *wanted
        )
        if download.returncode != 0:
            raise FetchError(f"downloading {' '.join(wanted)} failed:\n{download.stderr.strip()}")
        staging = args.dest.with_name(args.dest.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        archives = apt.root / "cache" / "archives"
        for name, (version, arch) in sorted(needed.items()):
            unpack(archives / f"{name}_{version.replace(':', '%3a')}_{arch}.deb", staging)
        fixed = relative_symlinks(staging)
        (staging / STAMP).write_text(
            json.dumps({"suites": SUITES, "requested": wanted, "unpacked": needed}, indent=2)
        )
        shutil.rmtree(args.dest, ignore_errors=True)
        staging.rename(args.dest)
    except FetchError as exc:
        print(f"sysroot: error: {exc}", file=sys.stderr)
        return 1
    print(
        f"sysroot: unpacked {len(needed)} packages into {args.dest} "
        f"({fixed} absolute symlinks made relative)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
