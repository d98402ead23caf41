"""tools/spec_coverage.py: docs/spec-coverage.md generated from the tests' requirement markers."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
if not (ROOT / "tools" / "spec_coverage.py").exists():  # a wheel's tests run without the tree
    pytest.skip("needs the source tree's tools/spec_coverage.py", allow_module_level=True)


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("spec_coverage", ROOT / "tools/spec_coverage.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


spec_coverage = _load()

CHECKLIST = """## 1. Shape

- CSE-API-01 [MUST]
- CSE-API-02 [MAY]

## 2. More

- CSE-KV-01 [impl]

## Prose tests (the specification's tests/README.md)

- prose 1: Custom Key Material Test
- prose 2: Data Key and Double Encryption
"""
TESTS = """import pytest

pytestmark = pytest.mark.requirement("CSE-KV-01")


@pytest.mark.requirement("CSE-API-01")
@pytest.mark.parametrize("x", [1])
def test_prose_1_custom_key_material(x):
    assert x


def helper():
    pass
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A small project: three IDs, two prose tests, one test file, one reason."""
    (tmp_path / "tests/data").mkdir(parents=True)
    (tmp_path / "tests/spec").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "tests/data/requirements-checklist.md").write_text(CHECKLIST)
    (tmp_path / "tests/data/requirements-na.md").write_text(
        "- CSE-API-02: optional (MAY)\n- prose 2: a real KMS\n"
    )
    (tmp_path / "tests/spec/test_prose.py").write_text(TESTS)
    return tmp_path


def write_table(root: Path) -> str:
    text: str = spec_coverage.render(spec_coverage.collect(root))
    (root / "docs/spec-coverage.md").write_text(text)
    return text


def test_table_counts_marked_ids_and_lists_tests_and_reasons(root: Path) -> None:
    text = write_table(root)
    assert "Checked by a test: 2 of 3\n" in text
    assert (
        "| CSE-API-01 | MUST | tests/spec/test_prose.py::test_prose_1_custom_key_material |" in text
    )
    assert "| CSE-API-02 | MAY | n/a: optional (MAY) |" in text
    assert "| CSE-KV-01 | impl | tests/spec/test_prose.py |" in text  # the module's pytestmark
    assert "| 1 | Custom Key Material Test | tests/spec/test_prose.py::test_prose_1_" in text
    assert "| 2 | Data Key and Double Encryption |  | a real KMS |" in text
    assert spec_coverage.check(root) == []


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (("tests/spec/test_prose.py", '"CSE-API-01"', '"CSE-API-99"'), "unknown requirement ID"),
        (("tests/data/requirements-na.md", "- CSE-API-02: optional (MAY)\n", ""), "neither a test"),
        (("tests/data/requirements-na.md", "- prose 2", "- prose 3"), "unknown prose test 3"),
        (("tests/data/requirements-na.md", "- CSE-API-02", "- CSE-API-01"), "reason in"),
    ],
    ids=["unknown-id", "no-test-no-reason", "unknown-prose", "test-and-reason"],
)
def test_check_reports_each_problem(root: Path, edit: tuple[str, str, str], problem: str) -> None:
    write_table(root)
    path, old, new = edit
    source = (root / path).read_text()
    assert old in source
    (root / path).write_text(source.replace(old, new))
    problems = spec_coverage.check(root)
    assert any(problem in p for p in problems), problems


def test_check_reports_a_stale_table(root: Path) -> None:
    write_table(root)
    (root / "tests/data/requirements-na.md").write_text("- prose 2: a real KMS\n")
    source = (root / "tests/spec/test_prose.py").read_text()
    (root / "tests/spec/test_prose.py").write_text(
        source.replace('"CSE-API-01"', '"CSE-API-01", "CSE-API-02"')
    )
    assert spec_coverage.check(root) == [
        "docs/spec-coverage.md is stale: run tools/spec_coverage.py"
    ]


def test_marker_arguments_must_be_literals(root: Path) -> None:
    source = (root / "tests/spec/test_prose.py").read_text()
    (root / "tests/spec/test_prose.py").write_text(source.replace('"CSE-API-01"', "SOME_ID"))
    assert any("string literals" in p for p in spec_coverage.collect(root).problems)


def test_committed_table_is_current() -> None:
    """The same check as ``make lint``: the repository's own table, markers and reasons agree."""
    assert spec_coverage.check(ROOT) == []
