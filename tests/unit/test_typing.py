"""The public API's types stay precise: mypy --strict checks public_types_check.py, whose
``assert_type`` lines pin the return types and whose ``type: ignore`` lines must stay errors
(a misspelt algorithm or query type)."""

from __future__ import annotations

from pathlib import Path

from mypy import api

CHECKED = Path(__file__).with_name("public_types_check.py")


def test_public_types_check_under_mypy_strict() -> None:
    stdout, stderr, status = api.run(["--strict", "--no-error-summary", str(CHECKED)])
    assert status == 0, stdout + stderr
