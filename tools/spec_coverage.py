#!/usr/bin/env python3
"""Generate docs/spec-coverage.md from the tests' requirement markers (standard library only).

Three inputs, none of them the table itself:

- the checklist's IDs, levels, sections and prose-test titles
  (``tests/data/requirements-checklist.md``);
- the markers in the test files: ``@pytest.mark.requirement("CSE-API-01", ...)`` on a test
  function (or a module's ``pytestmark``), found by parsing the files: no test runs, nothing is
  imported;
- the reasons for what has no test, ``tests/data/requirements-na.md``: one ``- ID: reason`` line
  per requirement (``- prose N: reason`` for a prose test that is not run), each reason naming
  what is missing here.

Prose tests are found by name: ``test_prose_<N>_<what>``.

Usage: ``python tools/spec_coverage.py`` rewrites the table; ``--check`` writes nothing and exits 1
when the committed table is stale, a marker names an unknown ID, an ID has neither a test nor a
reason, or an ID has both (``make lint``).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKLIST = Path("tests/data/requirements-checklist.md")
REASONS = Path("tests/data/requirements-na.md")
TABLE = Path("docs/spec-coverage.md")
TESTS = Path("tests")

_ID_LINE = re.compile(r"^- (CSE-[A-Z]+-\d+) \[([^\]]+)\]$")
_PROSE_LINE = re.compile(r"^- prose (\d+): (.+)$")
_REASON_LINE = re.compile(r"^- (CSE-[A-Z]+-\d+|prose \d+): (.+)$")
_PROSE_NAME = re.compile(r"^test_prose_(\d+)_")


@dataclass
class Checklist:
    """The requirement IDs in checklist order, grouped by section."""

    levels: dict[str, str] = field(default_factory=dict)
    sections: list[tuple[str, list[str]]] = field(default_factory=list)
    prose: dict[int, str] = field(default_factory=dict)


@dataclass
class Coverage:
    """What the inputs say, and what is wrong with them."""

    checklist: Checklist
    tests: dict[str, list[str]]
    reasons: dict[str, str]
    prose_tests: dict[int, list[str]]
    problems: list[str]


def read_checklist(root: Path) -> Checklist:
    checklist = Checklist()
    for line in (root / CHECKLIST).read_text().splitlines():
        if line.startswith("## ") and not line.startswith("## Prose"):
            checklist.sections.append((line[3:], []))
        elif match := _ID_LINE.match(line):
            checklist.levels[match[1]] = match[2]
            checklist.sections[-1][1].append(match[1])
        elif match := _PROSE_LINE.match(line):
            checklist.prose[int(match[1])] = match[2]
    return checklist


def read_reasons(root: Path) -> dict[str, str]:
    reasons = {}
    for line in (root / REASONS).read_text().splitlines():
        if match := _REASON_LINE.match(line):
            reasons[match[1]] = match[2]
    return reasons


def _is_requirement_mark(node: ast.expr) -> bool:
    """``pytest.mark.requirement(...)``."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "requirement"
        and isinstance(node.func.value, ast.Attribute)
        and node.func.value.attr == "mark"
    )


def _mark_ids(node: ast.expr, where: str, problems: list[str]) -> list[str]:
    assert isinstance(node, ast.Call)
    ids = []
    for arg in node.args:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            ids.append(arg.value)
        else:
            problems.append(f"{where}: requirement marker arguments must be string literals")
    return ids


def _module_marks(tree: ast.Module) -> Iterator[ast.expr]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            values = node.value.elts if isinstance(node.value, ast.List) else [node.value]
            yield from (value for value in values if _is_requirement_mark(value))


def scan_tests(
    root: Path, problems: list[str]
) -> tuple[dict[str, list[str]], dict[int, list[str]]]:
    """Requirement ID -> test names marked with it; prose number -> test names."""
    by_id: dict[str, list[str]] = {}
    prose: dict[int, list[str]] = {}
    for path in sorted((root / TESTS).rglob("test_*.py")):
        relative = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text(), filename=relative)
        module_ids = [
            rid for mark in _module_marks(tree) for rid in _mark_ids(mark, relative, problems)
        ]
        for rid in module_ids:
            by_id.setdefault(rid, []).append(relative)
        for node in tree.body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if not node.name.startswith("test_"):
                continue
            name = f"{relative}::{node.name}"
            for decorator in node.decorator_list:
                if _is_requirement_mark(decorator):
                    for rid in _mark_ids(decorator, name, problems):
                        by_id.setdefault(rid, []).append(name)
            if match := _PROSE_NAME.match(node.name):
                prose.setdefault(int(match[1]), []).append(name)
    return by_id, prose


def collect(root: Path = ROOT) -> Coverage:
    problems: list[str] = []
    checklist = read_checklist(root)
    reasons = read_reasons(root)
    tests, prose_tests = scan_tests(root, problems)
    for rid, names in sorted(tests.items()):
        if rid not in checklist.levels:
            problems.append(f"unknown requirement ID {rid!r} in {', '.join(names)}")
    for rid in checklist.levels:
        if rid not in tests and rid not in reasons:
            problems.append(f"{rid} has neither a test nor a reason in {REASONS}")
        elif rid in tests and rid in reasons:
            problems.append(f"{rid} has a test, so its reason in {REASONS} is stale")
    for key in reasons:
        if key.startswith("CSE-") and key not in checklist.levels:
            problems.append(f"unknown requirement ID {key!r} in {REASONS}")
        if key.startswith("prose "):
            number = int(key.split()[1])
            if number not in checklist.prose:
                problems.append(f"unknown prose test {number} in {REASONS}")
    for number in checklist.prose:
        if number not in prose_tests and f"prose {number}" not in reasons:
            problems.append(f"prose {number} has neither a test_prose_{number}_ test nor a reason")
    return Coverage(checklist, tests, reasons, prose_tests, problems)


def _cell(items: Iterable[str]) -> str:
    return ", ".join(items)


def render(coverage: Coverage) -> str:
    checklist = coverage.checklist
    checked = sum(1 for rid in checklist.levels if rid in coverage.tests)
    total = len(checklist.levels)
    lines = [
        "# Specification coverage",
        "",
        f"Checked by a test: {checked} of {total}",
        "",
        f"Not checked here, with the reason: {total - checked} of {total}",
        "",
        "Generated by `tools/spec_coverage.py` (`make docs`; `make lint` fails when it is",
        "stale) from the `@pytest.mark.requirement(...)` markers on the tests, the checklist's",
        f"IDs (`{CHECKLIST}`) and the reasons for what is not checked (`{REASONS}`). The",
        "IDs are those of the checklist that paraphrases the Client Side Encryption",
        "specification; a test marked with an ID fails if that requirement is broken.",
    ]
    for title, ids in checklist.sections:
        lines += ["", f"## {title}", "", "| ID | level | checked by |", "|---|---|---|"]
        for rid in ids:
            where = (
                _cell(coverage.tests[rid])
                if rid in coverage.tests
                else f"n/a: {coverage.reasons.get(rid, '(no reason)')}"
            )
            lines.append(f"| {rid} | {checklist.levels[rid]} | {where} |")
    lines += [
        "",
        "## Prose tests (the specification's tests/README.md)",
        "",
        "`pytest -k test_prose_<N>_` selects prose test N.",
        "",
        "| # | prose test | tests | not run here |",
        "|---|---|---|---|",
    ]
    for number, title in checklist.prose.items():
        names = _cell(coverage.prose_tests.get(number, []))
        reason = coverage.reasons.get(f"prose {number}", "")
        lines.append(f"| {number} | {title} | {names} | {reason} |")
    return "\n".join(lines) + "\n"


def check(root: Path = ROOT) -> list[str]:
    """Every problem with the inputs, and whether the committed table is stale."""
    coverage = collect(root)
    problems = list(coverage.problems)
    if (root / TABLE).read_text() != render(coverage):
        problems.append(f"{TABLE} is stale: run tools/spec_coverage.py")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report problems, write nothing")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
    else:
        coverage = collect()
        problems = coverage.problems
        if not problems:
            (ROOT / TABLE).write_text(render(coverage))
    for problem in problems:
        print(f"spec coverage: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
