"""Where mongocrypt spends its time on the benchmarked hot paths.

usage: .venv/bin/python bench/hotspots.py [--what explicit,own,autodecrypt] [--seconds S]
                                          [--tool py-spy|pyinstrument] [--rows N] [--keep DIR]

Starts SecantusDB and sets up the same data as bench/run.py, then profiles the dev venv's
mongocrypt on: explicit Deterministic encrypt and decrypt of a 20-byte string through pymongo's
ClientEncryption (``explicit``, the drop-in path) and through mongocrypt's own (``own``), and
auto-decrypting finds of the 10- and 100-field collections (``autodecrypt``).

- ``--tool py-spy`` (default): samples the benchmark worker from outside (``py-spy record
  --native``, no instrumentation overhead) and splits each path's time into libmongocrypt's native
  work (per C function called through cffi) and the rest, attributed to the innermost Python
  function (its own code plus the C helpers it calls: cffi allocation, bson encode/decode). The
  auto-decrypt profiles include idle time (waiting for the server), as the benchmark's wall time
  does.
- ``--tool pyinstrument``: profiles in this process; inclusive and self shares per function
  (Python frames are slowed by the profiler, so native shares read low).

Needs py-spy / pyinstrument in the dev venv (``.venv/bin/pip install py-spy pyinstrument``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any, Callable, Optional

BENCH = Path(__file__).resolve().parent


def load_runner() -> Any:
    spec = importlib.util.spec_from_file_location("_bench_run", BENCH / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- py-spy ------------------------------------------------------------------------------------

_FRAME = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")
#: Whose code a Python frame is, by the path py-spy prints (stdlib frames have no owner: their
#: time goes to the caller, e.g. enum's to mongocrypt's State(), contextlib's to pymongo).
_OWNERS = (
    ("mongocrypt/", "mongocrypt"),
    ("pymongocrypt/", "mongocrypt"),
    ("pymongo/", "pymongo"),
    ("bson/", "bson"),
    ("benchlib.py", "benchmark"),
    ("explicit.py", "benchmark"),
    ("autodecrypt.py", "benchmark"),
)
CATEGORIES = ("libmongocrypt", "mongocrypt", "pymongo", "bson", "benchmark", "other")

#: What bench/run.py and this script profile: (key, title, worker kind, frame the path runs under).
PATHS = (
    (
        "encrypt-dropin",
        "explicit encrypt, pymongo ClientEncryption (drop-in)",
        "explicit",
        "Explicit.encrypter.<locals>.<lambda>",
    ),
    ("decrypt-dropin", "explicit decrypt, drop-in", "explicit", "Explicit.decrypt"),
    ("encrypt-own", "explicit encrypt, own API", "own", "Explicit.encrypter.<locals>.<lambda>"),
    ("decrypt-own", "explicit decrypt, own API", "own", "Explicit.decrypt"),
    ("autodecrypt-10", "auto-decrypt find, 10 fields", "autodecrypt:10", "timed_finds"),
    ("autodecrypt-100", "auto-decrypt find, 100 fields", "autodecrypt:100", "timed_finds"),
)


def _frame(raw: str) -> tuple[str, str]:
    match = _FRAME.match(raw)
    if not match:
        return raw, ""
    name, where = match.groups()
    return ("?" if name.startswith("0x") else name), where


def _owner(where: str) -> Optional[str]:
    if not where.endswith(".py"):  # a native frame: charged to the Python function calling it
        return None
    for prefix, owner in _OWNERS:
        if where.startswith(prefix) or where.endswith("/" + prefix):
            return owner
    return None


def analyse_folded(path: Path, within: str) -> dict[str, Any]:
    """Where the samples under the frame whose name starts with ``within`` went: shares of
    libmongocrypt's native functions (called through cffi) and, for the rest, of the innermost
    Python function that is not the standard library's (its code plus the C helpers it calls)."""
    native: Counter[str] = Counter()
    python: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if within not in stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        parsed = [_frame(f) for f in frames[next(i for i, f in enumerate(frames) if within in f) :]]
        total += n
        call = next((name for name, _ in parsed if name.startswith("_cffi_f_mongocrypt")), None)
        if call is not None:
            native[call.replace("_cffi_f_", "")] += n
            categories["libmongocrypt"] += n
            continue
        owned = [(name, where) for name, where in parsed if _owner(where)]
        if owned:
            name, where = owned[-1]
            python[f"{name} ({where})"] += n
            categories[_owner(where) or "other"] += n
        else:
            python["(outside any package)"] += n
            categories["other"] += n
    share = lambda c: c / total if total else 0.0  # noqa: E731
    return {
        "samples": total,
        "categories": {k: share(categories[k]) for k in CATEGORIES},
        "native": [(name, share(c)) for name, c in native.most_common()],
        "python": [(name, share(c)) for name, c in python.most_common()],
    }


def print_analysis(title: str, analysis: dict[str, Any], rows: int) -> None:
    pct = lambda x: f"{100 * x:5.1f}%"  # noqa: E731
    print(f"\n=== {title}: {analysis['samples']:,} samples ===")
    print("  ".join(f"{k} {pct(v)}" for k, v in analysis["categories"].items()))
    print("\nlibmongocrypt, native (called through cffi):")
    for name, x in analysis["native"][:12]:
        print(f"  {pct(x)}  {name}")
    print("\nthe rest, by innermost non-stdlib Python function (its code and what it calls):")
    for name, x in analysis["python"][:rows]:
        print(f"  {pct(x)}  {name}")


def find_py_spy(*extra: Path) -> Optional[Path]:
    for candidate in (Path(sys.executable).parent / "py-spy", *extra):
        if candidate.exists():
            return candidate
    found = shutil.which("py-spy")
    return Path(found) if found else None


def spy(
    py_spy: Path,
    python: Path,
    workers: Path,
    env: dict[str, str],
    script: str,
    args: list[str],
    out: Path,
    idle: bool,
) -> Path:
    cmd = [
        str(py_spy),
        "record",
        "--native",
        "--rate",
        "500",
        "--format",
        "raw",
        "--output",
        str(out),
        *(["--idle"] if idle else []),
        "--",
        str(python),
        str(workers / script),
        *args,
    ]
    result = subprocess.run(
        cmd, env={**os.environ, **env}, cwd=workers, capture_output=True, text=True
    )
    if result.returncode != 0 or not out.exists():
        raise RuntimeError(
            f"py-spy failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return out


def collect(
    py_spy: Path,
    python: Path,
    workers: Path,
    env: dict[str, str],
    collections: list[str],
    seconds: float,
    out_dir: Path,
    only: Optional[set[str]] = None,
) -> dict[str, dict[str, Any]]:
    """Profile each path of :data:`PATHS` (``only``: worker kinds explicit, own, autodecrypt);
    returns key -> analysis (with its title)."""
    runs: dict[str, Path] = {}
    results: dict[str, dict[str, Any]] = {}
    for key, title, kind, within in PATHS:
        base = kind.split(":")[0]
        if only is not None and base not in only:
            continue
        if kind not in runs:
            if base in ("explicit", "own"):
                api = {"BENCH_API": "own" if base == "own" else "pymongo"}
                runs[kind] = spy(
                    py_spy,
                    python,
                    workers,
                    {**env, **api},
                    "explicit.py",
                    ["--cases", "det_short", "--seconds", str(seconds), "--warmup", "0.2"],
                    out_dir / f"{base}.folded",
                    idle=False,
                )
            else:
                fields = kind.split(":")[1]
                namespace = next(c for c in collections if c.endswith(f"docs{fields}"))
                # Idle time included: waiting for the server is part of the find's wall time.
                runs[kind] = spy(
                    py_spy,
                    python,
                    workers,
                    env,
                    "autodecrypt.py",
                    ["--collections", namespace, "--seconds", str(seconds)],
                    out_dir / f"autodecrypt-{fields}.folded",
                    idle=True,
                )
        results[key] = {"title": title, **analyse_folded(runs[kind], within)}
    return results


# -- pyinstrument ------------------------------------------------------------------------------


def pyinstrument_profile(title: str, op: Callable[[], Any], seconds: float, rows: int) -> None:
    from pyinstrument import Profiler
    from pyinstrument.renderers import ConsoleRenderer

    warm_until = time.perf_counter() + 0.3  # warm up (key cache, connections)
    op()
    while time.perf_counter() < warm_until:
        op()
    profiler = Profiler(interval=0.0001)
    calls = 0
    profiler.start()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        op()
        calls += 1
    session = profiler.stop()
    print(f"\n=== {title}: {calls:,} calls in {session.duration:.2f} s under the profiler ===")
    root = ConsoleRenderer(show_all=True).preprocess(session.root_frame())
    total: dict[str, float] = {}
    own: dict[str, float] = {}

    def walk(frame: Any, stack: frozenset[str]) -> None:
        if frame.is_synthetic:
            return
        name = f"{frame.function}  ({frame.file_path_short}:{frame.line_no})"
        if "<built-in>" in (frame.file_path_short or ""):
            name = f"{frame.function}  (C)"
        if name not in stack:
            total[name] = total.get(name, 0.0) + frame.time
        own[name] = own.get(name, 0.0) + frame.total_self_time
        for child in frame.children:
            walk(child, stack | {name})

    walk(root, frozenset())
    whole = root.time or 1.0
    width = max(len(n) for n in total)
    print(f"\n{'function':<{width}}  total%   self%")
    for name in sorted(total, key=lambda n: -total[n])[:rows]:
        print(f"{name:<{width}}  {100 * total[name] / whole:5.1f}   {100 * own[name] / whole:5.1f}")


def run_pyinstrument(runner: Any, setup: Any, args: Any) -> None:
    try:
        import pyinstrument  # noqa: F401
    except ImportError:
        sys.exit("pyinstrument is missing: .venv/bin/pip install pyinstrument")
    sys.path.insert(0, str(runner.WORKERS))
    import benchlib

    client = benchlib.mongo_client()
    _algorithm, value, _extra = benchlib.CASES["det_short"]
    for what in args.what.split(","):
        if what in ("explicit", "own"):
            explicit = benchlib.Explicit(client, "own" if what == "own" else "pymongo")
            encrypt = explicit.encrypter("det_short")
            ciphertext = encrypt(value)
            label = "own API" if what == "own" else "pymongo ClientEncryption (drop-in)"
            pyinstrument_profile(
                f"explicit encrypt, {label}", partial(encrypt, value), args.seconds, args.rows
            )
            pyinstrument_profile(
                f"explicit decrypt, {label}",
                partial(explicit.decrypt, ciphertext),
                args.seconds,
                args.rows,
            )
            explicit.close()
        elif what == "autodecrypt":
            from pymongo.encryption_options import AutoEncryptionOpts

            opts = AutoEncryptionOpts(
                benchlib.kms_providers(), benchlib.key_vault(), bypass_auto_encryption=True
            )
            reader = benchlib.mongo_client(auto_encryption_opts=opts)
            for namespace in setup["collections"]:
                database, name = namespace.split(".", 1)
                collection = reader[database][name]
                pyinstrument_profile(
                    f"auto-decrypting find() of {namespace}",
                    lambda c=collection: list(c.find()),
                    args.seconds,
                    args.rows,
                )
            reader.close()
        else:
            sys.exit(f"unknown --what {what!r}")
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--what", default="explicit,own,autodecrypt")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--tool", choices=("py-spy", "pyinstrument"), default="py-spy")
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument("--keep", type=Path, help="keep py-spy's raw (folded) stacks here")
    args = parser.parse_args()

    runner = load_runner()
    with tempfile.TemporaryDirectory(prefix="mongocrypt-profile-") as tmp:
        uri, peer = runner.start_secantus(Path(tmp))
        try:
            env = {
                "BENCH_URI": uri,
                "BENCH_MASTER_KEY": os.urandom(96).hex(),
                "BENCH_KEY_VAULT": runner.KEY_VAULT,
            }
            dev = runner.Variant("mongocrypt", "mongocrypt", runner.dev_python(), {})
            setup = runner.worker(
                dev, "setup_data.py", ["--docs", str(runner.DOCS), "--fields", "10,100"], env
            )
            env["BENCH_KEY_ID"] = setup["key_id"]
            if args.tool == "py-spy":
                py_spy = find_py_spy(runner.BUILD / "tools" / "bin" / "py-spy")
                if py_spy is None:
                    sys.exit("py-spy is missing: .venv/bin/pip install py-spy")
                keep: Path = args.keep or Path(tmp) / "stacks"
                keep.mkdir(parents=True, exist_ok=True)
                analyses = collect(
                    py_spy,
                    runner.dev_python(),
                    runner.WORKERS,
                    env,
                    setup["collections"],
                    args.seconds,
                    keep,
                    set(args.what.split(",")),
                )
                for analysis in analyses.values():
                    print_analysis(analysis["title"], analysis, args.rows)
            else:
                os.environ.update(env)
                run_pyinstrument(runner, setup, args)
        finally:
            peer.stop()


if __name__ == "__main__":
    main()
