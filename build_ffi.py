"""cffi builder for ``mongocrypt._libmongocrypt`` (out-of-line API mode).

By default the extension links the static libmongocrypt archives that ``vendor/fetch.py`` unpacked
into ``vendor/libmongocrypt/`` (or ``$MONGOCRYPT_VENDOR_DIR``), so it needs only libc, libm and
libcrypto at run time. With ``MONGOCRYPT_USE_SYSTEM_LIBMONGOCRYPT=1`` it links the system's
libmongocrypt found by pkg-config instead (for distribution packagers).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from cffi import FFI

ROOT = Path(__file__).resolve().parent
BINDINGS = ROOT / "bindings"
# bindings/cdefs/<name>.h, in this order: each section only uses types declared before it.
CDEFS = [
    "crypto",
    "binary",
    "status",
    "log",
    "handle",
    "context",
    "kms",
    "compat",
    "extras",
    "explicit",
    "hooks",
]
# bindings/csrc/<name>.c, compiled into the extension after mongocrypt.h, in this order.
CSRC = ["gil", "compat", "extras", "explicit", "hooks"]
STATIC_ARCHIVES = [
    "libmongocrypt-static.a",
    "libkms_message-static.a",
    "libbson-static-for-libmongocrypt.a",
    "libbidgcc000.a",
]
MIN_LIBMONGOCRYPT = (1, 13, 0)
# Optional functions newer than MIN_LIBMONGOCRYPT: compile-time flag -> function in mongocrypt.h.
FEATURES = {
    "MONGOCRYPT_PY_HAS_ALGORITHM_TEXT": "mongocrypt_ctx_setopt_algorithm_text",
    "MONGOCRYPT_PY_HAS_FEED_WITH_RETRY": "mongocrypt_kms_ctx_feed_with_retry",
}


class BuildError(Exception):
    """The extension cannot be built as configured; the message says what to do."""


def package_version() -> str:
    text = (ROOT / "src" / "mongocrypt" / "_version.py").read_text()
    match = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    if not match:
        raise BuildError("src/mongocrypt/_version.py has no __version__")
    return match.group(1)


def pkg_config(*args: str) -> list[str]:
    try:
        out = subprocess.run(
            ["pkg-config", *args], check=True, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BuildError(
            "MONGOCRYPT_USE_SYSTEM_LIBMONGOCRYPT=1 needs pkg-config and libmongocrypt's .pc file "
            f"(Debian: apt-get install pkg-config libmongocrypt-dev): {exc}"
        ) from exc
    return shlex.split(out)


def vendor_dir() -> Path:
    """Where the vendored archives are (``$MONGOCRYPT_VENDOR_DIR`` or vendor/libmongocrypt)."""
    return Path(os.environ.get("MONGOCRYPT_VENDOR_DIR", ROOT / "vendor" / "libmongocrypt"))


def license_files() -> list[str]:
    """Our licence plus those of the libraries linked in (relative to setup.py)."""
    files = ["LICENSE"]
    if os.environ.get("MONGOCRYPT_USE_SYSTEM_LIBMONGOCRYPT") != "1":
        files += ["vendor/OpenSSL-NOTICE.txt"]  # wheels bundle libcrypto
        files += [os.path.relpath(p, ROOT) for p in sorted((vendor_dir() / "licenses").glob("*"))]
    return files


def library_settings() -> dict[str, Any]:
    """Compiler and linker settings for the chosen libmongocrypt."""
    if os.environ.get("MONGOCRYPT_USE_SYSTEM_LIBMONGOCRYPT") == "1":
        version = tuple(
            int(p) for p in pkg_config("--modversion", "libmongocrypt")[0].split(".")[:3]
        )
        if version < MIN_LIBMONGOCRYPT:
            raise BuildError(
                f"the system libmongocrypt is {'.'.join(map(str, version))}; mongocrypt needs "
                f">= {'.'.join(map(str, MIN_LIBMONGOCRYPT))}. "
                "Unset MONGOCRYPT_USE_SYSTEM_LIBMONGOCRYPT "
                "to build against the vendored library."
            )
        cflags = pkg_config("--cflags", "libmongocrypt")
        libs = pkg_config("--libs", "libmongocrypt")
        return {
            # the flags too: a build directory reused with other flags must relink
            "origin": f"system libmongocrypt {'.'.join(map(str, version))} (pkg-config: "
            f"{' '.join(cflags + libs)})",
            "include_dirs": [f[2:] for f in cflags if f.startswith("-I")],
            "extra_compile_args": [f for f in cflags if not f.startswith("-I")],
            "extra_link_args": libs,
            "extra_objects": [],
        }
    vendor = vendor_dir()
    missing = [a for a in [*STATIC_ARCHIVES, "../pins.json"] if not (vendor / "lib" / a).exists()]
    if missing and "MONGOCRYPT_VENDOR_DIR" not in os.environ:
        # A fresh checkout or an sdist: fetch the pinned packages now (verified by sha256).
        subprocess.run([sys.executable, str(ROOT / "vendor" / "fetch.py")], check=True)
        missing = [a for a in STATIC_ARCHIVES if not (vendor / "lib" / a).exists()]
    if missing:
        raise BuildError(
            f"{vendor} lacks {', '.join(missing)}. Run `python vendor/fetch.py` "
            "(or set MONGOCRYPT_USE_SYSTEM_LIBMONGOCRYPT=1 to use the system libmongocrypt)."
        )
    pins = json.loads((vendor / "pins.json").read_text())["packages"]
    return {
        "origin": ", ".join(
            f"{name} {pin['version']} sha256:{pin['sha256']}" for name, pin in pins.items()
        ),
        "include_dirs": [str(vendor / "include" / "mongocrypt")],
        "extra_compile_args": ["-DMONGOCRYPT_STATIC_DEFINE", "-DKMS_MSG_STATIC"],
        # Keep the archives' symbols private so they cannot clash with another libbson in-process.
        "extra_link_args": ["-Wl,--exclude-libs,ALL"],
        "extra_objects": [str(vendor / "lib" / a) for a in STATIC_ARCHIVES],
    }


def feature_flags(include_dirs: list[str]) -> list[str]:
    """-D flags saying which optional functions the libmongocrypt header declares."""
    for directory in include_dirs:
        header = Path(directory) / "mongocrypt.h"
        if header.exists():
            text = header.read_text()
            return [f"-D{flag}={int(f'{fn}(' in text)}" for flag, fn in FEATURES.items()]
    raise BuildError(f"mongocrypt.h not found in {include_dirs}")


def libc_has_strlcpy() -> bool:
    """Link a tiny program that calls strlcpy; glibc has it only from 2.38. The compiler is the
    one setuptools will use ($CC first), so a cross build probes the target's glibc."""
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    program = (
        "#include <string.h>\n"
        "size_t strlcpy(char *, const char *, size_t);\n"
        'int main(void) { char b[4]; return (int)strlcpy(b, "ab", sizeof b) - 2; }\n'
    )
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "probe.c"
        source.write_text(program)
        result = subprocess.run(
            [*cc, str(source), "-o", str(Path(tmp) / "probe")], capture_output=True
        )
    return result.returncode == 0


def make_ffi() -> FFI:
    settings = library_settings()
    flags = feature_flags(settings["include_dirs"])
    build_version = package_version()
    ffi = FFI()
    ffi.cdef("\n".join((BINDINGS / "cdefs" / f"{name}.h").read_text() for name in CDEFS))
    ffi.set_source(
        "mongocrypt._libmongocrypt",
        # The origin comment makes the generated C differ per library, so a build directory
        # shared between builds against different libraries never reuses a stale object.
        f"/* built against: {settings['origin']} */\n#include <mongocrypt.h>\n"
        + "\n".join((BINDINGS / "csrc" / f"{name}.c").read_text() for name in CSRC),
        # setuptools wants sources relative to setup.py
        sources=[] if libc_has_strlcpy() else ["bindings/csrc/strlcpy.c"],
        include_dirs=settings["include_dirs"],
        extra_compile_args=[
            *settings["extra_compile_args"],
            *flags,
            f'-DMONGOCRYPT_PY_BUILD_VERSION="{build_version}"',
        ],
        extra_objects=settings["extra_objects"],
        extra_link_args=settings["extra_link_args"],
        libraries=["crypto", "dl", "m", "pthread"],
    )
    return ffi


ffibuilder = make_ffi()

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
