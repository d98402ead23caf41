"""Aggregation expressions (``$expr``, ``$project``/``$addFields`` values, ``$group`` keys).

An encrypted field may only be compared for equality with a constant (``$eq``, ``$ne``, ``$in``
with a literal array), which becomes a marking, or passed through unevaluated (``$cond``,
``$switch``, ``$ifNull``, ``$let`` results, a bare field reference). Anything that would evaluate
ciphertext as if it were the value is refused, naming the field and the operator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

from mongocrypt.analysis import _codes as codes
from mongocrypt.analysis._errors import refuse
from mongocrypt.analysis._markings import Marker
from mongocrypt.analysis._tree import EQUALITY, Fle1Meta, Kind, Meta, Node, QeField, resolve
from mongocrypt.analysis._types import is_operator

__all__ = ["ExprAnalyzer", "ExprResult"]

#: What an expression evaluates to, as far as encryption goes.
CONST, PLAIN, ENCRYPTED, PREFIX, UNKNOWN, ROOT = (
    "const",
    "plain",
    "encrypted",
    "prefix",
    "unknown",
    "root",
)
_TAINTED = (ENCRYPTED, PREFIX, UNKNOWN, ROOT)
_TEXT_OPERATORS = {
    "$encStrStartsWith": ("prefix", "prefix"),
    "$encStrEndsWith": ("suffix", "suffix"),
    "$encStrContains": ("substring", "substr"),
}


@dataclass(frozen=True)
class ExprResult:
    """The encryption of an expression's value.

    :param kind: CONST (a literal), PLAIN (computed from unencrypted data), ENCRYPTED (exactly an
        encrypted field's value), PREFIX (an object holding encrypted fields), UNKNOWN (may hold
        ciphertext), ROOT (the whole document).
    :param meta: the field's metadata (ENCRYPTED).
    :param path: the field path behind the value, for messages.
    :param field_ref: the expression is a bare field path.
    """

    kind: str
    meta: Optional[Meta] = None
    path: str = ""
    field_ref: bool = False


def _combine(results: list[ExprResult]) -> ExprResult:
    for result in results:
        if result.kind in _TAINTED:
            return ExprResult(UNKNOWN, path=result.path or "$$ROOT")
    if all(r.kind == CONST for r in results):
        return ExprResult(CONST)
    return ExprResult(PLAIN)


class ExprAnalyzer:
    """Analyses expressions against one encryption tree.

    :param tree: the documents' encryption tree at this point of the pipeline.
    :param marker: makes (and counts) the markings.
    """

    def __init__(self, tree: Node, marker: Marker) -> None:
        self.tree = tree
        self.marker = marker

    def analyze(self, expr: Any) -> tuple[Any, ExprResult]:
        """``expr`` with its constants marked, and what it evaluates to."""
        if isinstance(expr, str) and expr.startswith("$"):
            return expr, self._reference(expr)
        if isinstance(expr, list):
            pairs = [self.analyze(e) for e in expr]
            return [p[0] for p in pairs], _combine([p[1] for p in pairs])
        if isinstance(expr, Mapping):
            if not expr:
                return {}, ExprResult(CONST)
            first = next(iter(expr))
            if isinstance(first, str) and first.startswith("$"):
                if len(expr) != 1:
                    refuse(
                        "An expression specification must contain exactly one field, the name "
                        f"of the expression ({first})",
                        codes.EXPRESSION_SHAPE,
                    )
                return self._operator(first, expr[first])
            rendered: dict[str, Any] = {}
            results = []
            for key, value in expr.items():
                rendered[key], result = self.analyze(value)
                results.append(result)
            return rendered, _combine(results)
        return expr, ExprResult(CONST)

    def require_plain(self, result: ExprResult, operator: str) -> None:
        """Refuse when a value that ``operator`` evaluates may be ciphertext."""
        if result.kind == ENCRYPTED:
            refuse(
                f"Encrypted field '{result.path}' is not allowed to be evaluated by {operator}",
                codes.EXPRESSION_EVALUATES,
            )
        if result.kind == PREFIX:
            refuse(
                f"Expression {operator} references '{result.path}', a prefix of an encrypted "
                "field, which is not allowed",
                codes.EXPRESSION_PREFIX,
            )
        if result.kind == ROOT:
            refuse(
                f"Access to the whole document ($$ROOT/$$CURRENT) in {operator} is not allowed "
                "when the collection has encrypted fields",
                codes.EXPRESSION_ROOT,
            )
        if result.kind == UNKNOWN:
            refuse(
                f"Field '{result.path}' may hold encrypted data (its encryption is unknown at "
                f"this point) and cannot be evaluated by {operator}",
                codes.EXPRESSION_EVALUATES,
            )

    # -- references ---------------------------------------------------------------------------

    def _reference(self, text: str) -> ExprResult:
        if text.startswith("$$"):
            name, _, rest = text[2:].partition(".")
            if name not in ("ROOT", "CURRENT"):
                return ExprResult(PLAIN)
            if not rest:
                return ExprResult(ROOT if self.tree.encrypted_below else PLAIN, path=text)
            return self.field(rest)
        return self.field(text[1:])

    def field(self, path: str, *, literal: bool = False) -> ExprResult:
        """What the field path ``path`` holds (``literal``: a single field name, dots included,
        as ``$getField`` reads it)."""
        found = resolve(self.tree, [path] if literal else path.split("."))
        if found.kind is Kind.PLAIN:
            return ExprResult(PLAIN, path=path, field_ref=True)
        if found.kind is Kind.ENCRYPTED:
            return ExprResult(ENCRYPTED, found.meta, path, field_ref=True)
        if found.kind is Kind.PREFIX:
            return ExprResult(PREFIX, path=path, field_ref=True)
        if found.kind is Kind.INSIDE:
            refuse(
                f"Invalid operation on path '{path}' which contains an encrypted path prefix.",
                codes.PATH_THROUGH_ENCRYPTED,
            )
        return ExprResult(UNKNOWN, path=path, field_ref=True)

    # -- operators ----------------------------------------------------------------------------

    def _operator(self, name: str, argument: Any) -> tuple[Any, ExprResult]:
        if name == "$literal":
            return {name: argument}, ExprResult(CONST)
        if name in ("$eq", "$ne") and isinstance(argument, list) and len(argument) == 2:
            return self._comparison(name, argument)
        if name == "$in" and isinstance(argument, list) and len(argument) == 2:
            return self._in(argument)
        if name in ("$cond", "$switch", "$ifNull"):
            return self._conditional(name, argument)
        if name == "$let":
            return self._let(argument)
        if name in _TEXT_OPERATORS:
            return self._text(name, argument)
        if name == "$getField":
            return self._get_field(argument)
        if name == "$encStrNormalizedEq":
            refuse(f"{name} is not supported by this analyzer")
        return self._generic(name, argument)

    def _generic(self, name: str, argument: Any) -> tuple[Any, ExprResult]:
        """Any other operator evaluates its arguments: none may be ciphertext."""
        rendered: Any
        results: list[ExprResult] = []
        if isinstance(argument, list):
            rendered = []
            for value in argument:
                out, result = self.analyze(value)
                rendered.append(out)
                results.append(result)
        elif isinstance(argument, Mapping) and argument and not is_operator(argument):
            rendered = {}
            for key, value in argument.items():
                rendered[key], result = self.analyze(value)
                results.append(result)
        else:
            rendered, result = self.analyze(argument)
            results.append(result)
        for result in results:
            self.require_plain(result, name)
        return {name: rendered}, ExprResult(PLAIN)

    def _get_field(self, argument: Any) -> tuple[Any, ExprResult]:
        """``$getField`` reads a field by name: of the current document, it is a field reference."""
        if isinstance(argument, Mapping) and "field" in argument:
            field, source = _literal(argument["field"]), argument.get("input", "$$CURRENT")
        else:
            field, source = _literal(argument), "$$CURRENT"
        if not isinstance(field, str):
            if self.tree.encrypted_below:
                refuse(
                    "$getField with a computed field name cannot be analysed for encryption",
                    codes.EXPRESSION_EVALUATES,
                )
            return self._generic("$getField", argument)
        if source in ("$$CURRENT", "$$ROOT"):
            return {"$getField": argument}, self.field(field, literal=True)
        rendered, result = self.analyze(source)
        self.require_plain(result, "$getField")
        out = dict(argument)
        out["input"] = rendered
        return {"$getField": out}, ExprResult(PLAIN)

    def _comparison(self, name: str, argument: list[Any]) -> tuple[Any, ExprResult]:
        (left, lres), (right, rres) = self.analyze(argument[0]), self.analyze(argument[1])
        for result in (lres, rres):
            if result.kind in (PREFIX, ROOT, UNKNOWN):
                self.require_plain(result, name)
        if lres.kind != ENCRYPTED and rres.kind != ENCRYPTED:
            return {name: [left, right]}, ExprResult(PLAIN)
        if lres.kind == ENCRYPTED and rres.kind == ENCRYPTED:
            if (
                isinstance(lres.meta, Fle1Meta)
                and lres.meta == rres.meta
                and lres.meta.deterministic
                and lres.meta.key_pointer is None
            ):
                return {name: [left, right]}, ExprResult(PLAIN)
            code = (
                codes.EXPRESSION_TWO_FIELDS
                if isinstance(lres.meta, QeField)
                else codes.EXPRESSION_METADATA
            )
            refuse(
                f"Comparison between encrypted fields '{lres.path}' and '{rres.path}' in {name} "
                "is not allowed",
                code,
            )
        encrypted, other = (lres, rres) if lres.kind == ENCRYPTED else (rres, lres)
        constant = argument[1] if lres.kind == ENCRYPTED else argument[0]
        if other.kind != CONST:
            code = codes.EXPRESSION_UNENCRYPTED if other.field_ref else codes.EXPRESSION_COMPUTED
            refuse(
                f"Encrypted field '{encrypted.path}' can only be compared with a constant in "
                f"{name}",
                code,
            )
        mark = self._mark_constant(encrypted, _literal(constant), name)
        pair = [left, mark] if lres.kind == ENCRYPTED else [mark, right]
        return {name: pair}, ExprResult(PLAIN)

    def _mark_constant(self, encrypted: ExprResult, value: Any, operator: str) -> Any:
        meta = encrypted.meta
        assert meta is not None
        if isinstance(meta, QeField) and meta.algorithm != EQUALITY:
            refuse(
                f"Encrypted field '{encrypted.path}' cannot be compared by {operator} in an "
                "expression: only fields with an equality index can",
                codes.EXPRESSION_RANDOM,
            )
        return self.marker.compare(meta, value, encrypted.path)

    def _in(self, argument: list[Any]) -> tuple[Any, ExprResult]:
        needle, nres = self.analyze(argument[0])
        if nres.kind != ENCRYPTED:
            self.require_plain(nres, "$in")
            haystack, hres = self.analyze(argument[1])
            self.require_plain(hres, "$in")
            return {"$in": [needle, haystack]}, ExprResult(PLAIN)
        values = argument[1]
        if not isinstance(values, list) or any(self.analyze(v)[1].kind != CONST for v in values):
            refuse(
                f"$in on encrypted field '{nres.path}' needs a literal array of constants",
                codes.EXPRESSION_EVALUATES,
            )
        marks = [self._mark_constant(nres, _literal(v), "$in") for v in values]
        return {"$in": [needle, marks]}, ExprResult(PLAIN)

    def _conditional(self, name: str, argument: Any) -> tuple[Any, ExprResult]:
        """$cond/$switch/$ifNull: conditions are evaluated, results only passed through."""
        if name == "$cond":
            if isinstance(argument, list) and len(argument) == 3:
                condition, *branches = argument
                rendered_condition, cres = self.analyze(condition)
                self.require_plain(cres, name)
                pairs = [self.analyze(b) for b in branches]
                return (
                    {name: [rendered_condition, *(p[0] for p in pairs)]},
                    _combine([p[1] for p in pairs]),
                )
            if isinstance(argument, Mapping) and set(argument) == {"if", "then", "else"}:
                rendered_condition, cres = self.analyze(argument["if"])
                self.require_plain(cres, name)
                then, tres = self.analyze(argument["then"])
                other, eres = self.analyze(argument["else"])
                return (
                    {name: {"if": rendered_condition, "then": then, "else": other}},
                    _combine([tres, eres]),
                )
            refuse("$cond needs an array of three expressions or {if, then, else}", codes.BAD_VALUE)
        if name == "$ifNull":
            if not isinstance(argument, list) or len(argument) < 2:
                refuse("$ifNull needs at least two expressions", codes.BAD_VALUE)
            pairs = [self.analyze(a) for a in argument]
            return {name: [p[0] for p in pairs]}, _combine([p[1] for p in pairs])
        if not isinstance(argument, Mapping) or not isinstance(argument.get("branches"), list):
            refuse("$switch needs a branches array", codes.BAD_VALUE)
        branches = []
        results = []
        for branch in argument["branches"]:
            if not isinstance(branch, Mapping) or set(branch) != {"case", "then"}:
                refuse("$switch branches need exactly case and then", codes.BAD_VALUE)
            case, cres = self.analyze(branch["case"])
            self.require_plain(cres, name)
            then, tres = self.analyze(branch["then"])
            branches.append({"case": case, "then": then})
            results.append(tres)
        rendered: dict[str, Any] = {"branches": branches}
        for key, value in argument.items():
            if key == "default":
                rendered[key], dres = self.analyze(value)
                results.append(dres)
            elif key != "branches":
                refuse(f"$switch does not take '{key}'", codes.BAD_VALUE)
        return {name: rendered}, _combine(results)

    def _let(self, argument: Any) -> tuple[Any, ExprResult]:
        if not isinstance(argument, Mapping) or not isinstance(argument.get("vars"), Mapping):
            refuse("$let needs vars and in", codes.BAD_VALUE)
        variables = {}
        for name, value in argument["vars"].items():
            if name in ("CURRENT", "ROOT"):
                refuse(
                    f"$let may not rebind {name} when the collection has encrypted fields",
                    codes.EXPRESSION_ROOT,
                )
            variables[name], result = self.analyze(value)
            if result.kind in _TAINTED:
                refuse(
                    f"$let variable '{name}' may not be bound to encrypted data ('{result.path}')",
                    codes.EXPRESSION_EVALUATES,
                )
        body, result = self.analyze(argument.get("in"))
        return {"$let": {"vars": variables, "in": body}}, result

    def _text(self, name: str, argument: Any) -> tuple[Any, ExprResult]:
        argument_name, query = _TEXT_OPERATORS[name]
        if not isinstance(argument, Mapping) or set(argument) != {"input", argument_name}:
            refuse(f"{name} needs exactly 'input' and '{argument_name}'", codes.BAD_VALUE)
        field = argument["input"]
        found = self.analyze(field)[1] if isinstance(field, str) else ExprResult(CONST)
        if found.kind != ENCRYPTED or not found.field_ref:
            refuse(f"{name} needs an encrypted field path as its input", codes.TEXT_SEARCH_INPUT)
        if not isinstance(found.meta, QeField):
            refuse(f"{name} needs a Queryable Encryption schema", codes.TEXT_SEARCH_NEEDS_QE)
        constant, cres = self.analyze(argument[argument_name])
        if cres.kind != CONST:
            refuse(f"{name} needs a constant '{argument_name}'", codes.BAD_VALUE)
        mark = self.marker.text_search(found.meta, _literal(constant), query, found.path)
        return {name: {"input": field, argument_name: mark}}, ExprResult(PLAIN)


def _literal(value: Any) -> Any:
    """The constant an expression denotes (``{$literal: v}`` is ``v``)."""
    if isinstance(value, Mapping) and len(value) == 1 and "$literal" in value:
        return value["$literal"]
    return value
