"""Aggregation pipelines: each stage is checked against the encryption tree of the documents that
reach it, its constants are marked, and the tree is updated for the next stage (projections drop
or rename fields, ``$group`` builds new documents, ``$lookup`` adds arrays whose encryption is
unknown). Stages not known to be safe are refused."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

from mongocrypt.analysis import _codes as codes
from mongocrypt.analysis._errors import refuse
from mongocrypt.analysis._expr import CONST, ENCRYPTED, PLAIN, ExprAnalyzer, ExprResult
from mongocrypt.analysis._filter import FilterAnalyzer, Style
from mongocrypt.analysis._markings import Marker
from mongocrypt.analysis._projection import check_sort, node_for, project, project_computed, removed
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
from mongocrypt.analysis._types import is_operator

__all__ = ["Catalog", "PipelineAnalyzer"]

_UNSUPPORTED = "Aggregation stage {} is not allowed or supported with automatic encryption."
_PASS_THROUGH_ACCUMULATORS = ("$push", "$addToSet", "$first", "$last")
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
            refuse(
                f"Missing encryption schema for namespace: {namespace}",
                codes.MISSING_NAMESPACE_SCHEMA,
            )
        if self.trees[self.namespace].encrypted_below:
            refuse(
                "Pipeline over an encrypted collection cannot reference additional collections.",
                codes.OTHER_COLLECTION,
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
            refuse("'pipeline' must be an array", codes.BAD_VALUE)
        out = []
        for index, (name, spec) in enumerate(_desugared(pipeline)):
            handler = self._handlers().get(name)
            if handler is None:
                refuse(_UNSUPPORTED.format(name), codes.UNSUPPORTED_STAGE)
            if name in ("$documents", "$collStats") and index != 0:
                refuse(
                    f"{name} is only valid as the first stage in a pipeline", codes.FIRST_STAGE_ONLY
                )
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
            refuse("$project specification must be a non-empty object", codes.BAD_VALUE)
        return project(spec, tree, self.marker, qe=self.qe)

    def _add_fields(self, spec: Any, tree: Node) -> tuple[Any, Node]:
        if not isinstance(spec, Mapping):
            refuse("$addFields specification must be an object", codes.BAD_VALUE)

        def add(level: Mapping[str, Any], prefix: list[str], tree: Node) -> tuple[Any, Node]:
            rendered: dict[str, Any] = {}
            for key, value in level.items():
                parts = [*prefix, *key.split(".")]
                if isinstance(value, Mapping) and value and not is_operator(value):
                    rendered[key], tree = add(value, parts, tree)
                    continue
                rendered[key], result = self._expr(tree, value)
                tree = set_path(tree, parts, node_for(result))
            return rendered, tree

        return add(spec, [], tree)

    def _unset(self, spec: Any, tree: Node) -> tuple[Any, Node]:
        paths = spec if isinstance(spec, list) else [spec]
        for path in paths:
            if not isinstance(path, str) or not path:
                refuse("$unset needs field path strings", codes.BAD_VALUE)
            tree = removed(tree, path.split("."))
        return spec, tree

    def _replace_root(self, spec: Any, tree: Node) -> tuple[Any, Node]:
        if not isinstance(spec, Mapping) or set(spec) != {"newRoot"}:
            refuse("$replaceRoot needs exactly newRoot", codes.BAD_VALUE)
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
                refuse(
                    f"$replaceRoot cannot make the encrypted field '{expr[1:]}' the root",
                    codes.REPLACE_ROOT_ENCRYPTED,
                )
            return expr, node_at(tree, expr[1:].split("."))
        if isinstance(expr, Mapping) and expr and not is_operator(expr):
            return project_computed(expr, tree, self.marker)
        rendered, result = self._expr(tree, expr)
        if result.kind not in (CONST, PLAIN):
            refuse(
                "$replaceRoot's new root may not be computed from encrypted data",
                codes.REPLACE_ROOT_ENCRYPTED,
            )
        return rendered, PLAIN_NODE

    def _group(self, spec: Any, tree: Node) -> tuple[Any, Node]:
        if not isinstance(spec, Mapping) or "_id" not in spec:
            refuse("a group specification must include an _id", codes.GROUP_WITHOUT_ID)
        rendered: dict[str, Any] = {}
        children: dict[str, Node] = {}
        for key, value in spec.items():
            if key == "_id":
                rendered[key], children[key] = self._group_key(value, tree)
                continue
            if not isinstance(value, Mapping) or len(value) != 1:
                refuse(f"The field '{key}' must be an accumulator object", codes.ACCUMULATOR_OBJECT)
            accumulator, argument = next(iter(value.items()))
            out, result = self._expr(tree, argument)
            rendered[key] = {accumulator: out}
            children[key] = self._accumulated(accumulator, result, key)
        return rendered, Node(children=children)

    def _group_key(self, value: Any, tree: Node) -> tuple[Any, Node]:
        if isinstance(value, Mapping) and value and not is_operator(value):
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
            codes.GROUP_KEY,
        )

    def _accumulated(self, accumulator: str, result: ExprResult, key: str) -> Node:
        if result.kind in (CONST, PLAIN):
            return PLAIN_NODE
        if accumulator not in _PASS_THROUGH_ACCUMULATORS:
            refuse(
                f"Accumulator '{accumulator}' cannot aggregate encrypted field "
                f"'{result.path or '$$ROOT'}' (output '{key}')",
                codes.ACCUMULATE_ENCRYPTED,
            )
        if accumulator == "$addToSet" and result.kind == ENCRYPTED:
            meta = result.meta
            if not (isinstance(meta, Fle1Meta) and meta.deterministic):
                refuse(
                    f"$addToSet is not allowed on field '{result.path}' encrypted with the "
                    "random algorithm",
                    codes.ADD_TO_SET_RANDOM,
                )
        return UNKNOWN_NODE

    def _bucket(self, spec: Any, tree: Node) -> tuple[Any, Node]:
        if not isinstance(spec, Mapping) or "groupBy" not in spec:
            refuse("$bucket and $bucketAuto need groupBy", codes.BAD_VALUE)
        rendered = dict(spec)
        rendered["groupBy"], result = self._expr(tree, spec["groupBy"])
        if result.kind not in (CONST, PLAIN):
            refuse(
                f"$bucket groupBy may not reference encrypted field '{result.path}'",
                codes.BUCKET_GROUP_BY,
            )
        output = spec.get("output", {})
        if not isinstance(output, Mapping):
            refuse("$bucket output must be an object", codes.BAD_VALUE)
        rendered_output = {}
        for key, value in output.items():
            if not isinstance(value, Mapping) or len(value) != 1:
                refuse(f"The field '{key}' must be an accumulator object", codes.ACCUMULATOR_OBJECT)
            accumulator, argument = next(iter(value.items()))
            out, result = self._expr(tree, argument)
            if result.kind not in (CONST, PLAIN):
                refuse(
                    f"Accumulator '{accumulator}' cannot aggregate encrypted field '{result.path}'",
                    codes.ACCUMULATE_ENCRYPTED,
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
            refuse("$unwind needs a field path starting with '$'", codes.BAD_VALUE)
        found = resolve(tree, path[1:].split("."))
        if found.kind is Kind.INSIDE:
            refuse(
                f"Invalid operation on path '{path[1:]}' which contains an encrypted path prefix.",
                codes.PATH_THROUGH_ENCRYPTED,
            )
        if found.kind is Kind.ENCRYPTED:
            meta = found.meta
            if not (isinstance(meta, Fle1Meta) and meta.deterministic):
                refuse(
                    f"$unwind is not allowed on encrypted field '{path[1:]}'", codes.UNWIND_RANDOM
                )
        if isinstance(spec, Mapping) and isinstance(spec.get("includeArrayIndex"), str):
            tree = set_path(tree, spec["includeArrayIndex"].split("."), PLAIN_NODE)
        return spec, tree

    def _namespace(self, value: Any) -> str:
        if isinstance(value, str):
            return f"{self.catalog.database}.{value}"
        if isinstance(value, Mapping) and isinstance(value.get("db"), str):
            return f"{value['db']}.{value.get('coll')}"
        refuse("$lookup 'from' must be a collection name", codes.BAD_VALUE)

    def _lookup(self, spec: Any, tree: Node) -> tuple[Any, Node]:
        if not isinstance(spec, Mapping) or not isinstance(spec.get("as"), str):
            refuse("$lookup needs an 'as' field name", codes.BAD_VALUE)
        # without 'from' the sub-pipeline starts with $documents
        foreign = self.catalog.tree(self._namespace(spec["from"])) if "from" in spec else PLAIN_NODE
        if spec.get("let") and (tree.encrypted_below or foreign.encrypted_below):
            refuse(
                "$lookup with a non-empty 'let' is not supported with automatic encryption",
                codes.LOOKUP_LET,
            )
        if ("localField" in spec) != ("foreignField" in spec):
            refuse("$lookup needs both localField and foreignField", codes.BAD_VALUE)
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
            refuse(f"{stage} join fields must be strings", codes.BAD_VALUE)
        left = resolve(tree, local.split("."))
        right = resolve(foreign, remote.split("."))
        if left.kind is Kind.PLAIN and right.kind is Kind.PLAIN:
            return
        for side in (left, right):
            if isinstance(side.meta, QeField):
                refuse(
                    f"{stage} cannot join on Queryable Encryption fields ('{local}', '{remote}')",
                    codes.QE_JOIN,
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
            codes.LOOKUP_JOIN_FIELDS,
        )

    def _graph_lookup(self, spec: Any, tree: Node) -> tuple[Any, Node]:
        if not isinstance(spec, Mapping) or not isinstance(spec.get("as"), str):
            refuse("$graphLookup needs an 'as' field name", codes.BAD_VALUE)
        foreign = self.catalog.tree(self._namespace(spec.get("from")))
        rendered = dict(spec)
        rendered["startWith"], result = self._expr(tree, spec.get("startWith"))
        if result.kind not in (CONST, PLAIN):
            refuse(
                f"$graphLookup startWith may not reference encrypted field '{result.path}'",
                codes.GRAPH_LOOKUP_START_WITH,
            )
        for key, code in (
            ("connectFromField", codes.GRAPH_LOOKUP_CONNECT_FROM),
            ("connectToField", codes.GRAPH_LOOKUP_CONNECT_TO),
        ):
            value = spec.get(key)
            if not isinstance(value, str):
                refuse(f"$graphLookup needs {key}", codes.BAD_VALUE)
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
            refuse("$geoNear needs an object", codes.BAD_VALUE)
        rendered = dict(spec)
        key = spec.get("key")
        if key is not None and (
            not isinstance(key, str) or resolve(tree, key.split(".")).kind is not Kind.PLAIN
        ):
            refuse(f"$geoNear key '{key}' may not be encrypted", codes.GEO_NEAR_KEY)
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
                "$search with returnStoredSource is not allowed with Queryable Encryption",
                codes.SEARCH_STORED_SOURCE,
            )
        if tree.encrypted_below:
            refuse(
                "Atlas Search stages cannot be analysed for encrypted fields (their queries "
                "could compare plaintext with encrypted data)",
                codes.UNSUPPORTED_STAGE,
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


def _desugared(pipeline: list[Any]) -> Iterator[tuple[str, Any]]:
    """The stages of ``pipeline`` as ``(name, spec)``, with ``$sortByCount`` expanded as the
    server expands it when it parses the pipeline (a ``$group`` counting, then a ``$sort``): it is
    accepted exactly when that ``$group`` is, and mongocryptd's reply carries the expansion."""
    for stage in pipeline:
        if not isinstance(stage, Mapping) or len(stage) != 1:
            refuse(
                "A pipeline stage specification object must contain exactly one field.",
                codes.STAGE_SHAPE,
            )
        name, spec = next(iter(stage.items()))
        if name == "$sortByCount":
            yield "$group", {"_id": spec, "count": {"$sum": 1}}
            yield "$sort", {"count": -1}
        else:
            yield name, spec


def _unchanged(spec: Any, tree: Node) -> tuple[Any, Node]:
    return spec, tree
