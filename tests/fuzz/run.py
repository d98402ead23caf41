"""Run every fuzz harness (atheris, one subprocess each, ``--jobs`` at a time) and report.

Each harness runs with ``-runs=N`` over its corpus (tests/fuzz/corpus/<harness>/, read only) and a
scratch directory that receives the inputs finding new coverage. Exit status: 0 when every
harness ran its inputs without a crash, hang or out-of-memory (a harness whose target is missing,
the analyzer today, is reported as skipped); 1 otherwise, with the crashing inputs kept in the
artifacts directory and the end of each failing harness' output printed.

    python tests/fuzz/run.py --total 200000            # the bounded run of tests/fuzz/test_fuzz.py
    python tests/fuzz/run.py --total 1000000 --update-corpus   # the long run

``--update-corpus`` merges the scratch inputs into tests/fuzz/corpus/<harness>/ with libFuzzer's
``-merge=1``, which keeps only inputs that add coverage (so the corpus stays small).
``--json FILE`` writes the per-harness figures for tests.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
#: Harness name -> share of the total inputs (the KMS harness is the slowest per input).
HARNESSES = {
    "explicit_decrypt": 4,
    "auto_decrypt": 4,
    "encrypt_options": 4,
    "facade": 3,
    "kms_reply": 2,
    "analyzer": 3,
}
MISSING = 3  # a harness' exit status when its target does not exist (yet)
DONE = re.compile(r"Done (\d+) runs in (\d+) second")
NEW = re.compile(r"^#\d+\s+(NEW|REDUCE)\s", re.MULTILINE)
COVERAGE = re.compile(r"cov: (\d+) ft: (\d+)")


@dataclass
class Result:
    harness: str
    status: str = "ok"  # ok, skipped, crash
    runs_requested: int = 0
    inputs: int = 0
    seconds: float = 0.0
    new_paths: int = 0
    coverage: int = 0
    features: int = 0
    known_bug_inputs: dict[str, int] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)
    detail: str = ""


def shares(total: int, names: list[str]) -> dict[str, int]:
    weights = sum(HARNESSES[n] for n in names)
    return {n: max(1, total * HARNESSES[n] // weights) for n in names}


def run_one(
    name: str, runs: int, artifacts: Path, scratch: Path, timeout: float, extra: list[str]
) -> Result:
    result = Result(name, runs_requested=runs)
    new_inputs = scratch / name
    new_inputs.mkdir(parents=True, exist_ok=True)
    seeds = CORPUS / name
    seeds.mkdir(parents=True, exist_ok=True)
    stats = scratch / f"{name}.known.json"
    command = [
        sys.executable,
        str(HERE / f"fuzz_{name}.py"),
        f"-runs={runs}",
        "-timeout=20",  # one input taking 20 s is a hang
        "-rss_limit_mb=3072",
        "-max_len=4096",
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/{name}-",
        *extra,
        str(new_inputs),
        str(seeds),
    ]
    env = {**os.environ, "FUZZ_STATS_FILE": str(stats), "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.monotonic()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env, errors="replace"
        )
        output, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as expired:
        parts = (expired.stdout or "", expired.stderr or "")  # str (text=True), typed bytes
        output = "".join(p if isinstance(p, str) else p.decode(errors="replace") for p in parts)
        code = -1
        output += f"\n(the harness did not finish within {timeout:.0f} s)"
    result.seconds = round(time.monotonic() - started, 1)
    if stats.exists():
        result.known_bug_inputs = json.loads(stats.read_text())
    finished = DONE.search(output)
    result.inputs = int(finished.group(1)) if finished else 0
    result.new_paths = len(NEW.findall(output))
    coverage = COVERAGE.findall(output)
    if coverage:
        result.coverage, result.features = (int(v) for v in coverage[-1])
    result.artifacts = sorted(str(p) for p in artifacts.glob(f"{name}-*"))
    if code == MISSING and "SKIPPED:" in output:
        result.status = "skipped"
        result.detail = output.split("SKIPPED:", 1)[1].strip().splitlines()[0]
    elif code != 0 or not finished or result.artifacts:
        result.status = "crash"
        result.detail = output[-4000:]
    return result


def merge(name: str, scratch: Path) -> int:
    """Add to the corpus the scratch inputs that find coverage it lacks; returns how many."""
    new_inputs = scratch / name
    if not any(new_inputs.iterdir()):
        return 0
    harness = HERE / f"fuzz_{name}.py"
    # libFuzzer's merge re-runs argv[0] in subprocesses: it must be an executable.
    wrapper = scratch / f"{name}.sh"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{harness}" "$@"\n')
    wrapper.chmod(0o755)
    before = len(list((CORPUS / name).iterdir()))
    done = subprocess.run(
        [
            sys.executable,
            str(harness),
            "-merge=1",
            "-max_len=4096",
            str(CORPUS / name),
            str(new_inputs),
        ],
        capture_output=True,
        text=True,
        errors="replace",
        env={**os.environ, "FUZZ_ARGV0": str(wrapper)},
        check=False,
    )
    if done.returncode != 0:
        print(f"{name}: merge failed:\n{done.stderr[-2000:]}", file=sys.stderr)
    return len(list((CORPUS / name).iterdir())) - before


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=200_000, help="inputs over all harnesses")
    parser.add_argument("--jobs", type=int, default=2, help="harnesses run at once")
    parser.add_argument("--harness", action="append", choices=sorted(HARNESSES))
    parser.add_argument("--artifacts", type=Path, help="where crashing inputs go (default: tmp)")
    parser.add_argument("--update-corpus", action="store_true")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per harness")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--libfuzzer-arg", action="append", default=[], dest="extra")
    args = parser.parse_args(argv)

    names = args.harness or list(HARNESSES)
    runs = shares(args.total, names)
    scratch = Path(tempfile.mkdtemp(prefix="mongocrypt-fuzz-"))
    artifacts = args.artifacts or scratch / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = [
            pool.submit(run_one, n, runs[n], artifacts.resolve(), scratch, args.timeout, args.extra)
            for n in names
        ]
        results = [f.result() for f in futures]
    merged: dict[str, int] = {}
    if args.update_corpus:
        for result in results:
            if result.status == "ok":
                merged[result.harness] = merge(result.harness, scratch)
    elapsed = time.monotonic() - started

    print(f"{'harness':18} {'status':8} {'inputs':>9} {'s':>6} {'new':>5} {'cov':>5}  known bugs")
    for r in results:
        known = ", ".join(f"{k}={v}" for k, v in r.known_bug_inputs.items() if v) or "-"
        print(
            f"{r.harness:18} {r.status:8} {r.inputs:9d} {r.seconds:6.1f} {r.new_paths:5d}"
            f" {r.coverage:5d}  {known}"
        )
    if merged:
        print("added to the corpus: " + ", ".join(f"{k} {v}" for k, v in merged.items()))
    total = sum(r.inputs for r in results)
    crashes = [r for r in results if r.status == "crash"]
    print(f"total: {total} inputs in {elapsed:.0f} s, {len(crashes)} harness(es) crashed")
    for r in results:
        if r.status == "skipped":
            print(f"{r.harness}: skipped: {r.detail}")
    for r in crashes:
        print(f"\n=== {r.harness} crashed; inputs: {r.artifacts or 'none written'}\n{r.detail}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    if not crashes:
        shutil.rmtree(scratch, ignore_errors=True)
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
