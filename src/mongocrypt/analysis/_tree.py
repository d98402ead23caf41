"""The encryption tree: which paths of a collection's documents are encrypted, and how.

CSFLE JSON schemas and QE encryptedFields both become a tree of :class:`Node` objects. A node is
an encrypted leaf (it carries the metadata), an *unknown* node (an aggregation stage made its
contents unknowable, so any use of it is refused), or an object whose children are reached by
name, by ``patternProperties`` regex or through ``additionalProperties``. Aggregation stages edit
trees by copying (nodes are never mutated after construction).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from bson.binary import Binary

from mongocrypt.analysis import _codes as codes
from mongocrypt.analysis._errors import refuse

__all__ = [
    "DETERMINISTIC",
    "PLAIN",
    "RANDOM",
    "Fle1Meta",
    "Kind",
    "Meta",
    "Node",
    "QeField",
    "Resolution",
    "TextIndex",
    "dotted",
    "node_at",
    "resolve",
    "set_path",
]

DETERMINISTIC = 1
RANDOM = 2
#: QE placeholder algorithms (``a``) by index kind.
UNINDEXED, EQUALITY, RANGE, TEXT = 1, 2, 3, 4


@dataclass(frozen=True)
class Fle1Meta:
    """A CSFLE encrypted field: its algorithm, key (UUID, or a JSON pointer to a keyAltName) and
    the BSON types the schema allows (None: any)."""

    algorithm: int
    key_id: Optional[Binary]
    key_pointer: Optional[str]
    bson_types: Optional[tuple[str, ...]]

    @property
    def deterministic(self) -> bool:
        return self.algorithm == DETERMINISTIC


@dataclass(frozen=True)
class TextIndex:
    """The text-search parameters of a QE string field (lengths in code points)."""

    case_fold: bool
    diacritic_fold: bool
    substring: Optional[
        tuple[int, int, int]
    ]  # (strMaxLength, strMaxQueryLength, strMinQueryLength)
    prefix: Optional[tuple[int, int]]  # (strMaxQueryLength, strMinQueryLength)
    suffix: Optional[tuple[int, int]]


@dataclass(frozen=True, eq=False)
class QeField:
    """A Queryable Encryption field from encryptedFields, with every default already applied
    (compared by identity: one per field of one configuration)."""

    path: str
    key_id: Binary
    bson_type: str
    algorithm: int  # UNINDEXED, EQUALITY, RANGE or TEXT
    contention: int
    sparsity: int = 0
    trim_factor: Optional[int] = None  # as configured
    effective_trim_factor: int = 0  # configured, or the default for the domain
    precision: Optional[int] = None
    min: Any = None  # as configured (None: not configured)
    max: Any = None
    index_min: Any = None  # configured, or the type's extreme
    index_max: Any = None
    text: Optional[TextIndex] = field(default=None)


Meta = Union[Fle1Meta, QeField]


class Node:
    """One object level (or leaf) of an encryption tree.

    :param meta: the metadata when this node is an encrypted field.
    :param unknown: the node's contents cannot be known (refuse any use).
    :param children: named sub-nodes (``properties``).
    :param patterns: ``(regex, node)`` pairs (``patternProperties``).
    :param additional: the node for names matching no child and no pattern.
    :param overrides: names whose child replaces any pattern or additional match (set by edits).
    """

    __slots__ = (
        "_unknown",
        "additional",
        "children",
        "encrypted_below",
        "meta",
        "overrides",
        "patterns",
    )

    def __init__(
        self,
        meta: Optional[Meta] = None,
        *,
        unknown: bool = False,
        children: Optional[Mapping[str, Node]] = None,
        patterns: Sequence[tuple[re.Pattern[str], Node]] = (),
        additional: Optional[Node] = None,
        overrides: Iterable[str] = (),
    ) -> None:
        self.meta = meta
        self.children: dict[str, Node] = dict(children or {})
        self.patterns = tuple(patterns)
        self.additional = additional
        self.overrides = frozenset(overrides)
        #: True when this node is encrypted or unknown or something below it is.
        self.encrypted_below: bool = (
            unknown
            or meta is not None
            or any(c.encrypted_below for c in self.children.values())
            or any(n.encrypted_below for _, n in self.patterns)
            or (additional is not None and additional.encrypted_below)
        )
        self._unknown = unknown

    @property
    def unknown(self) -> bool:
        return self._unknown

    def matching(self, name: str) -> list[Node]:
        """The sub-nodes that apply to the field ``name`` (several when patterns overlap)."""
        if name in self.overrides:
            return [self.children[name]]
        found = [self.children[name]] if name in self.children else []
        matched = [node for regex, node in self.patterns if regex.search(name)]
        if not found and not matched and self.additional is not None:
            return [self.additional]
        return found + matched

    def signature(self) -> Any:
        """A comparable summary of the encryption below this node (plain branches ignored)."""
        if self.meta is not None:
            return ("encrypt", self.meta)
        if self.unknown:
            return ("unknown",)
        return (
            tuple(
                sorted((k, c.signature()) for k, c in self.children.items() if c.encrypted_below)
            ),
            tuple((r.pattern, n.signature()) for r, n in self.patterns if n.encrypted_below),
            self.additional.signature()
            if self.additional is not None and self.additional.encrypted_below
            else None,
        )


#: A node with nothing encrypted below it.
PLAIN = Node()
UNKNOWN_NODE = Node(unknown=True)


class Kind(enum.Enum):
    """What a path is in an encryption tree."""

    PLAIN = "plain"  # no encryption at or below the path
    ENCRYPTED = "encrypted"  # the path is an encrypted field
    PREFIX = "prefix"  # encrypted fields lie below the path
    INSIDE = "inside"  # the path goes through an encrypted field
    UNKNOWN = "unknown"  # the path reaches a node of unknown encryption


@dataclass(frozen=True)
class Resolution:
    """The answer of :func:`resolve`.

    :param kind: what the path is.
    :param meta: the field's metadata (ENCRYPTED).
    :param node: the node at the path (PREFIX, when a single schema branch applies).
    """

    kind: Kind
    meta: Optional[Meta] = None
    node: Optional[Node] = None


def dotted(parts: Sequence[str]) -> str:
    return ".".join(parts)


def resolve(root: Node, parts: Sequence[str]) -> Resolution:
    """Where ``parts`` (a path split in field names) lands in the tree below ``root``.

    :raises QueryAnalysisError: when overlapping schema branches give the path different
        encryption metadata (51142).
    """
    nodes = [root] if root.encrypted_below else []
    for name in parts:
        following: list[Node] = []
        for node in nodes:
            if node.meta is not None:
                return Resolution(Kind.INSIDE, node.meta)
            if node.unknown:
                return Resolution(Kind.UNKNOWN)
            following.extend(n for n in node.matching(name) if n.encrypted_below)
        nodes = following
        if not nodes:
            return Resolution(Kind.PLAIN)
    if not nodes:
        return Resolution(Kind.PLAIN)
    path = dotted(parts)
    if any(n.unknown for n in nodes):
        return Resolution(Kind.UNKNOWN)
    metas = {n.meta for n in nodes if n.meta is not None}
    if metas:
        if len(metas) > 1 or any(n.meta is None for n in nodes):
            refuse(
                f"Found conflicting encryption metadata for path: '{path}'",
                codes.CONFLICTING_METADATA,
            )
        return Resolution(Kind.ENCRYPTED, next(iter(metas)))
    return Resolution(Kind.PREFIX, node=nodes[0] if len(nodes) == 1 else None)


def node_at(root: Node, parts: Sequence[str]) -> Node:
    """The node describing the value at ``parts``: a copy of the encrypted leaf, the object
    node, :data:`PLAIN`, or an unknown node when several branches or an unknown node apply."""
    found = resolve(root, parts)
    if found.kind is Kind.PLAIN:
        return PLAIN
    if found.kind is Kind.ENCRYPTED:
        return Node(found.meta)
    if found.kind is Kind.PREFIX and found.node is not None:
        return found.node
    if found.kind is Kind.INSIDE:
        refuse(
            f"Invalid operation on path '{dotted(parts)}' which contains an encrypted path prefix.",
            codes.PATH_THROUGH_ENCRYPTED,
        )
    return UNKNOWN_NODE


def set_path(root: Node, parts: Sequence[str], value: Node) -> Node:
    """A copy of ``root`` where the field at ``parts`` is described by ``value`` (``PLAIN`` for
    a plain or removed field).

    :raises QueryAnalysisError: when ``parts`` goes through an encrypted field (51102).
    """
    if not parts:
        return value
    if root.meta is not None:
        refuse(
            f"Invalid operation on path '{dotted(parts)}' which contains an encrypted path prefix.",
            codes.PATH_THROUGH_ENCRYPTED,
        )
    if root.unknown:
        return root
    name, rest = parts[0], parts[1:]
    current = root.matching(name)
    if len(current) > 1:
        below: Node = UNKNOWN_NODE if any(n.encrypted_below for n in current) else PLAIN
    else:
        below = current[0] if current else PLAIN
    children = dict(root.children)
    children[name] = set_path(below, rest, value) if rest else value
    return Node(
        children=children,
        patterns=root.patterns,
        additional=root.additional,
        overrides=root.overrides | {name},
    )
