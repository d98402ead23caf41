"""Every Python example in docs/ runs as written, and so do the shell sessions of docs/cli.md.

Examples read their peers from environment variables, as a reader's program would: this test sets
``MONGODB_URI`` to the session's server and, for the examples that name them, the AWS (moto) and
KMIP (PyKMIP) emulators' settings and an HTTP proxy. A ``<!-- requires: NAME -->`` comment right
before a block names something this machine may lack; without it the example is skipped, saying
why.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pymongo
import pytest

from helpers.peers.http_proxy import ConnectProxy

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"(?:<!-- requires: ([\w-]+) -->\n)?^```(python|sh)\n(.*?)^```", re.S | re.M)
#: Pages whose ``sh`` blocks are sessions of the ``mongocrypt`` command, run in order.
SHELL_PAGES = ("cli.md",)
#: A real server given by the environment (the session's SecantusDB otherwise).
REAL_SERVER = bool(os.environ.get("MONGODB_URI"))


@dataclass(frozen=True)
class Example:
    page: str
    line: int
    language: str
    code: str
    requires: Optional[str]

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}" if self.language == "python" else f"{self.page}:shell"


def collect() -> list[Example]:
    """Each Python block; each shell page's blocks as one session, in order."""
    examples = []
    for path in sorted(DOCS.rglob("*.md")):
        page = path.relative_to(DOCS).as_posix()
        text = path.read_text()
        shell: list[tuple[int, str]] = []
        for match in BLOCK.finditer(text):
            requires, language, code = match.groups()
            line = text.count("\n", 0, match.start(2)) + 1
            if language == "python":
                examples.append(Example(page, line, language, code, requires))
            elif page in SHELL_PAGES:
                shell.append((line, code))
        if shell:
            session = "\n".join(f"# {page}:{line}\n{code}" for line, code in shell)
            examples.append(Example(page, shell[0][0], "sh", session, None))
    return examples


EXAMPLES = collect()


def embedded_analyzer() -> bool:
    try:
        analysis = importlib.import_module("mongocrypt.analysis")
    except ImportError:
        return False
    return callable(getattr(analysis, "mark_command", None))


def skip_reason(requires: Optional[str]) -> Optional[str]:
    if requires is None:
        return None
    if requires == "embedded-analyzer":
        return None if embedded_analyzer() else "the embedded query analyzer is not installed yet"
    if requires == "queryable-encryption-server":
        if REAL_SERVER:
            return None
        return "needs MongoDB 7.0+ through MONGODB_URI (SecantusDB has no server-side QE)"
    raise AssertionError(f"unknown requirement {requires!r}")


def test_every_page_has_examples() -> None:
    pages = {e.page for e in EXAMPLES}
    for page in ("index.md", "quickstart.md", "pymongo.md", "automatic-encryption.md"):
        assert page in pages
    for page in ("explicit-encryption.md", "kms-providers.md", "tls.md", "events-logging.md"):
        assert page in pages
    assert any(e.language == "sh" for e in EXAMPLES)


@pytest.fixture
def clean_vault(mongodb_uri: str) -> Iterator[None]:
    """Examples share the conventional key vault: each starts and ends with an empty one."""
    with pymongo.MongoClient[Any](mongodb_uri) as client:
        client.drop_database("encryption")
        yield
        client.drop_database("encryption")


@pytest.fixture
def example_env(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, mongodb_uri: str
) -> Iterator[Any]:
    """Sets what the example's code reads; yields a function setting up the peers it names."""
    for name in list(os.environ):
        if name.startswith(("MONGOCRYPT_", "AWS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MONGODB_URI", mongodb_uri)
    proxies: list[ConnectProxy] = []

    def prepare(code: str) -> None:
        if "AWS_" in code:
            moto = request.getfixturevalue("moto_kms")
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", "moto")
            monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "moto")
            monkeypatch.setenv("AWS_KMS_KEY_ARN", moto.key_arn)
            monkeypatch.setenv("AWS_KMS_ENDPOINT", moto.endpoint)
        if "KMIP_" in code:
            monkeypatch.setenv("KMIP_ENDPOINT", request.getfixturevalue("kmip_endpoint"))
            monkeypatch.setenv("KMIP_CLIENT_CERT", str(request.getfixturevalue("tls").client_pem))
        if "KMS_TLS_CA_FILE" in code:
            monkeypatch.setenv("KMS_TLS_CA_FILE", str(request.getfixturevalue("tls").ca))
        if "KMS_PROXY" in code:
            proxy = ConnectProxy()
            proxies.append(proxy)
            monkeypatch.setenv("KMS_PROXY", f"127.0.0.1:{proxy.port}")

    yield prepare
    for proxy in proxies:
        assert proxy.tunnels, "the example's KMS traffic did not go through the proxy"
        proxy.close()


@pytest.mark.requirement("CSE-DOC-01", "CSE-DOC-02")
@pytest.mark.usefixtures("clean_vault")
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_example_runs(example: Example, example_env: Any, tmp_path: Path) -> None:
    reason = skip_reason(example.requires)
    if reason:
        pytest.skip(reason)
    example_env(example.code)
    if example.language == "python":
        code = compile(example.code, str(DOCS / example.page) + f":{example.line}", "exec")
        exec(code, {"__name__": "docs_example"})
        return
    run_shell(example, tmp_path)


def run_shell(example: Example, tmp_path: Path) -> None:
    """The page's shell session (traced), with ``mongocrypt`` the command of this venv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    command = bin_dir / "mongocrypt"
    command.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m mongocrypt.cli "$@"\n')
    command.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    script = "set -ex\n" + example.code
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=work,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{example.id} failed:\n{done.stdout}\n{done.stderr}"
    assert "mongocrypt: error" not in done.stderr


#: Dotted names in the pages and the README that are not Python objects: file and directory names.
NOT_PYTHON = {"mongocrypt.h", "mongocrypt.libs", "mongocrypt.toml", "pymongo.md"}
DOTTED = re.compile(r"(?<![\w./-])((?:mongocrypt|pymongocrypt|pymongo|bson)(?:\.[A-Za-z_]\w*)+)")
IMPORT = re.compile(
    r"^\s*from\s+([\w.]+)\s+import\s+(\([^)]*\)|[\w, ]+)|^\s*import\s+([\w.]+)", re.M
)
TEXTS = [*sorted(DOCS.rglob("*.md")), DOCS.parent / "README.md"]


def resolves(dotted: str) -> bool:
    """Whether ``dotted`` names a module, or an attribute reached from the longest module prefix."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(target, name):
                return False
            target = getattr(target, name)
        return True
    return False


def logger_names() -> set[str]:
    """The loggers mongocrypt creates once its modules are imported."""
    importlib.import_module("mongocrypt.engine")
    return set(logging.Logger.manager.loggerDict)


@pytest.mark.parametrize("path", TEXTS, ids=[p.name for p in TEXTS])
def test_every_dotted_name_resolves(path: Path) -> None:
    """Prose included: each ``mongocrypt.X``/``pymongo.X``/``bson.X`` names a real module,
    object or mongocrypt logger."""
    loggers = logger_names()
    names = {m.group(1) for m in DOTTED.finditer(path.read_text())} - NOT_PYTHON
    wrong = sorted(n for n in names if not resolves(n) and n not in loggers)
    assert not wrong, f"{path.name} names what does not exist: {wrong}"


@pytest.mark.parametrize("path", TEXTS, ids=[p.name for p in TEXTS])
def test_every_import_works(path: Path) -> None:
    """Each ``from X import a, b`` and ``import X`` line, in prose or code, imports."""
    for match in IMPORT.finditer(path.read_text()):
        module, names, plain = match.groups()
        target = importlib.import_module(module or plain)
        for name in re.findall(r"\w+", names or ""):
            assert hasattr(target, name), f"{path.name}: from {module} import {name} fails"
