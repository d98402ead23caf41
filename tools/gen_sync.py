#!/usr/bin/env python3
"""Generate the synchronous modules from their asyncio sources (standard library only).

Code that does I/O is written once, as asyncio code; this script derives the blocking version by
rewriting tokens, in the spirit of the generator pymongo uses for its own synchronous package:

- ``await`` is dropped, and so is ``async`` before ``def``, ``with`` and ``for``;
- names move to their blocking equivalents: ``AsyncX`` -> ``X``, ``x_async`` -> ``x``,
  ``asynchronous`` -> ``synchronous``, plus the table in :data:`NAMES` (``__aenter__``,
  ``aclose``, ``aiter_bytes``...); the same names are rewritten in docstrings and comments;
- ``asyncio.to_thread(f, *args)`` becomes the direct call ``f(*args)``;
- ``import asyncio`` goes when nothing else uses it.

Only the files in :data:`FILES` are generated. What genuinely differs between the two versions
(listed in :data:`HAND_WRITTEN`) stays hand-written on both sides. Generated files start with a
header naming their source; ruff's formatter leaves them alone (pyproject excludes them), since a
rewrite only ever shortens lines.

Usage: ``python tools/gen_sync.py`` rewrites the generated files; ``--check`` only reports the
stale ones and exits 1 if there are any (``make gen-check``).
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: asyncio source -> generated synchronous module, relative to the project root.
FILES = {
    "src/mongocrypt/engine/asynchronous/state_machine.py": (
        "src/mongocrypt/engine/synchronous/state_machine.py"
    ),
    "src/mongocrypt/engine/asynchronous/encrypter.py": (
        "src/mongocrypt/engine/synchronous/encrypter.py"
    ),
    "src/mongocrypt/io/asynchronous/pymongo_io.py": "src/mongocrypt/io/synchronous/pymongo_io.py",
    "src/mongocrypt/asynchronous/client_encryption.py": (
        "src/mongocrypt/synchronous/client_encryption.py"
    ),
    "src/mongocrypt/dropin/asynchronous.py": "src/mongocrypt/dropin/synchronous.py",
    "src/mongocrypt/credentials/_async_runner.py": "src/mongocrypt/credentials/_sync_runner.py",
}

#: Twins that are different by nature, so both sides are written by hand.
HAND_WRITTEN = {
    "src/mongocrypt/io/kms.py": "KmsTransport (blocking sockets, a thread pool for concurrency) "
    "and AsyncKmsTransport (asyncio streams)",
    "src/mongocrypt/credentials/_bound.py": "bounded_async cuts a whole credential exchange off "
    "at its deadline (asyncio can interrupt a read); bounded, its blocking stand-in, cannot, so "
    "the runners' shared deadline check between reads has to do",
}

#: Names whose blocking equivalent is not found by the ``Async``/``_async`` rules.
NAMES = {
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
    "__anext__": "__next__",
    "aclose": "close",
    "aiter_bytes": "iter_bytes",
    "anext": "next",
    "asynccontextmanager": "contextmanager",
    "asynchronous": "synchronous",
    "StopAsyncIteration": "StopIteration",
}

_ASYNC_PREFIX = re.compile(r"^Async(?=[A-Z])")
_ASYNC_SUFFIX = re.compile(r"(?<=[a-z0-9])_async$")
_WORD = re.compile(r"\b\w+\b")


def sync_name(name: str) -> str:
    """The blocking equivalent of one identifier (itself when it has none)."""
    if name in NAMES:
        return NAMES[name]
    return _ASYNC_SUFFIX.sub("", _ASYNC_PREFIX.sub("", name))


def _sync_prose(text: str) -> str:
    """Docstrings and comments: the same renames, word by word."""
    return _WORD.sub(lambda match: sync_name(match.group(0)), text)


def _offsets(source: str) -> list[int]:
    """The offset in ``source`` of the start of each line (1-based lines, as tokenize counts)."""
    starts = [0, 0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def _matching_paren(tokens: list[tokenize.TokenInfo], opening: int) -> tuple[int, int]:
    """Indices of the first top-level comma (or -1) and of the closing parenthesis."""
    depth, comma = 0, -1
    for index in range(opening, len(tokens)):
        text = tokens[index].string
        if text in "([{":
            depth += 1
        elif text in ")]}":
            depth -= 1
            if depth == 0:
                return comma, index
        elif text == "," and depth == 1 and comma < 0:
            comma = index
    raise SyntaxError("unbalanced parentheses after asyncio.to_thread")


def generate(source: str) -> str:
    """The synchronous version of an asyncio module's source text."""
    starts = _offsets(source)
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))

    def at(position: tuple[int, int]) -> int:
        return starts[position[0]] + position[1]

    edits: list[tuple[int, int, str]] = []  # (start, end, replacement) in source offsets
    index = 0
    while index < len(tokens):
        token = tokens[index]
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if token.type == tokenize.NAME and token.string in ("await", "async"):
            # The keyword and the blanks after it: "await x" -> "x", "async def" -> "def".
            end = at(following.start) if following is not None else at(token.end)
            edits.append((at(token.start), end, ""))
        elif (
            token.type == tokenize.NAME
            and token.string == "asyncio"
            and index + 3 < len(tokens)
            and tokens[index + 1].string == "."
            and tokens[index + 2].string == "to_thread"
            and tokens[index + 3].string == "("
        ):
            comma, closing = _matching_paren(tokens, index + 3)
            if comma < 0:  # to_thread(f) -> f()
                function_end = at(tokens[closing].start)
                rest = "()"
            else:  # to_thread(f, a, b) -> f(a, b)
                function_end = at(tokens[comma].start)
                rest = "(" + source[at(tokens[comma + 1].start) : at(tokens[closing].start)] + ")"
            first = index + 4
            while tokens[first].type in (tokenize.NL, tokenize.COMMENT):  # a call over lines
                first += 1
            function = source[at(tokens[first].start) : function_end]
            edits.append((at(token.start), at(tokens[closing].end), generate_expr(function) + rest))
            index = closing
        elif token.type == tokenize.NAME:
            renamed = sync_name(token.string)
            if renamed != token.string:
                edits.append((at(token.start), at(token.end), renamed))
        elif token.type in (tokenize.STRING, tokenize.COMMENT):
            renamed = _sync_prose(token.string)
            if renamed != token.string:
                edits.append((at(token.start), at(token.end), renamed))
        index += 1

    text = source
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    if not re.search(r"\basyncio\.", text):
        text = re.sub(r"^import asyncio\n", "", text, flags=re.MULTILINE)
    return text


def generate_expr(expression: str) -> str:
    """Renames inside a small expression (the function given to ``to_thread``)."""
    return _WORD.sub(lambda match: sync_name(match.group(0)), expression)


def header(source_path: str) -> str:
    return (
        # The path on a line of its own keeps the header within the line length (ruff's E501).
        f"# Generated by tools/gen_sync.py from\n# {source_path}: do not edit this file.\n"
        "# Change the asyncio source and run `make gen` to regenerate it.\n"
    )


def expected(source_path: str) -> str:
    return header(source_path) + generate((ROOT / source_path).read_text())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale files, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for source_path, target_path in FILES.items():
        text = expected(source_path)
        target = ROOT / target_path
        if target.exists() and target.read_text() == text:
            continue
        stale.append(target_path)
        if not args.check:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            print(f"generated {target_path} from {source_path}")
    if args.check and stale:
        for target_path in stale:
            print(f"stale: {target_path} (run `make gen`)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
