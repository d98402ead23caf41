"""A griffe extension for the API reference: the sources' reST inline markup, read as Markdown.

Docstrings use pymongo's reST conventions (``:class:`~a.B` ``, ``text::`` before a literal block);
mkdocstrings renders Markdown, so roles become inline code and ``::`` a plain colon.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|func|meth|attr|data|mod|exc|obj|const):`(~?)([^`]+)`")
_LITERAL_BLOCK = re.compile(r"::$", re.M)


def _role(match: re.Match[str]) -> str:
    short, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


def markdown(text: str) -> str:
    """``text`` with reST roles as code spans and ``::`` literal-block markers as ``:``."""
    return _LITERAL_BLOCK.sub(":", _ROLE.sub(_role, text))


class ReSTRoles(griffe.Extension):
    """Rewrites every docstring once it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)
