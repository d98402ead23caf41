"""Side-by-side benchmarks of mongocrypt, the incumbent pymongocrypt and the C limit (issue 8).

usage: python bench/run.py [--quick] [--output FILE] [--reps N] [--only GROUP,...] [--uri URI]
                          [--[no-]profile] [--refresh-incumbent]

One command sets up what it needs and measures everything in one run:
- ``bench/.venv-incumbent``: a virtualenv with the incumbent pymongocrypt (from PyPI) and the dev
  venv's pymongo version (both distributions own the ``pymongocrypt`` import name, so the incumbent
  never shares a venv with mongocrypt); ``--refresh-incumbent`` upgrades it to the newest release;
- ``bench/build/libmongocrypt.so``: the vendored static archives linked into a shared library, so
  the incumbent can run on a native-crypto libmongocrypt (``PYMONGOCRYPT_LIB``);
- ``bench/build/explicit_loop``: bench/c/explicit_loop.c on the same archives (the limit);
- SecantusDB on a free 127.0.0.1 port (or ``--uri``), holding the key vault and the documents.

Each benchmark is a script in bench/workers/ run in the interpreter of the variant it measures,
printing JSON. Every repetition runs every group once, and inside a group every variant once, in
an order that rotates between repetitions (so drift spreads over all variants). The figures are
the medians over repetitions; the report goes to docs/benchmarks.md (``--quick``: to
bench/build/benchmarks-quick.md unless ``--output`` says otherwise) and to stdout, and the raw
results to bench/build/results.json.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORKERS = BENCH / "workers"
BUILD = BENCH / "build"
DEV_VENV = ROOT / ".venv"
INCUMBENT_VENV = BENCH / ".venv-incumbent"
VENDOR = Path(os.environ.get("MONGOCRYPT_VENDOR_DIR", ROOT / "vendor" / "libmongocrypt"))
ARCHIVES = [
    "libmongocrypt-static.a",
    "libkms_message-static.a",
    "libbson-static-for-libmongocrypt.a",
    "libbidgcc000.a",
]
KEY_VAULT = "bench.__keyVault"
DOCS = 1000
FIELDS = (10, 100)

CASE_LABELS = {
    "det_short": "Deterministic, 20 B string",
    "det_4k": "Deterministic, 4 KiB string",
    "rnd_short": "Random, 20 B string",
    "rnd_4k": "Random, 4 KiB string",
    "indexed": "Indexed (contention 0), 20 B string",
    "range_int": "Range, int (min 0, max 1e6, sparsity 1)",
    "range_double": "Range, double (precision 2, sparsity 1)",
}


#: The cases and implementations of the thread-scaling table.
THREAD_CASES = ("range_int", "det_4k", "det_short")
THREAD_VARIANTS = (
    ("mongocrypt", "mongocrypt drop-in"),
    ("mongocrypt_nohooks", "mongocrypt drop-in, no hooks"),
    ("own", "mongocrypt own API"),
    ("own_nohooks", "mongocrypt own API, no hooks"),
    ("incumbent", "incumbent"),
)


class Variant:
    """One implementation under test: an interpreter and the environment it runs with."""

    def __init__(self, key: str, label: str, python: Path, env: dict[str, str]) -> None:
        self.key, self.label, self.python, self.env = key, label, python, env


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Settings:
    def __init__(self, quick: bool, reps: Optional[int]) -> None:
        self.quick = quick
        if quick:
            self.reps = reps or 3
            self.explicit_seconds, self.explicit_warmup = 0.15, 0.05
            self.thread_seconds = 0.3
            self.find_seconds = 0.3
            self.datakey_count = 300
            self.memory_checkpoints = (20_000, 200_000)
            self.c_seconds, self.c_warmup = 0.3, 0.1
            self.profile_seconds = 2.0
        else:
            self.reps = reps or 5
            self.explicit_seconds, self.explicit_warmup = 0.5, 0.15
            self.thread_seconds = 1.0
            self.find_seconds = 1.0
            self.datakey_count = 1000
            self.memory_checkpoints = (100_000, 1_000_000)
            self.c_seconds, self.c_warmup = 0.5, 0.15
            self.profile_seconds = 3.0

    def describe(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items()}


# -- set-up ------------------------------------------------------------------------------------


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise SystemExit(
            f"failed ({result.returncode}): {shlex.join(cmd)}\n{result.stdout}\n{result.stderr}"
        )
    return result


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def dev_python() -> Path:
    python = python_of(DEV_VENV)
    if not python.exists():
        raise SystemExit(f"{python} is missing: run `make build` first")
    return python


def distribution_versions(python: Path, *names: str) -> dict[str, Optional[str]]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = None\n"
        "print(json.dumps(out))\n"
    )
    return json.loads(run([str(python), "-c", code, *names]).stdout)  # type: ignore[no-any-return]


def ensure_incumbent(pymongo_version: str, refresh: bool) -> Path:
    """bench/.venv-incumbent with the incumbent pymongocrypt and pymongo ``pymongo_version``."""
    python = python_of(INCUMBENT_VENV)
    if not python.exists():
        # The dev venv's base interpreter, so both sides run the same Python.
        base = run(
            [str(dev_python()), "-c", "import sys; print(sys._base_executable)"]
        ).stdout.strip()
        log(f"creating {INCUMBENT_VENV.relative_to(ROOT)} with {base}")
        run([base, "-m", "venv", str(INCUMBENT_VENV)])
        run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"])
        refresh = True
    installed = distribution_versions(python, "pymongocrypt", "pymongo")
    if refresh or installed["pymongocrypt"] is None or installed["pymongo"] != pymongo_version:
        log(f"installing pymongocrypt (newest) and pymongo=={pymongo_version} into the venv")
        run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--upgrade",
                "pymongocrypt",
                f"pymongo=={pymongo_version}",
            ]
        )
    return python


def cc() -> list[str]:
    return shlex.split(os.environ.get("CC", "cc"))


def libc_has_strlcpy() -> bool:
    """glibc has strlcpy only from 2.38; the newer Debian archives call it (as build_ffi.py)."""
    program = (
        "#include <string.h>\n"
        "size_t strlcpy(char *, const char *, size_t);\n"
        'int main(void) { char b[4]; return (int)strlcpy(b, "ab", sizeof b) - 2; }\n'
    )
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "probe.c"
        source.write_text(program)
        probe = subprocess.run(
            [*cc(), str(source), "-o", str(Path(tmp) / "probe")], capture_output=True
        )
    return probe.returncode == 0


def stale(target: Path, inputs: list[Path]) -> bool:
    return not target.exists() or any(p.stat().st_mtime > target.stat().st_mtime for p in inputs)


def build_native() -> tuple[Path, Path]:
    """The shared libmongocrypt for the incumbent and the C loop, from the vendored archives."""
    archives = [VENDOR / "lib" / a for a in ARCHIVES]
    missing = [str(a) for a in archives if not a.exists()]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: run `make build` first")
    BUILD.mkdir(exist_ok=True)
    shim = [] if libc_has_strlcpy() else [str(ROOT / "bindings" / "csrc" / "strlcpy.c")]
    system_libs = ["-lcrypto", "-lm", "-ldl", "-lpthread"]
    shared = BUILD / "libmongocrypt.so"
    if stale(shared, [*archives, Path(__file__)]):
        log("linking bench/build/libmongocrypt.so from the vendored archives")
        run(
            [
                *cc(),
                "-shared",
                "-fPIC",
                "-O2",
                "-o",
                str(shared),
                *shim,
                "-Wl,--whole-archive",
                str(archives[0]),
                "-Wl,--no-whole-archive",
                *map(str, archives[1:]),
                *system_libs,
                "-Wl,--no-undefined",
            ]
        )
    loop = BUILD / "explicit_loop"
    source = BENCH / "c" / "explicit_loop.c"
    hooks = ROOT / "bindings" / "csrc" / "hooks.c"
    if stale(loop, [*archives, source, hooks, Path(__file__)]):
        log("building bench/build/explicit_loop")
        run(
            [
                *cc(),
                "-O2",
                "-Wall",
                "-Wno-unused-function",  # hooks.c's test entry points
                "-DMONGOCRYPT_STATIC_DEFINE",
                "-DKMS_MSG_STATIC",
                f"-I{VENDOR / 'include' / 'mongocrypt'}",
                "-o",
                str(loop),
                str(source),
                *shim,
                *map(str, archives),
                *system_libs,
            ]
        )
    return shared, loop


def run_c_loop(
    c_loop: Path, settings: Settings, raw: dict[str, Any], versions: dict[str, Any]
) -> None:
    """One repetition of the C loop, with libmongocrypt's crypto and with our hooks."""
    for key, extra in (("c", []), ("c_hooks", ["hooks"])):
        cmd = [str(c_loop), str(settings.c_seconds), str(settings.c_warmup), *extra]
        out = json.loads(run(cmd).stdout)
        raw.setdefault("c_loop", {}).setdefault(key, []).append(out)
        versions["c_loop"] = out["libmongocrypt"]


def load_module(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ensure_py_spy(hotspots: Any, incumbent_python: Path) -> Path:
    """py-spy: the dev venv's or PATH's, else installed into bench/build/tools (no venv needed:
    it is a standalone binary that samples any Python process from outside)."""
    tools = BUILD / "tools"
    found = hotspots.find_py_spy(tools / "bin" / "py-spy")
    if found is None:
        log("installing py-spy into bench/build/tools")
        run([str(incumbent_python), "-m", "pip", "install", "-q", "--target", str(tools), "py-spy"])
        found = hotspots.find_py_spy(tools / "bin" / "py-spy")
    if found is None:
        raise RuntimeError("py-spy could not be installed")
    return found  # type: ignore[no-any-return]


def load_peer_module() -> Any:
    """tests/helpers/peers/process.py (Peer, free_port, port_open), loaded by path."""
    return load_module("_bench_peer_process", ROOT / "tests" / "helpers" / "peers" / "process.py")


def start_secantus(workdir: Path) -> tuple[str, Any]:
    process = load_peer_module()
    port = process.free_port()
    config = workdir / "secantusd.toml"
    config.write_text("")  # an explicit empty config: no auto-discovery of the user's files
    peer = process.Peer(
        "SecantusDB",
        [
            str(DEV_VENV / "bin" / "secantusd-py"),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            str(workdir / "data"),
            "--standalone",
        ],
        workdir / "secantusd.log",
        ready=lambda: process.port_open(port),
    )
    return f"mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=10000", peer


# -- running workers ---------------------------------------------------------------------------


def worker(variant: Variant, script: str, args: list[str], base_env: dict[str, str]) -> Any:
    env = {k: v for k, v in os.environ.items() if k not in ("PYMONGOCRYPT_LIB", "BENCH_API")}
    env.update(base_env)
    env.update(variant.env)
    cmd = [str(variant.python), str(WORKERS / script), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=WORKERS, timeout=900)
    if result.returncode != 0:
        raise SystemExit(
            f"{variant.label}: {script} failed ({result.returncode}):\n{result.stdout}\n"
            f"{result.stderr}"
        )
    return json.loads(result.stdout.strip().splitlines()[-1])


def check_variant(variant: Variant, versions: dict[str, Any], libmongocrypt: str) -> None:
    """Make sure each variant runs what it claims to run."""
    is_mongocrypt = "mongocrypt" in versions
    if variant.key in ("mongocrypt", "own", "plain") and not is_mongocrypt:
        raise SystemExit(f"{variant.label} did not run on mongocrypt: {versions}")
    if variant.key in ("incumbent", "native") and is_mongocrypt:
        raise SystemExit(f"{variant.label} ran on mongocrypt, not the incumbent: {versions}")
    if variant.key == "native" and not (
        versions["native_crypto"] and versions["libmongocrypt"] == libmongocrypt
    ):
        raise SystemExit(
            f"{variant.label} did not load bench/build/libmongocrypt.so ({libmongocrypt}): "
            f"{versions}"
        )


def rotate(items: list[Any], rep: int) -> list[Any]:
    shift = rep % len(items)
    return items[shift:] + items[:shift]


def summary(values: list[float]) -> dict[str, Any]:
    median = statistics.median(values)
    return {
        "median": median,
        "min": min(values),
        "max": max(values),
        "spread": (max(values) - min(values)) / median if median else 0.0,
        "n": len(values),
        "values": values,
    }


# -- the report --------------------------------------------------------------------------------


def fmt(value: Optional[float]) -> str:
    if value is None:
        return "–"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or not b else a / b


def fmt_ratio(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.2f}×"


def fmt_pct(value: Optional[float]) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def table(header: list[str], rows: list[list[str]], align: Optional[str] = None) -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    marks = {"l": "---", "r": "---:"}
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(marks[a] for a in align) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    compiler = subprocess.run([*cc(), "--version"], capture_output=True, text=True)
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "os": platform.platform(),
        "compiler": compiler.stdout.splitlines()[0] if compiler.returncode == 0 else "unknown",
    }


def git_revision() -> str:
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    if head.returncode != 0:
        return "unknown"
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty else "")


def render(results: dict[str, Any]) -> str:
    m = results["medians"]
    s = results["settings"]
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`python bench/run.py{' --quick' if s['quick'] else ''}`) on "
        f"{results['date']}; do not edit by hand. "
        + (
            "**Quick run: fewer repetitions, shorter measurements and fewer keys; for iterating, "
            "not for the record.** "
            if s["quick"]
            else ""
        )
        + f"Every figure is the median of {s['reps']} repetitions measured side by side in this "
        "one run (see Method).",
        "",
    ]

    # Targets first: what the issue asks for, met or missed.
    lines += ["## Targets (issues 8 and 16)", ""]
    lines += table(
        ["target", "figure", "result"],
        [[t["target"], t["figure"], t["verdict"]] for t in results["targets"]],
        "lll",
    )
    lines.append("")
    if results.get("chart"):
        lines += [
            f"![The headline ratios against their targets (bench/chart.py)]({results['chart']})",
            "",
        ]

    ex = m.get("explicit")
    if ex:
        c_loop = m.get("c_loop", {})
        lines += [
            "## Explicit encryption and decryption (ops/s)",
            "",
            "mongocrypt through pymongo's `ClientEncryption` (drop-in) and through its own "
            "`mongocrypt.ClientEncryption`; the incumbent pymongocrypt as shipped (its Linux wheel "
            "does the cryptography in Python callbacks) and forced onto a native-crypto "
            "libmongocrypt linked from the same vendored archives (`PYMONGOCRYPT_LIB`); the C "
            "loop drives that libmongocrypt directly (Deterministic, 20 B string only), with "
            "libmongocrypt's crypto and with mongocrypt's crypto hooks (the new limit). mongocrypt "
            "uses its hooks unless the column says no hooks (`MONGOCRYPT_CRYPTO_HOOKS=0`). Local "
            "master key, key vault on SecantusDB, key id given; decrypt reads back one ciphertext "
            "of the same case.",
            "",
        ]
        rows = []
        for case, label in CASE_LABELS.items():
            if case not in ex.get("mongocrypt", {}):
                continue
            for op in ("encrypt", "decrypt"):
                get = lambda v, case=case, op=op: ex.get(v, {}).get(case, {}).get(op)  # noqa: E731
                c, ch = (
                    (c_loop.get("c", {}).get(op), c_loop.get("c_hooks", {}).get(op))
                    if case == "det_short"
                    else (None, None)
                )
                rows.append(
                    [
                        label,
                        op,
                        fmt(get("mongocrypt")),
                        fmt(get("own")),
                        fmt(get("own_nohooks")),
                        fmt(get("incumbent")),
                        fmt(get("native")),
                        fmt(c),
                        fmt(ch),
                        fmt_ratio(ratio(get("mongocrypt"), get("incumbent"))),
                        fmt_ratio(ratio(get("mongocrypt"), get("native"))),
                        fmt_ratio(ratio(get("own"), get("own_nohooks"))),
                        fmt_pct(ratio(get("own"), ch)),
                    ]
                )
        lines += table(
            [
                "case",
                "op",
                "mongocrypt drop-in",
                "mongocrypt own API",
                "own API, no hooks",
                "incumbent",
                "incumbent, native lib",
                "C loop",
                "C loop, hooks",
                "drop-in ÷ incumbent",
                "drop-in ÷ native lib",
                "hooks ÷ no hooks (own API)",
                "own API ÷ C loop with hooks",
            ],
            rows,
            "llrrrrrrrrrrr",
        )
        lines.append("")

    ad = m.get("autodecrypt")
    if ad:
        lines += [
            "## Automatic decryption of find results (docs/s)",
            "",
            f"`find()` of all {DOCS:,} documents, each with N explicitly encrypted fields (Random, "
            "20 B strings), through `MongoClient(auto_encryption_opts=AutoEncryptionOpts(..., "
            "bypass_auto_encryption=True))`; the plain find reads the same documents without "
            "decryption (the limit: SecantusDB and pymongo's decoding).",
            "",
        ]
        rows = []
        for fields in FIELDS:
            ns = f"bench.docs{fields}"
            get = lambda v, ns=ns: ad.get(v, {}).get(ns)  # noqa: E731
            rows.append(
                [
                    f"{fields} encrypted fields",
                    fmt(get("mongocrypt")),
                    fmt(get("incumbent")),
                    fmt(get("native")),
                    fmt(get("plain")),
                    fmt_ratio(ratio(get("mongocrypt"), get("incumbent"))),
                    fmt_ratio(ratio(get("mongocrypt"), get("native"))),
                    fmt_pct(ratio(get("mongocrypt"), get("plain"))),
                ]
            )
        lines += table(
            [
                "documents",
                "mongocrypt drop-in",
                "incumbent",
                "incumbent, native lib",
                "plain find",
                "mongocrypt ÷ incumbent",
                "mongocrypt ÷ native lib",
                "mongocrypt ÷ plain find",
            ],
            rows,
        )
        lines.append("")

    dk = m.get("datakeys")
    if dk:
        lines += [
            f"## Data keys (keys/s, {s['datakey_count']:,} local keys)",
            "",
            '`create_data_key("local")` one key after the other into an empty key vault '
            "collection, then one `rewrap_many_data_key({})` of all of them to a second local "
            "master key (libmongocrypt's work plus the bulk update on SecantusDB).",
            "",
        ]
        rows = []
        for op, label in (("create", "create"), ("rewrap", "rewrap")):
            get = lambda v, op=op: dk.get(v, {}).get(op)  # noqa: E731
            rows.append(
                [
                    label,
                    fmt(get("mongocrypt")),
                    fmt(get("own")),
                    fmt(get("incumbent")),
                    fmt_ratio(ratio(get("mongocrypt"), get("incumbent"))),
                    fmt_ratio(ratio(get("own"), get("incumbent"))),
                ]
            )
        lines += table(
            [
                "operation",
                "mongocrypt drop-in",
                "mongocrypt own API",
                "incumbent",
                "drop-in ÷ incumbent",
                "own API ÷ incumbent",
            ],
            rows,
        )
        lines.append("")

    th = m.get("threads")
    if th:
        lines += [
            "## Thread scaling (ops/s)",
            "",
            "Explicit encryption by 1 thread and by 2 threads sharing one `ClientEncryption` "
            "(total ops/s of both), with mongocrypt's crypto hooks and without them "
            "(`MONGOCRYPT_CRYPTO_HOOKS=0`).",
            "",
        ]
        rows = []
        for case in THREAD_CASES:
            for key, label in THREAD_VARIANTS:
                one = th.get(key, {}).get(case, {}).get("1")
                two = th.get(key, {}).get(case, {}).get("2")
                if one is not None:
                    rows.append(
                        [CASE_LABELS[case], label, fmt(one), fmt(two), fmt_ratio(ratio(two, one))]
                    )
        lines += table(["case", "implementation", "1 thread", "2 threads", "2 ÷ 1"], rows, "llrrr")
        lines.append("")

    mem = results.get("memory")
    if mem:
        rss = mem["results"]["rss"]
        points = sorted(int(k) for k in rss)
        lines += [
            "## Memory",
            "",
            "RSS of one process doing explicit operations through mongocrypt's own API "
            "(Deterministic 20 B string, encrypt and decrypt alternating, each call one "
            f"operation; {mem['results']['ops_s']:,.0f} ops/s), after a garbage collection.",
            "",
        ]
        rows = []
        first = rss[str(points[1])] if len(points) > 1 else None
        for point in points:
            value = rss[str(point)]
            growth = (
                "–" if first is None or point <= points[1] else fmt_pct((value - first) / first)
            )
            rows.append(
                [
                    "after warm-up" if point == 0 else f"after {point:,} ops",
                    f"{value / 1024 / 1024:.1f} MiB",
                    growth,
                ]
            )
        lines += table([" ", "RSS", f"growth since {points[1]:,} ops"], rows)
        lines.append("")

    lines += render_profile(results.get("profile") or {})

    lines += ["## Machine and versions", ""]
    mach = results["machine"]
    v = results["versions"]
    rows = [
        ["date", results["date"]],
        ["machine", f"{mach['cpu']}, {mach['cores']} cores, {mach['memory']}"],
        ["OS", mach["os"]],
        ["C compiler", mach["compiler"]],
        ["python", v["dev"]["python"]],
        ["pymongo", f"{v['dev']['pymongo']} (both venvs: {v['incumbent']['pymongo']})"],
        ["cffi", f"{v['dev']['cffi']} (mongocrypt), {v['incumbent']['cffi']} (incumbent)"],
        [
            "mongocrypt",
            f"{v['dev'].get('mongocrypt')} at {results['git']}, libmongocrypt "
            f"{v['dev']['libmongocrypt']} (vendored, native crypto)",
        ],
        [
            "incumbent",
            f"pymongocrypt {v['incumbent']['pymongocrypt']} with its bundled libmongocrypt "
            f"{v['incumbent']['libmongocrypt']} (native crypto: "
            f"{'yes' if v['incumbent']['native_crypto'] else 'no'})",
        ],
        [
            "incumbent, native lib",
            f"pymongocrypt {v['native']['pymongocrypt']} on bench/build/libmongocrypt.so "
            f"(libmongocrypt {v['native']['libmongocrypt']})",
        ],
        ["C loop", f"libmongocrypt {v.get('c_loop', '–')}"],
        ["server", f"SecantusDB {v['secantus']} on 127.0.0.1 (same machine)"],
    ]
    lines += table(["", ""], rows, "ll")
    lines.append("")

    worst = results["worst_spread"]
    lines += [
        "## Method",
        "",
        f"- {s['reps']} repetitions; each repetition runs every benchmark group once and, inside a "
        "group, each variant in a fresh process, the order rotating from one repetition to the "
        "next so that drift spreads over all variants. Figures are medians over repetitions.",
        f"- Explicit: per case, {s['explicit_warmup']} s of warm-up then ops/s over "
        f"{s['explicit_seconds']} s of wall time (`time.perf_counter`); the C loop the same "
        f"({s['c_warmup']} s / {s['c_seconds']} s, `CLOCK_MONOTONIC`). mongocrypt's own API "
        "reuses one `EncryptOpts`; pymongo's API takes its options per call.",
        f"- Auto-decrypt: whole-collection finds repeated for at least {s['find_seconds']} s "
        "after a warm-up find.",
        f"- Threads: {s['thread_seconds']} s per thread count. Data keys: "
        f"{s['datakey_count']:,} keys, each repetition in a fresh collection.",
        f"- Largest spread over repetitions, (max − min) / median: {fmt_pct(worst['spread'])} "
        f"({worst['what']}). Raw values: bench/build/results.json.",
        "- The server (SecantusDB, a Python process) shares the 2 cores with the client, so "
        "figures that read from it (auto-decrypt, plain find, data keys) include its time.",
        f"- 1-minute load average {results['load']['before']:.2f} before the run and "
        f"{results['load']['after']:.2f} after it ({mach['cores']} cores); the whole run took "
        f"{results['elapsed_s']:.0f} s.",
        "",
    ]
    return "\n".join(lines)


def render_profile(hot: dict[str, Any]) -> list[str]:
    if not hot:
        return []
    lines = [
        "## Where mongocrypt's time goes (py-spy)",
        "",
    ]
    if "error" in hot:
        return [*lines, f"Profiling failed: {hot['error']}", ""]
    analyses = hot["analyses"]
    lines += [
        "The benchmark workers again, sampled from outside by `py-spy record --native` (no "
        "instrumentation; bench/hotspots.py prints the same, longer). A sample inside a "
        "libmongocrypt function called through cffi counts as libmongocrypt; any other is "
        "charged to the innermost Python function that is not the standard library's (with the "
        "C helpers it calls: cffi allocation, bson's C encoder), and so to its package. "
        "Auto-decrypt includes the time spent waiting for the server. Raw stacks: "
        "bench/build/stacks/.",
        "",
    ]
    names = {
        "libmongocrypt": "libmongocrypt (native)",
        "mongocrypt": "mongocrypt (Python)",
        "pymongo": "pymongo",
        "bson": "bson",
        "benchmark": "benchmark loop",
        "other": "other",
    }
    rows = [
        [a["title"], *(f"{100 * a['categories'][k]:.1f}%" for k in names), f"{a['samples']:,}"]
        for a in analyses.values()
    ]
    lines += table(["path", *names.values(), "samples"], rows)
    lines.append("")
    for analysis in analyses.values():
        top = [(f"libmongocrypt `{n}`", x) for n, x in analysis["native"][:4]]
        top += [(f"`{n}`", x) for n, x in analysis["python"][:10]]
        top.sort(key=lambda item: -item[1])
        lines += [f"**{analysis['title']}**: the largest shares", ""]
        lines += table(
            ["function (and what it calls)", "share"], [[n, f"{100 * x:.1f}%"] for n, x in top[:12]]
        )
        lines.append("")
    return lines


def evaluate_targets(m: dict[str, Any], mem: Optional[dict[str, Any]]) -> list[dict[str, str]]:
    targets: list[dict[str, str]] = []

    def add(target: str, figure: str, met: Optional[bool]) -> None:
        verdict = "not measured" if met is None else ("met" if met else "**missed**")
        targets.append({"target": target, "figure": figure, "verdict": verdict})

    ex = m.get("explicit", {})
    c_loop = m.get("c_loop", {}).get("c", {})
    for against, key, goal in (
        ("the incumbent as shipped", "incumbent", 4.0),
        ("the incumbent on a native-crypto libmongocrypt", "native", 2.0),
    ):
        ratios = [
            (ratio(ex["mongocrypt"][case][op], ex[key][case][op]), case, op)
            for case in CASE_LABELS
            for op in ("encrypt", "decrypt")
            if case in ex.get("mongocrypt", {}) and case in ex.get(key, {})
        ]
        if not ratios:
            add(f"drop-in explicit ≥ {goal:g}× {against}", "–", None)
            continue
        det = {op: r for r, case, op in ratios if case == "det_short"}
        add(
            f"drop-in explicit encrypt and decrypt ≥ {goal:g}× {against}: Deterministic, "
            "20 B string (the issue's reference case)",
            f"encrypt {fmt_ratio(det.get('encrypt'))}, decrypt {fmt_ratio(det.get('decrypt'))}",
            bool(det) and all((r or 0) >= goal for r in det.values()),
        )
        below = [(r, case, op) for r, case, op in ratios if (r or 0) < goal]
        worst = min(ratios, key=lambda r: r[0] or 0)
        add(
            f"… and in every explicit case ({len(ratios)} figures)",
            f"{len(ratios) - len(below)} of {len(ratios)} at or above; lowest "
            f"{fmt_ratio(worst[0])} ({CASE_LABELS[worst[1]]}, {worst[2]})",
            not below,
        )
    own = ex.get("own", {}).get("det_short")
    if own and c_loop:
        enc, dec = (
            ratio(own["encrypt"], c_loop["encrypt"]),
            ratio(own["decrypt"], c_loop["decrypt"]),
        )
        add(
            "own API explicit encrypt and decrypt ≥ 50% of the C loop (Det 20 B)",
            f"encrypt {fmt_pct(enc)}, decrypt {fmt_pct(dec)}",
            (enc or 0) >= 0.5 and (dec or 0) >= 0.5,
        )
    else:
        add("own API explicit ≥ 50% of the C loop", "–", None)
    ad = m.get("autodecrypt", {})
    if ad.get("mongocrypt"):
        inc = [
            ratio(ad["mongocrypt"][f"bench.docs{n}"], ad["incumbent"][f"bench.docs{n}"])
            for n in FIELDS
        ]
        plain = [
            ratio(ad["mongocrypt"][f"bench.docs{n}"], ad["plain"][f"bench.docs{n}"]) for n in FIELDS
        ]
        native = [
            ratio(ad["mongocrypt"][f"bench.docs{n}"], ad["native"][f"bench.docs{n}"])
            for n in FIELDS
        ]
        add(
            "auto-decrypt find ≥ 4× the incumbent's docs/s",
            ", ".join(f"{n} fields {fmt_ratio(r)}" for n, r in zip(FIELDS, inc)),
            all((r or 0) >= 4 for r in inc),
        )
        add(
            "auto-decrypt find ≥ 1.3× the incumbent on the native library (issue 16)",
            ", ".join(f"{n} fields {fmt_ratio(r)}" for n, r in zip(FIELDS, native)),
            all((r or 0) >= 1.3 for r in native),
        )
        add(
            "auto-decrypt find ≥ 70% of the plain find (issue 16; issue 8 asked 50%)",
            ", ".join(f"{n} fields {fmt_pct(r)}" for n, r in zip(FIELDS, plain)),
            all((r or 0) >= 0.7 for r in plain),
        )
    else:
        add("auto-decrypt find ≥ 4× the incumbent; ≥ 70% of plain find", "–", None)
    hooks = {
        (case, op): ratio(ex["own"][case][op], ex["own_nohooks"][case][op])
        for case in ("range_int", "det_short")
        for op in ("encrypt", "decrypt")
        if case in ex.get("own", {}) and case in ex.get("own_nohooks", {})
    }
    if hooks:
        for case, op, goal in (("range_int", "encrypt", 3.0), ("det_short", "decrypt", 1.3)):
            add(
                f"crypto hooks ≥ {goal:g}× the same build with `MONGOCRYPT_CRYPTO_HOOKS=0`: "
                f"{CASE_LABELS[case]}, {op} (own API)",
                fmt_ratio(hooks.get((case, op))),
                (hooks.get((case, op)) or 0) >= goal,
            )
    else:
        add("crypto hooks ≥ 3× no hooks (Range encrypt), ≥ 1.3× (20 B decrypt)", "–", None)
    th = m.get("threads", {})
    for case, goal in (("range_int", 1.8), ("det_4k", 1.8), ("det_short", 1.0)):
        scaling = {
            k: ratio(th[k][case]["2"], th[k][case]["1"])
            for k in ("mongocrypt", "own")
            if case in th.get(k, {})
        }
        add(
            f"2 threads ≥ {goal:g}× one thread sharing one ClientEncryption: {CASE_LABELS[case]}",
            ", ".join(
                f"{'drop-in' if k == 'mongocrypt' else 'own API'} {fmt_ratio(r)}"
                for k, r in scaling.items()
            )
            or "–",
            all((r or 0) >= goal for r in scaling.values()) if scaling else None,
        )
    if mem:
        rss = mem["results"]["rss"]
        points = sorted(int(k) for k in rss if k != "0")
        low, high = rss[str(points[0])], rss[str(points[-1])]
        growth = (high - low) / low
        add(
            f"memory: RSS growth < 5% from {points[0]:,} to {points[-1]:,} explicit operations",
            f"{100 * growth:+.1f}% ({low / 2**20:.1f} → {high / 2**20:.1f} MiB)",
            growth < 0.05,
        )
    else:
        add("memory: RSS growth < 5%", "–", None)
    return targets


# -- main --------------------------------------------------------------------------------------

GROUPS = ("explicit", "c", "autodecrypt", "threads", "datakeys", "memory")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a ~2 minute run for iterating")
    parser.add_argument("--output", type=Path, help="the report (default: docs/benchmarks.md)")
    parser.add_argument("--reps", type=int, help="repetitions (default 5, --quick 3)")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(GROUPS)}")
    parser.add_argument("--uri", help="use this server instead of starting SecantusDB")
    parser.add_argument(
        "--refresh-incumbent", action="store_true", help="upgrade the incumbent venv's pymongocrypt"
    )
    parser.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        help="add py-spy profiles of mongocrypt's hot paths (default: on, off with --quick/--only)",
    )
    args = parser.parse_args()
    settings = Settings(args.quick, args.reps)
    groups = set(GROUPS if not args.only else args.only.split(","))
    unknown = groups - set(GROUPS)
    if unknown:
        parser.error(f"unknown groups: {', '.join(sorted(unknown))}")
    output = args.output or (
        BUILD / "benchmarks-quick.md"
        if args.quick or args.only
        else ROOT / "docs" / "benchmarks.md"
    )
    started = time.perf_counter()
    profile = args.profile if args.profile is not None else not (args.quick or args.only)
    load_before = os.getloadavg()[0]

    dev = dev_python()
    dev_versions = distribution_versions(dev, "pymongo", "SecantusDB", "mongocrypt")
    incumbent_python = ensure_incumbent(dev_versions["pymongo"] or "", args.refresh_incumbent)
    shared_lib, c_loop = build_native()

    variants = {
        "mongocrypt": Variant("mongocrypt", "mongocrypt (drop-in)", dev, {"BENCH_API": "pymongo"}),
        "own": Variant("own", "mongocrypt (own API)", dev, {"BENCH_API": "own"}),
        "incumbent": Variant("incumbent", "incumbent", incumbent_python, {"BENCH_API": "pymongo"}),
        "native": Variant(
            "native",
            "incumbent (native lib)",
            incumbent_python,
            {"BENCH_API": "pymongo", "PYMONGOCRYPT_LIB": str(shared_lib)},
        ),
        "plain": Variant("plain", "plain find", dev, {"BENCH_API": "pymongo"}),
        # The same build with libmongocrypt's own crypto instead of our hooks (issue 16).
        "mongocrypt_nohooks": Variant(
            "mongocrypt_nohooks",
            "mongocrypt (drop-in), no hooks",
            dev,
            {"BENCH_API": "pymongo", "MONGOCRYPT_CRYPTO_HOOKS": "0"},
        ),
        "own_nohooks": Variant(
            "own_nohooks",
            "mongocrypt (own API), no hooks",
            dev,
            {"BENCH_API": "own", "MONGOCRYPT_CRYPTO_HOOKS": "0"},
        ),
    }

    raw: dict[str, dict[str, list[Any]]] = {}
    versions: dict[str, Any] = {"secantus": dev_versions["SecantusDB"]}

    def record(group: str, variant: Variant, output: Any) -> None:
        raw.setdefault(group, {}).setdefault(variant.key, []).append(output["results"])

    with tempfile.TemporaryDirectory(prefix="mongocrypt-bench-") as tmp:
        peer = None
        if args.uri:
            uri = args.uri
        else:
            log("starting SecantusDB")
            uri, peer = start_secantus(Path(tmp))
        try:
            base_env = {
                "BENCH_URI": uri,
                "BENCH_MASTER_KEY": os.urandom(96).hex(),
                "BENCH_KEY_VAULT": KEY_VAULT,
            }
            log(f"setting up the key vault and {DOCS:,} documents with {FIELDS} encrypted fields")
            setup = worker(
                variants["mongocrypt"],
                "setup_data.py",
                [
                    "--docs",
                    str(DOCS),
                    "--fields",
                    ",".join(map(str, FIELDS)),
                    "--database",
                    "bench",
                ],
                base_env,
            )
            base_env["BENCH_KEY_ID"] = setup["key_id"]
            # What each interpreter runs, checked before anything is measured.
            for key in ("mongocrypt", "incumbent", "native"):
                versions[key] = worker(variants[key], "versions.py", [], base_env)["versions"]
            libmongocrypt = versions["mongocrypt"]["libmongocrypt"]
            for key in ("mongocrypt", "incumbent", "native"):
                check_variant(variants[key], versions[key], libmongocrypt)

            plan: list[tuple[str, list[str], Callable[[Variant, int], tuple[str, list[str]]]]] = []
            if "explicit" in groups:
                plan.append(
                    (
                        "explicit",
                        ["mongocrypt", "incumbent", "own", "native", "own_nohooks"],
                        lambda v, rep: (
                            "explicit.py",
                            [
                                "--seconds",
                                str(settings.explicit_seconds),
                                "--warmup",
                                str(settings.explicit_warmup),
                            ],
                        ),
                    )
                )
            if "autodecrypt" in groups:
                plan.append(
                    (
                        "autodecrypt",
                        ["mongocrypt", "incumbent", "plain", "native"],
                        lambda v, rep: (
                            "autodecrypt.py",
                            [
                                "--collections",
                                ",".join(setup["collections"]),
                                "--seconds",
                                str(settings.find_seconds),
                                *(["--plain"] if v.key == "plain" else []),
                            ],
                        ),
                    )
                )
            if "threads" in groups:
                plan.append(
                    (
                        "threads",
                        ["mongocrypt", "mongocrypt_nohooks", "own", "own_nohooks", "incumbent"],
                        lambda v, rep: (
                            "threads.py",
                            [
                                "--cases",
                                ",".join(THREAD_CASES),
                                "--seconds",
                                str(settings.thread_seconds),
                                "--warmup",
                                str(settings.explicit_warmup),
                            ],
                        ),
                    )
                )
            if "datakeys" in groups:
                plan.append(
                    (
                        "datakeys",
                        ["mongocrypt", "incumbent", "own"],
                        lambda v, rep: (
                            "datakeys.py",
                            [
                                "--count",
                                str(settings.datakey_count),
                                "--namespace",
                                f"bench_keys.{v.key}_{rep}",
                            ],
                        ),
                    )
                )

            for rep in range(settings.reps):
                for group, keys, make in plan:
                    for key in rotate(keys, rep):
                        variant = variants[key]
                        t0 = time.perf_counter()
                        script, script_args = make(variant, rep)
                        out = worker(variant, script, script_args, base_env)
                        check_variant(variant, out["versions"], libmongocrypt)
                        record(group, variant, out)
                        log(
                            f"[{rep + 1}/{settings.reps}] {group:<11} {variant.label:<24} "
                            f"{time.perf_counter() - t0:5.1f} s"
                        )
                    if group == "explicit" and "c" in groups:
                        t0 = time.perf_counter()
                        run_c_loop(c_loop, settings, raw, versions)
                        elapsed = time.perf_counter() - t0
                        log(
                            f"[{rep + 1}/{settings.reps}] {'c loop':<11} {'C':<24} {elapsed:5.1f} s"
                        )
            if "c" in groups and "explicit" not in groups:
                for _rep in range(settings.reps):
                    run_c_loop(c_loop, settings, raw, versions)

            memory = None
            if "memory" in groups:
                t0 = time.perf_counter()
                memory = worker(
                    variants["own"],
                    "memory.py",
                    ["--checkpoints", ",".join(map(str, settings.memory_checkpoints))],
                    base_env,
                )
                log(f"[memory] {time.perf_counter() - t0:5.1f} s")

            hot: dict[str, Any] = {}
            if profile:
                t0 = time.perf_counter()
                try:
                    hotspots = load_module("_bench_hotspots", BENCH / "hotspots.py")
                    stacks = BUILD / "stacks"
                    stacks.mkdir(parents=True, exist_ok=True)
                    hot = {
                        "analyses": hotspots.collect(
                            ensure_py_spy(hotspots, incumbent_python),
                            dev,
                            WORKERS,
                            base_env,
                            setup["collections"],
                            settings.profile_seconds,
                            stacks,
                        )
                    }
                except (OSError, RuntimeError, subprocess.SubprocessError, SystemExit) as exc:
                    hot = {
                        "error": str(exc).strip().splitlines()[-1]
                        if str(exc).strip()
                        else repr(exc)
                    }
                    log(f"profiling failed: {hot['error']}")
                log(f"[profile] {time.perf_counter() - t0:5.1f} s")
        finally:
            if peer is not None:
                peer.stop()

    medians: dict[str, Any] = {}
    spreads: list[tuple[float, str]] = []

    def reduce(group: str, key: str, path: list[str], values: list[float]) -> float:
        s = summary(values)
        spreads.append((s["spread"], f"{group} {key} {' '.join(path)}"))
        return s["median"]  # type: ignore[no-any-return]

    for group, by_variant in raw.items():
        for key, outputs in by_variant.items():
            if group == "explicit":
                medians.setdefault(group, {})[key] = {
                    case: {
                        op: reduce(group, key, [case, op], [o[case][op] for o in outputs])
                        for op in ("encrypt", "decrypt")
                    }
                    for case in outputs[0]
                }
            elif group == "c_loop":
                medians.setdefault(group, {})[key] = {
                    op: reduce(group, key, [op], [o[f"{op}_ops_s"] for o in outputs])
                    for op in ("encrypt", "decrypt")
                }
            elif group == "autodecrypt":
                medians.setdefault(group, {})[key] = {
                    ns: reduce(group, key, [ns], [o[ns]["docs_s"] for o in outputs])
                    for ns in outputs[0]
                }
            elif group == "threads":
                medians.setdefault(group, {})[key] = {
                    case: {
                        n: reduce(group, key, [case, f"{n} threads"], [o[case][n] for o in outputs])
                        for n in ("1", "2")
                    }
                    for case in outputs[0]
                }
            elif group == "datakeys":
                medians.setdefault(group, {})[key] = {
                    op: reduce(group, key, [op], [o[op] for o in outputs])
                    for op in ("create", "rewrap")
                }
    worst = max(spreads, default=(0.0, "–"))
    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "settings": settings.describe(),
        "machine": machine(),
        "git": git_revision(),
        "versions": {
            "dev": versions["mongocrypt"],
            "incumbent": versions["incumbent"],
            "native": versions["native"],
            "c_loop": versions.get("c_loop", "–"),
            "secantus": versions["secantus"],
        },
        "medians": medians,
        "memory": memory,
        "profile": hot,
        "worst_spread": {"spread": worst[0], "what": worst[1]},
        "raw": raw,
        "elapsed_s": time.perf_counter() - started,
        "load": {"before": load_before, "after": os.getloadavg()[0]},
    }
    results["targets"] = evaluate_targets(medians, memory)
    chart = output.with_suffix(".svg")
    results["chart"] = chart.name
    report = render(results)
    BUILD.mkdir(exist_ok=True)
    (BUILD / "results.json").write_text(json.dumps(results, indent=1))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report)
    load_module("_bench_chart", BENCH / "chart.py").write_chart(
        medians, chart, f"mongocrypt benchmarks: headline ratios ({results['date']})"
    )
    print(report)
    log(f"wrote {output} in {results['elapsed_s']:.0f} s")


if __name__ == "__main__":
    main()
