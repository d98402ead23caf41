"""Every Python example in README.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_has_examples() -> None:
    assert EXAMPLES


@pytest.mark.parametrize("code", EXAMPLES, ids=[f"example-{i}" for i in range(len(EXAMPLES))])
def test_readme_example_runs(code: str, mongodb_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Examples that talk to a server read MONGODB_URI: they get this session's server."""
    monkeypatch.setenv("MONGODB_URI", mongodb_uri)
    exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})
