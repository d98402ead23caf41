"""tools/sysroot.py: apt's plan is read right, packages unpack with their links kept inside the
sysroot, and an up-to-date sysroot is left alone (no apt run at all)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from helpers.debs import make_deb

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sysroot() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tools_sysroot", ROOT / "tools" / "sysroot.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["tools_sysroot"] = module
    spec.loader.exec_module(module)
    return module


class PlanOnlyApt:
    """Answers ``apt-get install --simulate`` with a fixed plan."""

    def __init__(self, stdout: str, returncode: int = 0) -> None:
        self.stdout = stdout
        self.returncode = returncode

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert args[:2] == ("install", "--simulate"), args
        return subprocess.CompletedProcess(args, self.returncode, self.stdout, "E: no such package")


def test_resolve_reads_every_package_apt_would_install(sysroot: ModuleType) -> None:
    plan = (
        "NOTE: This is only a simulation!\n"
        "Inst gcc-12-base (12.2.0-14 Debian:12.12/stable [arm64])\n"
        "Inst libc6 (2.36-9+deb12u13 Debian:12.12/stable [arm64])\n"
        "Inst media-types (10.0.0 Debian:12.12/stable [all])\n"
        "Conf libc6 (2.36-9+deb12u13 Debian:12.12/stable [arm64])\n"
    )
    assert sysroot.resolve(PlanOnlyApt(plan), ["libc6"]) == {
        "gcc-12-base": ("12.2.0-14", "arm64"),
        "libc6": ("2.36-9+deb12u13", "arm64"),
        "media-types": ("10.0.0", "all"),
    }


def test_resolve_failure_names_the_packages(sysroot: ModuleType) -> None:
    with pytest.raises(sysroot.FetchError, match="cannot resolve libnope-dev"):
        sysroot.resolve(PlanOnlyApt("", returncode=100), ["libnope-dev"])


def test_unpacked_absolute_links_point_inside_the_sysroot(
    sysroot: ModuleType, tmp_path: Path
) -> None:
    deb = make_deb(
        tmp_path / "libm.deb",
        {"lib/aarch64-linux-gnu/libm.so.6": b"\x7fELF"},
        links={
            "usr/lib/aarch64-linux-gnu/libm.so": "/lib/aarch64-linux-gnu/libm.so.6",
            "usr/lib/aarch64-linux-gnu/libm.so.6": "../../../lib/aarch64-linux-gnu/libm.so.6",
        },
    )
    root = tmp_path / "root"
    sysroot.unpack(deb, root)
    assert sysroot.relative_symlinks(root) == 1
    link = root / "usr/lib/aarch64-linux-gnu/libm.so"
    assert os.readlink(link) == "../../../lib/aarch64-linux-gnu/libm.so.6"
    assert link.read_bytes() == b"\x7fELF"
    assert (root / "usr/lib/aarch64-linux-gnu/libm.so.6").read_bytes() == b"\x7fELF"


def test_an_up_to_date_sysroot_is_left_alone(
    sysroot: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "sysroot"
    dest.mkdir()
    (dest / sysroot.STAMP).write_text(json.dumps({"requested": ["libc6-dev", "libssl-dev"]}))
    monkeypatch.setattr(sysroot, "PrivateApt", None)  # any apt use would fail
    assert sysroot.main(["--dest", str(dest), "libssl-dev", "libc6-dev"]) == 0
