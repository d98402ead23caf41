"""Query filters (``filter``, ``q``, ``query``, ``$match``, validators, partial indexes).

A filter is parsed into predicates, each predicate is checked against the encryption tree and its
constants are marked, then the filter is rendered back either *normalized* (mongocryptd's
re-serialisation of the parsed expression: implicit ``$and`` made explicit, ``{f: v}`` written
``{f: {$eq: v}}``, ``$ne`` as ``$not: {$eq}``, ``$in`` lists in BSON order; used for find, count,
distinct, delete, update and findAndModify) or *in place* (the user's own shape with constants
replaced; mongocryptd's form for aggregation ``$match``). Queryable Encryption range predicates are
turned into intervals, merged per path inside each conjunction, and always rendered normalized.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from mongocrypt.analysis import _codes as codes
from mongocrypt.analysis._errors import refuse
from mongocrypt.analysis._expr import ExprAnalyzer
from mongocrypt.analysis._markings import Marker
from mongocrypt.analysis._tree import RANGE, Fle1Meta, Kind, Node, QeField, Resolution, resolve
from mongocrypt.analysis._types import bson_type, compare, is_operator, is_regex, sort_unique

__all__ = ["FilterAnalyzer", "Style"]

_COMPARISONS = ("$gt", "$gte", "$lt", "$lte")
_GEO_GROUPS = ("$near", "$nearSphere")
_GEO_MODIFIERS = ("$minDistance", "$maxDistance")
_PASSTHROUGH_OPERATORS = frozenset(
    {
        "$all",
        "$bitsAllClear",
        "$bitsAllSet",
        "$bitsAnyClear",
        "$bitsAnySet",
        "$elemMatch",
        "$geoIntersects",
        "$geoWithin",
        "$mod",
        "$size",
        "$type",
        "$within",
        "$comment",
    }
)
_KNOWN_OPERATORS = (
    _PASSTHROUGH_OPERATORS | {"$eq", "$ne", "$in", "$nin", "$exists", "$not"} | set(_COMPARISONS)
)
_UNSUPPORTED_TOP_LEVEL = ("$where", "$text", "$jsonSchema")
_RAW_TOP_LEVEL = ("$comment", "$alwaysTrue", "$alwaysFalse", "$sampleRate")


class Style(enum.Enum):
    """How an analysed filter is written back."""

    NORMALIZED = "normalized"
    IN_PLACE = "in place"


@dataclass
class _Interval:
    """A range query on one QE field: one interval, or a union of point intervals ($in)."""

    qe: QeField
    lower: Optional[tuple[Any, bool]] = None
    upper: Optional[tuple[Any, bool]] = None
    points: Optional[list[Any]] = None  # $in / $nin
    mergeable: bool = False  # from $gt/$gte/$lt/$lte: merged with the same path's others
    negate: bool = False  # from $ne / $nin


@dataclass
class _Pred:
    path: str
    op: str  # "" for {path: value}
    value: Any
    marked: Any = None
    is_marked: bool = False
    interval: Optional[_Interval] = None

    @property
    def out(self) -> Any:
        return self.marked if self.is_marked else self.value


@dataclass
class _Entry:
    key: str
    preds: list[_Pred] = field(default_factory=list)
    clauses: Optional[list[list[_Entry]]] = None
    value: Any = None  # $expr (rendered) and raw entries


class FilterAnalyzer:
    """Analyses the filters of one command against one encryption tree.

    :param tree: the encryption tree the filter's paths are resolved in.
    :param marker: makes (and counts) the markings.
    :param style: how filters are rendered.
    """

    def __init__(
        self, tree: Node, marker: Marker, style: Style = Style.NORMALIZED, *, qe: bool = False
    ) -> None:
        self.tree = tree
        self.marker = marker
        self.style = style
        self.qe = qe
        self._has_intervals = False

    def analyze(self, query: Any) -> dict[str, Any]:
        """``query`` with every constant compared with an encrypted field marked."""
        if not isinstance(query, Mapping):
            refuse("A query filter must be an object", codes.BAD_VALUE)
        self._has_intervals = False
        entries = self._parse(query)
        if self.style is Style.IN_PLACE and not self._has_intervals:
            return self._in_place(entries)
        return self._normalized(entries)

    # -- parsing and checking -----------------------------------------------------------------

    def _parse(self, query: Mapping[str, Any]) -> list[_Entry]:
        entries = []
        for key, value in query.items():
            if not isinstance(key, str):
                refuse("Query field names must be strings", codes.BAD_VALUE)
            if key in ("$and", "$or", "$nor"):
                if not isinstance(value, list) or not value:
                    refuse(f"{key} argument must be a non-empty array", codes.BAD_VALUE)
                clauses = []
                for clause in value:
                    if not isinstance(clause, Mapping):
                        refuse(f"{key} argument's entries must be objects", codes.BAD_VALUE)
                    clauses.append(self._parse(clause))
                entries.append(_Entry(key, clauses=clauses))
            elif key == "$expr":
                rendered, result = ExprAnalyzer(self.tree, self.marker).analyze(value)
                ExprAnalyzer(self.tree, self.marker).require_plain(result, "$expr")
                entries.append(_Entry(key, value=rendered))
            elif key in _UNSUPPORTED_TOP_LEVEL:
                refuse(
                    f"Unsupported match expression operator for encryption: {key}",
                    codes.UNSUPPORTED_OPERATOR,
                )
            elif key in _RAW_TOP_LEVEL:
                entries.append(_Entry(key, value=value))
            elif key.startswith("$"):
                refuse(f"unknown top level operator: {key}", codes.BAD_VALUE)
            else:
                preds = _parse_path(key, value)
                for pred in preds:
                    self._check(pred)
                entries.append(_Entry(key, preds=preds))
        return entries

    def _check(self, pred: _Pred) -> None:
        """Check one predicate against the tree and mark its constants."""
        found = resolve(self.tree, pred.path.split("."))
        op = pred.op or "$eq"
        if pred.op == "" and is_regex(pred.value):
            op = "$regex"
        if found.kind is Kind.PLAIN:
            if op in ("$in", "$nin") and not isinstance(pred.value, list):
                refuse(f"{op} needs an array", codes.BAD_VALUE)
            if op == "$not":
                self._check_not(pred, found)
            elif op in ("$in", "$nin") and self.style is Style.NORMALIZED:
                pred.marked, pred.is_marked = self._sorted(pred.value), True
            return
        if found.kind is Kind.INSIDE:
            refuse(
                f"Invalid operation on path '{pred.path}' which contains an encrypted path prefix.",
                codes.PATH_THROUGH_ENCRYPTED,
            )
        if found.kind is Kind.UNKNOWN:
            if op == "$exists":
                return
            refuse(
                f"Cannot query field '{pred.path}' with {op}: its encryption is unknown at this "
                "point of the pipeline",
            )
        if found.kind is Kind.PREFIX:
            self._check_prefix(pred, op)
            return
        meta = found.meta
        assert meta is not None
        if op == "$exists":
            return
        if op == "$not":
            self._check_not(pred, found)
            return
        if op == "$elemMatch":
            refuse(
                f"$elemMatch is unsupported on encrypted fields: '{pred.path}'", codes.ELEM_MATCH
            )
        if isinstance(meta, QeField) and meta.algorithm == RANGE:
            self._check_range(pred, op, meta)
            return
        if op in ("$eq", "$ne"):
            if pred.value is None:
                refuse(
                    f"Illegal equality to null predicate for encrypted field: '{pred.path}'",
                    codes.NULL_EQUALITY,
                )
            pred.marked, pred.is_marked = self.marker.compare(meta, pred.value, pred.path), True
            return
        if op in ("$in", "$nin"):
            pred.marked, pred.is_marked = self._mark_in(pred, meta), True
            return
        if op in _COMPARISONS:
            code = codes.RANGE_COMPARISON if isinstance(meta, Fle1Meta) else codes.QE_RANGE_INDEX
            refuse(
                f"Invalid match expression operator on encrypted field '{pred.path}': {op}", code
            )
        refuse(
            f"Invalid match expression operator on encrypted field '{pred.path}': {op}",
            codes.INVALID_OPERATOR,
        )

    def _mark_in(self, pred: _Pred, meta: Any) -> list[Any]:
        if not isinstance(pred.value, list):
            refuse(f"{pred.op} needs an array", codes.BAD_VALUE)
        for value in pred.value:
            if value is None:
                refuse(
                    "Illegal equality to null inside $in against an encrypted field: "
                    f"'{pred.path}'",
                    codes.NULL_IN_IN,
                )
            if is_regex(value):
                refuse(
                    f"Illegal regex inside $in against an encrypted field: '{pred.path}'",
                    codes.REGEX_IN_IN,
                )
        values = self._sorted(pred.value)
        return [self.marker.compare(meta, v, pred.path) for v in values]

    def _sorted(self, values: list[Any]) -> list[Any]:
        """An $in list as the server keeps it: equalities in BSON order, then regexes."""
        if self.style is not Style.NORMALIZED or not self.marker.simple_collation:
            return list(values)
        plain = [v for v in values if not is_regex(v)]
        return sort_unique(plain) + [v for v in values if is_regex(v)]

    def _check_prefix(self, pred: _Pred, op: str) -> None:
        """A path above encrypted fields: objects compared with it carry encrypted values."""
        qe = self.qe
        if op in ("$eq", "$ne"):
            value = pred.value
            if isinstance(value, list):
                refuse(
                    f"Cannot compare an array with '{pred.path}', which holds encrypted fields",
                    codes.COMPARE_ARRAY_WITH_PREFIX,
                )
            if isinstance(value, Mapping):
                if qe:
                    refuse(
                        "Comparisons to objects which contain encrypted payloads is not allowed "
                        f"with Queryable Encryption: '{pred.path}'",
                        codes.QE_OBJECT_COMPARISON,
                    )
                pred.marked, pred.is_marked = self._mark_object(pred.path, value), True
            return
        if op in ("$in", "$nin"):
            if not isinstance(pred.value, list):
                refuse(f"{op} needs an array", codes.BAD_VALUE)
            marked = []
            for value in self._sorted(pred.value):
                if isinstance(value, list):
                    refuse(
                        f"Cannot compare an array in $in with '{pred.path}', which holds "
                        "encrypted fields",
                        codes.IN_ARRAY_WITH_PREFIX,
                    )
                if isinstance(value, Mapping):
                    if qe:
                        refuse(
                            "Comparisons to objects which contain encrypted payloads is not "
                            f"allowed with Queryable Encryption: '{pred.path}'",
                            codes.QE_OBJECT_IN_COMPARISON,
                        )
                    value = self._mark_object(pred.path, value)
                marked.append(value)
            pred.marked, pred.is_marked = marked, True
            return
        if op in _COMPARISONS:
            if isinstance(pred.value, (Mapping, list)):
                refuse(
                    f"Invalid match expression operator on encrypted field '{pred.path}': {op} "
                    "compares an object holding encrypted fields",
                    codes.OPERATOR_ON_PREFIX,
                )
            return
        if op == "$not":
            self._check_not(pred, Resolution(Kind.PREFIX))
            return
        if op == "$elemMatch":
            refuse(
                f"$elemMatch is unsupported on encrypted fields: '{pred.path}'", codes.ELEM_MATCH
            )
        if op == "$all" and any(isinstance(v, (Mapping, list)) for v in pred.value or []):
            refuse(
                f"Invalid match expression operator on encrypted field '{pred.path}': $all",
                codes.INVALID_OPERATOR,
            )

    def _mark_object(self, path: str, value: Mapping[str, Any]) -> dict[str, Any]:
        """An object compared with ``path``: its encrypted fields marked (deterministic only)."""
        marked: dict[str, Any] = {}
        for key, sub in value.items():
            sub_path = f"{path}.{key}"
            found = resolve(self.tree, sub_path.split("."))
            if found.kind is Kind.ENCRYPTED:
                assert found.meta is not None
                if sub is None:
                    refuse(
                        f"Illegal equality to null predicate for encrypted field: '{sub_path}'",
                        codes.NULL_EQUALITY,
                    )
                marked[key] = self.marker.compare(found.meta, sub, sub_path)
            elif found.kind is Kind.PREFIX:
                if isinstance(sub, list):
                    refuse(
                        f"Cannot compare an array with '{sub_path}', which holds encrypted fields",
                        codes.COMPARE_ARRAY_WITH_PREFIX,
                    )
                marked[key] = self._mark_object(sub_path, sub) if isinstance(sub, Mapping) else sub
            else:
                marked[key] = sub
        return marked

    def _check_not(self, pred: _Pred, found: Resolution) -> None:
        value = pred.value
        if is_regex(value):
            if found.kind is Kind.ENCRYPTED:
                refuse(
                    f"Invalid match expression operator on encrypted field '{pred.path}': $regex",
                    codes.INVALID_OPERATOR,
                )
            return
        if not isinstance(value, Mapping) or not value or not _is_operator_object(value):
            refuse("$not needs a regex or a document of operators", codes.BAD_VALUE)
        inner = _parse_path(pred.path, value)
        for sub in inner:
            if sub.op == "$not":
                refuse("$not cannot be nested", codes.BAD_VALUE)
            self._check(sub)
            if sub.interval is not None:
                refuse(
                    f"Range comparisons under $not are not supported on encrypted field "
                    f"'{pred.path}'",
                    codes.QE_RANGE_INDEX,
                )
        if any(sub.is_marked for sub in inner):
            pred.marked, pred.is_marked = _operator_object(inner), True

    def _check_range(self, pred: _Pred, op: str, qe: QeField) -> None:
        """A predicate on a QE range field becomes an interval (rendered later)."""
        path = pred.path
        if op in ("$eq", "$ne"):
            if pred.value is None:
                refuse(
                    f"Illegal equality to null predicate for encrypted field: '{path}'",
                    codes.NULL_EQUALITY,
                )
            point = self.marker.range_bound(qe, pred.value, path, op)
            pred.interval = _Interval(qe, (point, True), (point, True), negate=op == "$ne")
        elif op in ("$in", "$nin"):
            if not isinstance(pred.value, list):
                refuse(f"{op} needs an array", codes.BAD_VALUE)
            for value in pred.value:
                if value is None:
                    refuse(
                        f"Illegal equality to null inside $in against an encrypted field: '{path}'",
                        codes.NULL_IN_IN,
                    )
                if is_regex(value):
                    refuse(
                        f"Illegal regex inside $in against an encrypted field: '{path}'",
                        codes.REGEX_IN_IN,
                    )
            points = [self.marker.range_bound(qe, v, path, op) for v in self._sorted(pred.value)]
            pred.interval = _Interval(qe, points=points, negate=op == "$nin")
        elif op in _COMPARISONS:
            bound = (self.marker.range_bound(qe, pred.value, path, op), op.endswith("e"))
            if op.startswith("$g"):
                pred.interval = _Interval(qe, lower=bound, mergeable=True)
            else:
                pred.interval = _Interval(qe, upper=bound, mergeable=True)
        else:
            refuse(
                f"Invalid match expression operator on encrypted field '{path}': {op}",
                codes.INVALID_OPERATOR,
            )
        self._has_intervals = True

    # -- rendering ----------------------------------------------------------------------------

    def _in_place(self, entries: list[_Entry]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for entry in entries:
            if entry.clauses is not None:
                out[entry.key] = [self._in_place(clause) for clause in entry.clauses]
            elif entry.preds:
                preds = entry.preds
                if len(preds) == 1 and preds[0].op == "":
                    out[entry.key] = preds[0].out
                else:
                    out[entry.key] = _operator_object(preds)
            else:
                out[entry.key] = entry.value
        return out

    def _normalized(self, entries: list[_Entry]) -> dict[str, Any]:
        """One conjunction: a single child as itself, several under ``$and``, none as ``{}``."""
        children: list[Any] = []
        merged: dict[str, list[_Interval]] = {}
        for entry in entries:
            if entry.clauses is not None:
                children.append({entry.key: [self._normalized(c) for c in entry.clauses]})
            elif entry.preds:
                for pred in entry.preds:
                    interval = pred.interval
                    if interval is not None and interval.mergeable:
                        if pred.path not in merged:
                            merged[pred.path] = []
                            children.append(("range", pred.path))
                        merged[pred.path].append(interval)
                    elif interval is not None:
                        children.append(("interval", pred.path, interval))
                    else:
                        children.append(_render_pred(pred))
            else:
                children.append({entry.key: entry.value})
        intervals = {path: _merge(items) for path, items in merged.items()}
        if any(i is None for i in intervals.values()):
            return {"$alwaysFalse": 1}
        rendered = []
        for child in children:
            if isinstance(child, tuple) and child[0] == "range":
                interval = intervals[child[1]]
                assert interval is not None
                rendered.append(self._render_interval(child[1], interval))
            elif isinstance(child, tuple):
                rendered.append(self._render_interval(child[1], child[2]))
            else:
                rendered.append(child)
        if len(rendered) == 1:
            return rendered[0]
        return {"$and": rendered} if rendered else {}

    def _render_interval(self, path: str, interval: _Interval) -> dict[str, Any]:
        if interval.points is not None:
            node: dict[str, Any] = {
                "$or": [
                    self._closed(path, interval.qe, (p, True), (p, True)) for p in interval.points
                ]
            }
        else:
            node = self._closed(path, interval.qe, interval.lower, interval.upper)
        return {"$nor": [node]} if interval.negate else node

    def _closed(
        self,
        path: str,
        qe: QeField,
        lower: Optional[tuple[Any, bool]],
        upper: Optional[tuple[Any, bool]],
    ) -> dict[str, Any]:
        marks = self.marker.range_find(qe, lower, upper)
        parts = [{path: {op: mark}} for op, mark in marks]
        return parts[0] if len(parts) == 1 else {"$and": parts}


def _is_operator_object(value: Mapping[str, Any]) -> bool:
    """Operators, not a DBRef (whose ``$ref``/``$id``/``$db`` keys are fields)."""
    return is_operator(value) and next(iter(value)) not in ("$ref", "$id", "$db")


def _parse_path(path: str, value: Any) -> list[_Pred]:
    """The predicates of ``{path: value}``: one per operator (``$regex`` with its ``$options``
    and ``$near`` with its distances stay together)."""
    if not (isinstance(value, Mapping) and value and _is_operator_object(value)):
        return [_Pred(path, "", value)]
    preds = []
    grouped = [op for op in _GEO_GROUPS if op in value]
    for op, argument in value.items():
        if not isinstance(op, str) or not op.startswith("$"):
            refuse(f"unknown operator: {op}", codes.BAD_VALUE)
        if op == "$options":
            if "$regex" not in value:
                refuse("$options needs a $regex", codes.BAD_VALUE)
            continue
        if op in _GEO_MODIFIERS and grouped:
            continue
        if op == "$regex":
            group = {"$regex": argument}
            if "$options" in value:
                group["$options"] = value["$options"]
            preds.append(_Pred(path, "$regex", group))
        elif op in _GEO_GROUPS:
            group = {k: v for k, v in value.items() if k == op or k in _GEO_MODIFIERS}
            preds.append(_Pred(path, op, group))
        elif op in _KNOWN_OPERATORS or op.startswith("$_internal"):
            preds.append(_Pred(path, op, argument))
        else:
            refuse(f"unknown operator: {op}", codes.BAD_VALUE)
    return preds


def _operator_object(preds: list[_Pred]) -> dict[str, Any]:
    """Predicates of one path written back as ``{op: value, ...}`` (in place)."""
    out: dict[str, Any] = {}
    for pred in preds:
        if pred.op == "$regex" or pred.op in _GEO_GROUPS:
            out.update(pred.out)
        else:
            out[pred.op] = pred.out
    return out


def _truthy(value: Any) -> bool:
    return not (
        value is None
        or value is False
        or (bson_type(value) in ("int", "long", "double") and value == 0)
    )


def _render_pred(pred: _Pred) -> dict[str, Any]:
    """One predicate as mongocryptd serializes it."""
    path, op, value = pred.path, pred.op, pred.out
    if op == "":
        return {path: value} if is_regex(value) else {path: {"$eq": value}}
    if op == "$ne":
        return {path: {"$not": {"$eq": value}}}
    if op == "$nin":
        return {path: {"$not": {"$in": value}}}
    if op == "$exists":
        return {path: {"$exists": True}} if _truthy(value) else {path: {"$not": {"$exists": True}}}
    if op == "$regex" or op in _GEO_GROUPS:
        return {path: dict(value)}
    return {path: {op: value}}


def _merge(intervals: list[_Interval]) -> Optional[_Interval]:
    """The intersection of one path's comparisons; None when it is empty."""
    lower: Optional[tuple[Any, bool]] = None
    upper: Optional[tuple[Any, bool]] = None
    for interval in intervals:
        if interval.lower is not None:
            if lower is None:
                lower = interval.lower
            else:
                order = compare(interval.lower[0], lower[0])
                if order > 0 or (order == 0 and not interval.lower[1]):
                    lower = interval.lower
        if interval.upper is not None:
            if upper is None:
                upper = interval.upper
            else:
                order = compare(interval.upper[0], upper[0])
                if order < 0 or (order == 0 and not interval.upper[1]):
                    upper = interval.upper
    if lower is not None and upper is not None:
        order = compare(lower[0], upper[0])
        if order > 0 or (order == 0 and not (lower[1] and upper[1])):
            return None
    return _Interval(intervals[0].qe, lower, upper)
