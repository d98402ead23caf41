"""Projections: find's and ``$project``'s, with the encryption tree of their output documents
(an exclusion removes fields, an inclusion keeps them, a computed field is plain or of unknown
encryption), and the sort keys that may not be encrypted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from mongocrypt.analysis import _codes as codes
from mongocrypt.analysis._errors import refuse
from mongocrypt.analysis._expr import CONST, PLAIN, ExprAnalyzer, ExprResult
from mongocrypt.analysis._markings import Marker
from mongocrypt.analysis._tree import PLAIN as PLAIN_NODE
from mongocrypt.analysis._tree import UNKNOWN_NODE, Kind, Node, node_at, resolve, set_path
from mongocrypt.analysis._types import is_operator

__all__ = ["check_sort", "node_for", "project", "project_computed", "removed"]

_ARRAY_PROJECTIONS = ("$slice", "$elemMatch")


def removed(tree: Node, parts: list[str]) -> Node:
    """``tree`` once the field at ``parts`` is removed. A removed encrypted field becomes
    unknown rather than plain, so a later comparison with it is refused instead of sending the
    compared value in the clear."""
    node = PLAIN_NODE if resolve(tree, parts).kind is Kind.PLAIN else UNKNOWN_NODE
    return set_path(tree, parts, node)


def node_for(result: ExprResult) -> Node:
    """The node of a computed field: plain, or unknown when it may hold ciphertext."""
    return PLAIN_NODE if result.kind in (CONST, PLAIN) else UNKNOWN_NODE


def check_sort(spec: Any, tree: Node, what: str = "sort") -> None:
    """Sort keys (and find's ``min``/``max`` index bounds, whose values are plaintext) may not be
    encrypted, above encrypted fields or of unknown encryption."""
    if not isinstance(spec, Mapping):
        refuse(f"{what} must be an object", codes.BAD_VALUE)
    for key in spec:
        found = resolve(tree, str(key).split("."))
        if found.kind is not Kind.PLAIN:
            if what == "sort":
                refuse(
                    f"Sorting on key '{key}' is not allowed due to encryption", codes.SORT_ENCRYPTED
                )
            refuse(f"find's {what} may not name the encrypted field '{key}'", codes.SORT_ENCRYPTED)


def _is_flag(value: Any) -> Optional[bool]:
    """Whether a projection value includes (True) or excludes (False) a field; None for an
    expression."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value != 0
    return None


def project(
    spec: Mapping[str, Any], tree: Node, marker: Marker, *, qe: bool, find: bool = False
) -> tuple[Any, Node]:
    """A ``$project`` stage (or a find projection): the rendered spec and the output tree.

    :param find: a find/findAndModify projection (which also has ``$slice``, ``$elemMatch``
        and positional forms).
    """
    flat: list[tuple[list[str], Any]] = []

    def flatten(level: Mapping[str, Any], prefix: list[str]) -> None:
        for key, value in level.items():
            parts = [*prefix, *str(key).split(".")]
            if isinstance(value, Mapping) and value and not is_operator(value):
                flatten(value, parts)
            else:
                flat.append((parts, value))

    flatten(spec, [])
    flags = [_is_flag(v) for p, v in flat if p != ["_id"]]
    if flags:
        exclusion = all(f is False for f in flags)
    else:
        exclusion = _is_flag(spec.get("_id", True)) is False
    if exclusion:
        for parts, _ in flat:
            tree = removed(tree, parts)
        return spec, tree
    out_tree = Node()
    if _is_flag(spec.get("_id", True)) is not False:
        out_tree = set_path(out_tree, ["_id"], node_at(tree, ["_id"]))

    def render(level: Mapping[str, Any], prefix: list[str]) -> dict[str, Any]:
        nonlocal out_tree
        rendered: dict[str, Any] = {}
        for key, value in level.items():
            parts = [*prefix, *str(key).split(".")]
            if isinstance(value, Mapping) and value and not is_operator(value):
                rendered[key] = render(value, parts)
                continue
            flag = _is_flag(value)
            rendered[key] = value
            if flag is not None:
                if flag:
                    node = _included(tree, parts, qe)
                    out_tree = set_path(out_tree, parts, node)
                continue
            if (
                find
                and isinstance(value, Mapping)
                and next(iter(value), None) in _ARRAY_PROJECTIONS
            ):
                path = parts
                if resolve(tree, path).kind is not Kind.PLAIN:
                    refuse(
                        f"Projection of '{'.'.join(path)}' with an array operator is not allowed "
                        "on encrypted data",
                        codes.INVALID_OPERATOR,
                    )
                out_tree = set_path(out_tree, path, PLAIN_NODE)
                continue
            if isinstance(value, Mapping) and next(iter(value), None) == "$meta":
                out_tree = set_path(out_tree, parts, PLAIN_NODE)
                continue
            rendered[key], result = ExprAnalyzer(tree, marker).analyze(value)
            out_tree = set_path(out_tree, parts, node_for(result))
        return rendered

    return render(spec, []), out_tree


def project_computed(spec: Mapping[str, Any], tree: Node, marker: Marker) -> tuple[Any, Node]:
    """A new root built from an expression object (``$replaceRoot: {newRoot: {...}}``)."""
    rendered: dict[str, Any] = {}
    out = Node()
    for key, value in spec.items():
        rendered[key], result = ExprAnalyzer(tree, marker).analyze(value)
        out = set_path(out, [str(key)], node_for(result))
    return rendered, out


def _included(tree: Node, parts: list[str], qe: bool) -> Node:
    node = node_at(tree, parts)
    if qe and node.encrypted_below:
        return UNKNOWN_NODE  # __safeContent__ is gone: QE fields can no longer be queried
    return node
