"""Aggregation pipelines: each stage is checked against the encryption tree of the documents that
reach it, its constants are marked, and the tree is updated for the next stage (projections drop
or rename fields, ``$group`` builds new documents, ``$lookup`` adds arrays whose encryption is
unknown). Stages not known to be safe are refused."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from mongocrypt.analysis._errors import BAD_VALUE, refuse
from mongocrypt.analysis._expr import CONST, ENCRYPTED, PLAIN, ExprAnalyzer, ExprResult
from mongocrypt.analysis._filter import FilterAnalyzer, Style
from mongocrypt.analysis._markings import Marker
from mongocrypt.analysis._tree import (
    PLAIN as PLAIN_NODE,
)
from mongocrypt.analysis._tree import (
    UNKNOWN_NODE,
    Fle1Meta,
    Kind,
    Node,
    QeField,
    node_at,
    resolve,
    set_path,
)

__all__ = ["Catalog", "PipelineAnalyzer"]

_UNSUPPORTED = "Aggregation stage {} is not allowed or supported with automatic encryption."
_PASS_THROUGH_ACCUMULATORS = ("$push", "$addToSet", "$first", "$last")
_ARRAY_PROJECTIONS = ("$slice", "$elemMatch")
_LOOKUP_ORDER = ("from", "as", "localField", "foreignField", "let", "pipeline")


@dataclass
class Catalog:
    """The encryption trees of the collections a command may touch.

    :param database: the command's database.
    :param namespace: the command's collection namespace.
    :param trees: namespace -> tree, for every schema the command carries.
    :param qe: namespaces whose schema is Queryable Encryption.
    :param multiple: schemas were given per namespace (``csfleEncryptionSchemas`` or a
        several-namespace ``encryptionInformation``), so a missing one is an error.
    """

    database: str
    namespace: str
    trees: dict[str, Node]
    qe: set[str] = field(default_factory=set)
    multiple: bool = False

    def tree(self, namespace: str) -> Node:
        """The tree of ``namespace``.

        :raises QueryAnalysisError: when the command carries no schema for it (9710000), or, for
            a single-schema command over an encrypted collection, when it is another collection
            (51204).
        """
        if namespace in self.trees:
            return self.trees[namespace]
        if self.multiple:
            refuse(f"Missing encryption schema for namespace: {namespace}", 9710000)
        if self.trees[self.namespace].encrypted_below:
            refuse(
                "Pipeline over an encrypted collection cannot reference additional collections.",
                51204,
            )
        return PLAIN_NODE


class PipelineAnalyzer:
    """Analyses the pipelines of one command.

    :param catalog: the trees of the collections involved.
    :param marker: makes (and counts) the markings.
    :param match_style: how ``$match`` filters are written back.
    :param qe: the command is on a Queryable Encryption collection (``$lookup`` is re-serialized
        in the server's field order, as mongocryptd does for QE).
    """

    def __init__(self, catalog: Catalog, marker: Marker, match_style: Style, *, qe: bool) -> None:
        self.catalog = catalog
        self.marker = marker
        self.match_style = match_style
        self.qe = qe

    def analyze(self, pipeline: Any, tree: Node) -> tuple[list[Any], Node]:
        """The pipeline with its constants marked, and the tree of its output documents."""
        if not isinstance(pipeline, list):
            refuse("'pipeline' must be an array", BAD_VALUE)
        out = []
        for index, (name, spec) in enumerate(_desugared(pipeline)):
            handler = self._handlers().get(name)
            if handler is None:
                refuse(_UNSUPPORTED.format(name), 31011)
            if name in ("$documents", "$collStats") and index != 0:
                refuse(f"{name} is only valid as the first stage in a pipeline", 40602)
            rendered, tree = handler(spec, tree)
            out.append({name: rendered})
        return out, tree

    def _handlers(self) -> dict[str, Callable[[Any, Node], tuple[Any, Node]]]:
        return {
            "$match": self._match,
            "$project": self._project,
            "$addFields": self._add_fields,
            "$set": self._add_fields,
            "$unset": self._unset,
            "$replaceRoot": self._replace_root,
            "$replaceWith": self._replace_with,
            "$group": self._group,
            "$bucket": self._bucket,
            "$bucketAuto": self._bucket,
            "$count": self._count,
            "$limit": _unchanged,
            "$skip": _unchanged,
            "$sample": _unchanged,
            "$sort": self._sort,
            "$unwind": self._unwind,
            "$lookup": self._lookup,
            "$graphLookup": self._graph_lookup,
            "$geoNear": self._geo_near,
            "$documents": self._documents,
            "$collStats": lambda spec, tree: (spec, PLAIN_NODE),
            "$listSearchIndexes": lambda spec, tree: (spec, PLAIN_NODE),
            "$search": self._search,
            "$searchMeta": self._search,
            "$vectorSearch": self._search,
        }

    def _filter(self, tree: Node, query: Any) -> dict[str, Any]:
        return FilterAnalyzer(tree, self.marker, self.match_style, qe=self.qe).analyze(query)

    def _expr(self, tree: Node, expr: Any) -> tuple[Any, ExprResult]:
        return ExprAnalyzer(tree, self.marker).analyze(expr)

    # -- stages -------------------------------------------------------------------------------

    def _match(self, spec: Any, tree: Node) -> tuple[Any, Node]:
        return self._filter(tree, spec), tree

    def _project(self, spec: Any, tree: Node) -> tuple[Any, Node]:
        if not isinstance(spec, Mapping) or not spec:
            refuse("$project specification must be a non-empty object", BAD_VALUE)
        return project(spec, tree, self.marker, qe=self.qe)

    def _add_fields(self, spec: Any, tree: Node) -> tuple[Any, Node]:
        if not isinstance(spec, Mapping):
            refuse("$addFields specification must be an object", BAD_VALUE)

        def add(level: Mapping[str, Any], prefix: list[str], tree: Node) -> tuple[Any, Node]:
            rendered: dict[str, Any] = {}
            for key, value in level.items():
                parts = [*prefix, *key.split(".")]
                if isinstance(value, Mapping) and value and not _is_operator(value):
                    rendered[key], tree = add(value, parts, tree)
                    continue
                rendered[key], result = self._expr(tree, value)
                tree = set_path(tree, parts, _node_for(result))
            return rendered, tree

        return add(spec, [], tree)

    def _unset(self, spec: Any, tree: Node) -> tuple[Any, Node]:
        paths = spec if isinstance(spec, list) else [spec]
        for path in paths:
            if not isinstance(path, str) or not path:
                refuse("$unset needs field path strings", BAD_VALUE)
            tree = removed(tree, path.split("."))
        return spec, tree

    def _replace_root(self, spec: Any, tree: Node) -> tuple[Any, Node]:
        if not isinstance(spec, Mapping) or set(spec) != {"newRoot"}:
            refuse("$replaceRoot needs exactly newRoot", BAD_VALUE)
        rendered, tree = self._new_root(spec["newRoot"], tree)
        return {"newRoot": rendered}, tree

    def _replace_with(self, spec: Any, tree: Node) -> tuple[Any, Node]:
        return self._new_root(spec, tree)

    def _new_root(self, expr: Any, tree: Node) -> tuple[Any, Node]:
        if expr in ("$$ROOT", "$$CURRENT"):
            return expr, tree
        if isinstance(expr, str) and expr.startswith("$") and not expr.startswith("$$"):
            found = resolve(tree, expr[1:].split("."))
            if found.kind is Kind.ENCRYPTED:
                refuse(f"$replaceRoot cannot make the encrypted field '{expr[1:]}' the root", 31159)
            return expr, node_at(tree, expr[1:].split("."))
        if isinstance(expr, Mapping) and expr and not _is_operator(expr):
            return project_computed(expr, tree, self.marker)
        rendered, result = self._expr(tree, expr)
        if result.kind not in (CONST, PLAIN):
            refuse("$replaceRoot's new root may not be computed from encrypted data", 31159)
        return rendered, PLAIN_NODE

    def _group(self, spec: Any, tree: Node) -> tuple[Any, Node]:
        if not isinstance(spec, Mapping) or "_id" not in spec:
            refuse("a group specification must include an _id", 15955)
        rendered: dict[str, Any] = {}
        children: dict[str, Node] = {}
        for key, value in spec.items():
            if key == "_id":
                rendered[key], children[key] = self._group_key(value, tree)
                continue
            if not isinstance(value, Mapping) or len(value) != 1:
                refuse(f"The field '{key}' must be an accumulator object", 40234)
            accumulator, argument = next(iter(value.items()))
            out, result = self._expr(tree, argument)
            rendered[key] = {accumulator: out}
            children[key] = self._accumulated(accumulator, result, key)
        return rendered, Node(children=children)

    def _group_key(self, value: Any, tree: Node) -> tuple[Any, Node]:
        if isinstance(value, Mapping) and value and not _is_operator(value):
            rendered: dict[str, Any] = {}
            children = {}
            for key, sub in value.items():
                rendered[key], children[key] = self._group_key(sub, tree)
            return rendered, Node(children=children)
        rendered_value, result = self._expr(tree, value)
        if result.kind in (CONST, PLAIN):
            return rendered_value, PLAIN_NODE
        meta = result.meta
        if (
            result.kind == ENCRYPTED
            and result.field_ref
            and isinstance(meta, Fle1Meta)
            and meta.deterministic
        ):
            return rendered_value, Node(meta)
        refuse(
            f"Cannot group on field '{result.path or '$$ROOT'}' which is encrypted with the "
            "random algorithm, with Queryable Encryption, or whose encryption is unknown",
            51222,
        )

    def _accumulated(self, accumulator: str, result: ExprResult, key: str) -> Node:
        if result.kind in (CONST, PLAIN):
            return PLAIN_NODE
        if accumulator not in _PASS_THROUGH_ACCUMULATORS:
            refuse(
                f"Accumulator '{accumulator}' cannot aggregate encrypted field "
                f"'{result.path or '$$ROOT'}' (output '{key}')",
                51221,
            )
        if accumulator == "$addToSet" and result.kind == ENCRYPTED:
            meta = result.meta
            if not (isinstance(meta, Fle1Meta) and meta.deterministic):
                refuse(
                    f"$addToSet is not allowed on field '{result.path}' encrypted with the "
                    "random algorithm",
                    51223,
                )
        return UNKNOWN_NODE

    def _bucket(self, spec: Any, tree: Node) -> tuple[Any, Node]:
        if not isinstance(spec, Mapping) or "groupBy" not in spec:
            refuse("$bucket and $bucketAuto need groupBy", BAD_VALUE)
        rendered = dict(spec)
        rendered["groupBy"], result = self._expr(tree, spec["groupBy"])
        if result.kind not in (CONST, PLAIN):
            refuse(f"$bucket groupBy may not reference encrypted field '{result.path}'", 51238)
        output = spec.get("output", {})
        if not isinstance(output, Mapping):
            refuse("$bucket output must be an object", BAD_VALUE)
        rendered_output = {}
        for key, value in output.items():
            if not isinstance(value, Mapping) or len(value) != 1:
                refuse(f"The field '{key}' must be an accumulator object", 40234)
            accumulator, argument = next(iter(value.items()))
            out, result = self._expr(tree, argument)
            if result.kind not in (CONST, PLAIN):
                refuse(
                    f"Accumulator '{accumulator}' cannot aggregate encrypted field '{result.path}'",
                    51221,
                )
            rendered_output[key] = {accumulator: out}
        if "output" in spec:
            rendered["output"] = rendered_output
        return rendered, PLAIN_NODE

    def _count(self, spec: Any, tree: Node) -> tuple[Any, Node]:
        return spec, PLAIN_NODE

    def _sort(self, spec: Any, tree: Node) -> tuple[Any, Node]:
        check_sort(spec, tree)
        return spec, tree

    def _unwind(self, spec: Any, tree: Node) -> tuple[Any, Node]:
        path = spec.get("path") if isinstance(spec, Mapping) else spec
        if not isinstance(path, str) or not path.startswith("$"):
            refuse("$unwind needs a field path starting with '$'", BAD_VALUE)
        found = resolve(tree, path[1:].split("."))
        if found.kind is Kind.INSIDE:
            refuse(
                f"Invalid operation on path '{path[1:]}' which contains an encrypted path prefix.",
                51102,
            )
        if found.kind is Kind.ENCRYPTED:
            meta = found.meta
            if not (isinstance(meta, Fle1Meta) and meta.deterministic):
                refuse(f"$unwind is not allowed on encrypted field '{path[1:]}'", 31153)
        if isinstance(spec, Mapping) and isinstance(spec.get("includeArrayIndex"), str):
            tree = set_path(tree, spec["includeArrayIndex"].split("."), PLAIN_NODE)
        return spec, tree

    def _namespace(self, value: Any) -> str:
        if isinstance(value, str):
            return f"{self.catalog.database}.{value}"
        if isinstance(value, Mapping) and isinstance(value.get("db"), str):
            return f"{value['db']}.{value.get('coll')}"
        refuse("$lookup 'from' must be a collection name", BAD_VALUE)

    def _lookup(self, spec: Any, tree: Node) -> tuple[Any, Node]:
        if not isinstance(spec, Mapping) or not isinstance(spec.get("as"), str):
            refuse("$lookup needs an 'as' field name", BAD_VALUE)
        # without 'from' the sub-pipeline starts with $documents
        foreign = self.catalog.tree(self._namespace(spec["from"])) if "from" in spec else PLAIN_NODE
        if spec.get("let") and (tree.encrypted_below or foreign.encrypted_below):
            refuse(
                "$lookup with a non-empty 'let' is not supported with automatic encryption", 51208
            )
        if ("localField" in spec) != ("foreignField" in spec):
            refuse("$lookup needs both localField and foreignField", BAD_VALUE)
        if "localField" in spec:
            self._join(tree, spec["localField"], foreign, spec["foreignField"], "$lookup")
        rendered = dict(spec)
        output = foreign
        if "pipeline" in spec:
            rendered["pipeline"], output = self.analyze(spec["pipeline"], foreign)
        tree = set_path(tree, spec["as"].split("."), joined(output))
        if self.qe:
            ordered = {k: rendered[k] for k in _LOOKUP_ORDER if k in rendered}
            ordered.update((k, v) for k, v in rendered.items() if k not in ordered)
            rendered = ordered
        return rendered, tree

    def _join(self, tree: Node, local: Any, foreign: Node, remote: Any, stage: str) -> None:
        if not isinstance(local, str) or not isinstance(remote, str):
            refuse(f"{stage} join fields must be strings", BAD_VALUE)
        left = resolve(tree, local.split("."))
        right = resolve(foreign, remote.split("."))
        if left.kind is Kind.PLAIN and right.kind is Kind.PLAIN:
            return
        for side in (left, right):
            if isinstance(side.meta, QeField):
                refuse(
                    f"{stage} cannot join on Queryable Encryption fields ('{local}', '{remote}')",
                    6331103,
                )
        if (
            left.kind is Kind.ENCRYPTED
            and right.kind is Kind.ENCRYPTED
            and isinstance(left.meta, Fle1Meta)
            and left.meta == right.meta
            and left.meta.deterministic
            and left.meta.key_pointer is None
        ):
            return
        refuse(
            f"{stage} join fields '{local}' and '{remote}' must both be unencrypted or both be "
            "deterministically encrypted with the same key",
            51206,
        )

    def _graph_lookup(self, spec: Any, tree: Node) -> tuple[Any, Node]:
        if not isinstance(spec, Mapping) or not isinstance(spec.get("as"), str):
            refuse("$graphLookup needs an 'as' field name", BAD_VALUE)
        foreign = self.catalog.tree(self._namespace(spec.get("from")))
        rendered = dict(spec)
        rendered["startWith"], result = self._expr(tree, spec.get("startWith"))
        if result.kind not in (CONST, PLAIN):
            refuse(
                f"$graphLookup startWith may not reference encrypted field '{result.path}'", 51230
            )
        for key, code in (("connectFromField", 51231), ("connectToField", 51232)):
            value = spec.get(key)
            if not isinstance(value, str):
                refuse(f"$graphLookup needs {key}", BAD_VALUE)
            if resolve(foreign, value.split(".")).kind is not Kind.PLAIN:
                refuse(f"$graphLookup {key} '{value}' may not be encrypted", code)
        if "restrictSearchWithMatch" in spec:
            rendered["restrictSearchWithMatch"] = self._filter(
                foreign, spec["restrictSearchWithMatch"]
            )
        tree = set_path(tree, spec["as"].split("."), joined(foreign))
        if isinstance(spec.get("depthField"), str):
            tree = set_path(tree, spec["depthField"].split("."), PLAIN_NODE)
        return rendered, tree

    def _geo_near(self, spec: Any, tree: Node) -> tuple[Any, Node]:
        if not isinstance(spec, Mapping):
            refuse("$geoNear needs an object", BAD_VALUE)
        rendered = dict(spec)
        key = spec.get("key")
        if key is not None and (
            not isinstance(key, str) or resolve(tree, key.split(".")).kind is not Kind.PLAIN
        ):
            refuse(f"$geoNear key '{key}' may not be encrypted", 51212)
        if "query" in spec:
            rendered["query"] = self._filter(tree, spec["query"])
        for name in ("distanceField", "includeLocs"):
            if isinstance(spec.get(name), str):
                tree = set_path(tree, spec[name].split("."), PLAIN_NODE)
        return rendered, tree

    def _documents(self, spec: Any, tree: Node) -> tuple[Any, Node]:
        return spec, PLAIN_NODE

    def _search(self, spec: Any, tree: Node) -> tuple[Any, Node]:
        if isinstance(spec, Mapping) and spec.get("returnStoredSource") is True and self.qe:
            refuse(
                "$search with returnStoredSource is not allowed with Queryable Encryption", 6837100
            )
        if tree.encrypted_below:
            refuse(
                "Atlas Search stages cannot be analysed for encrypted fields (their queries "
                "could compare plaintext with encrypted data)",
                31011,
            )
        return spec, tree


def joined(tree: Node) -> Node:
    """The tree of an array of joined documents (``$lookup``/``$graphLookup`` ``as``): their
    plain fields stay usable, but nothing encrypted inside an array can be compared or used, so
    every encrypted field becomes unknown."""
    if not tree.encrypted_below or tree.unknown:
        return tree
    if tree.meta is not None:
        return UNKNOWN_NODE
    return Node(
        children={name: joined(child) for name, child in tree.children.items()},
        patterns=[(regex, joined(node)) for regex, node in tree.patterns],
        additional=None if tree.additional is None else joined(tree.additional),
        overrides=tree.overrides,
    )


def removed(tree: Node, parts: list[str]) -> Node:
    """``tree`` once the field at ``parts`` is removed. A removed encrypted field becomes
    unknown rather than plain, so a later comparison with it is refused instead of sending the
    compared value in the clear."""
    node = PLAIN_NODE if resolve(tree, parts).kind is Kind.PLAIN else UNKNOWN_NODE
    return set_path(tree, parts, node)


def _desugared(pipeline: list[Any]) -> Iterator[tuple[str, Any]]:
    """The stages of ``pipeline`` as ``(name, spec)``, with ``$sortByCount`` expanded as the
    server expands it when it parses the pipeline (a ``$group`` counting, then a ``$sort``): it is
    accepted exactly when that ``$group`` is, and mongocryptd's reply carries the expansion."""
    for stage in pipeline:
        if not isinstance(stage, Mapping) or len(stage) != 1:
            refuse("A pipeline stage specification object must contain exactly one field.", 40323)
        name, spec = next(iter(stage.items()))
        if name == "$sortByCount":
            yield "$group", {"_id": spec, "count": {"$sum": 1}}
            yield "$sort", {"count": -1}
        else:
            yield name, spec


def _unchanged(spec: Any, tree: Node) -> tuple[Any, Node]:
    return spec, tree


def _is_operator(value: Mapping[str, Any]) -> bool:
    first = next(iter(value), "")
    return isinstance(first, str) and first.startswith("$")


def _node_for(result: ExprResult) -> Node:
    """The node of a computed field: plain, or unknown when it may hold ciphertext."""
    return PLAIN_NODE if result.kind in (CONST, PLAIN) else UNKNOWN_NODE


def check_sort(spec: Any, tree: Node, what: str = "sort") -> None:
    """Sort keys (and find's ``min``/``max`` index bounds, whose values are plaintext) may not be
    encrypted, above encrypted fields or of unknown encryption."""
    if not isinstance(spec, Mapping):
        refuse(f"{what} must be an object", BAD_VALUE)
    for key in spec:
        found = resolve(tree, str(key).split("."))
        if found.kind is not Kind.PLAIN:
            if what == "sort":
                refuse(f"Sorting on key '{key}' is not allowed due to encryption", 51201)
            refuse(f"find's {what} may not name the encrypted field '{key}'", 51201)


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
            if isinstance(value, Mapping) and value and not _is_operator(value):
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
            if isinstance(value, Mapping) and value and not _is_operator(value):
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
                        51092,
                    )
                out_tree = set_path(out_tree, path, PLAIN_NODE)
                continue
            if isinstance(value, Mapping) and next(iter(value), None) == "$meta":
                out_tree = set_path(out_tree, parts, PLAIN_NODE)
                continue
            rendered[key], result = ExprAnalyzer(tree, marker).analyze(value)
            out_tree = set_path(out_tree, parts, _node_for(result))
        return rendered

    return render(spec, []), out_tree


def project_computed(spec: Mapping[str, Any], tree: Node, marker: Marker) -> tuple[Any, Node]:
    """A new root built from an expression object (``$replaceRoot: {newRoot: {...}}``)."""
    rendered: dict[str, Any] = {}
    out = Node()
    for key, value in spec.items():
        rendered[key], result = ExprAnalyzer(tree, marker).analyze(value)
        out = set_path(out, [str(key)], _node_for(result))
    return rendered, out


def _included(tree: Node, parts: list[str], qe: bool) -> Node:
    node = node_at(tree, parts)
    if qe and node.encrypted_below:
        return UNKNOWN_NODE  # __safeContent__ is gone: QE fields can no longer be queried
    return node
