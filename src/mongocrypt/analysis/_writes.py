"""Writes: inserted and replacement documents, update modifiers, and update pipelines."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from mongocrypt.analysis import _codes as codes
from mongocrypt.analysis._errors import refuse
from mongocrypt.analysis._expr import CONST, PLAIN, ExprAnalyzer
from mongocrypt.analysis._markings import Marker
from mongocrypt.analysis._tree import Kind, Node, dotted, resolve

__all__ = ["WriteAnalyzer"]

SAFE_CONTENT = "__safeContent__"
_OTHER_OPERATORS = {
    "$inc": "$inc and $mul",
    "$mul": "$inc and $mul",
    "$max": "$max and $min",
    "$min": "$max and $min",
    "$currentDate": "$currentDate",
    "$addToSet": "$addToSet",
    "$push": "$push",
    "$pop": "$pop",
    "$pull": "$pull",
    "$pullAll": "$pullAll",
    "$bit": "$bit",
}


def _positional(parts: list[str]) -> Optional[int]:
    for index, part in enumerate(parts):
        if part == "$" or (part.startswith("$[") and part.endswith("]")):
            return index
    return None


class WriteAnalyzer:
    """Marks the values a command writes.

    :param tree: the collection's encryption tree.
    :param marker: makes (and counts) the markings.
    :param qe: the collection uses Queryable Encryption.
    """

    def __init__(self, tree: Node, marker: Marker, *, qe: bool) -> None:
        self.tree = tree
        self.marker = marker
        self.qe = qe
        self._pipeline_code = codes.QE_PIPELINE_UPDATE if qe else codes.PIPELINE_UPDATE

    # -- documents ----------------------------------------------------------------------------

    def insert(self, document: Any) -> dict[str, Any]:
        """A document inserted (insert, replacement upsert): JSON-pointer keyIds resolve in it,
        an encrypted ``_id`` must be given, top-level encrypted fields may not be
        Timestamp(0, 0)."""
        if not isinstance(document, Mapping):
            refuse("Documents to insert must be objects", codes.BAD_VALUE)
        self._require_id(document)
        return self._walk(document, [], root=document)

    def replacement(self, document: Mapping[str, Any], *, upsert: bool) -> dict[str, Any]:
        """A replacement document (no JSON-pointer keyIds; insert rules when upserting)."""
        if upsert:
            self._require_id(document)
        return self._walk(document, [], root=None, inserting=upsert)

    def _require_id(self, document: Mapping[str, Any]) -> None:
        if "_id" not in document and resolve(self.tree, ["_id"]).kind is Kind.ENCRYPTED:
            refuse(
                "_id must be explicitly provided when configured as encrypted",
                codes.ENCRYPTED_ID_MISSING,
            )

    def _walk(
        self,
        document: Mapping[str, Any],
        prefix: list[str],
        *,
        root: Optional[Mapping[str, Any]],
        inserting: bool = True,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in document.items():
            parts = [*prefix, key]
            path = dotted(parts)
            if self.qe and parts[0] == SAFE_CONTENT:
                refuse("Cannot modify __safeContent__ field in document.", codes.QE_SAFE_CONTENT)
            found = resolve(self.tree, parts)
            if found.kind is Kind.ENCRYPTED:
                assert found.meta is not None
                out[key] = self.marker.write(
                    found.meta,
                    value,
                    path,
                    document=root,
                    tree=self.tree,
                    top_level=inserting and not prefix,
                )
            elif found.kind is Kind.PREFIX:
                out[key] = self._below(value, parts, root, inserting)
            elif found.kind is Kind.PLAIN:
                out[key] = value
            else:
                refuse(f"Cannot write to '{path}': its encryption is not known", codes.BAD_VALUE)
        return out

    def _below(
        self, value: Any, parts: list[str], root: Optional[Mapping[str, Any]], inserting: bool
    ) -> Any:
        """A value written at a path holding encrypted fields below it."""
        if isinstance(value, Mapping):
            return self._walk(value, parts, root=root, inserting=inserting)
        if isinstance(value, list):
            refuse(
                f"An array at path '{dotted(parts)}' would violate the schema",
                codes.ARRAY_IN_SCHEMA,
            )
        return value

    # -- update modifiers ---------------------------------------------------------------------

    def modifier(self, update: Mapping[str, Any], *, upsert: bool) -> dict[str, Any]:
        """An update document of ``$`` operators with its ``$set`` values marked."""
        if upsert and resolve(self.tree, ["_id"]).kind is Kind.ENCRYPTED:
            refuse(
                "_id must be explicitly provided when configured as encrypted",
                codes.ENCRYPTED_ID_MISSING,
            )
        out: dict[str, Any] = {}
        for operator, fields in update.items():
            if not isinstance(operator, str) or not operator.startswith("$"):
                refuse("An update document may not mix operators and fields", codes.BAD_VALUE)
            if not isinstance(fields, Mapping):
                refuse(f"Modifiers of {operator} must be an object", codes.BAD_VALUE)
            if operator in ("$set", "$setOnInsert"):
                out[operator] = {path: self._set(path, value) for path, value in fields.items()}
            elif operator == "$unset":
                for path in fields:
                    self._check_target(path, "$unset", allow_encrypted=True)
                out[operator] = dict(fields)
            elif operator == "$rename":
                for source, target in fields.items():
                    self._rename(source, target)
                out[operator] = dict(fields)
            elif operator in _OTHER_OPERATORS:
                for path in fields:
                    self._check_target(path, operator, allow_encrypted=False)
                out[operator] = dict(fields)
            else:
                refuse(f"Unknown modifier: {operator}", codes.BAD_VALUE)
        return out

    def _split(self, path: Any) -> list[str]:
        if not isinstance(path, str) or not path:
            refuse("Update paths must be non-empty strings", codes.BAD_VALUE)
        parts = path.split(".")
        if self.qe and parts[0] == SAFE_CONTENT:
            refuse("Cannot modify __safeContent__ field in document.", codes.QE_SAFE_CONTENT)
        return parts

    def _check_positional(self, parts: list[str], operator: str) -> bool:
        """Refuse array updates on or above encrypted data; True when the path is positional."""
        index = _positional(parts)
        if index is None:
            return False
        found = resolve(self.tree, parts[:index])
        rest = resolve(self.tree, [p for p in parts if p != parts[index]])
        if found.kind is not Kind.PLAIN or rest.kind is not Kind.PLAIN:
            if parts[index] == "$" and operator == "$set":
                refuse(
                    "Cannot encrypt fields below '$' positional update operator",
                    codes.POSITIONAL_UPDATE,
                )
            refuse("Array update operations not allowed on encrypted values", codes.ARRAY_UPDATE)
        return True

    def _set(self, path: str, value: Any) -> Any:
        parts = self._split(path)
        if self._check_positional(parts, "$set"):
            return value
        found = resolve(self.tree, parts)
        if found.kind is Kind.ENCRYPTED:
            assert found.meta is not None
            return self.marker.write(found.meta, value, path)
        if found.kind is Kind.PREFIX:
            if not isinstance(value, Mapping):
                refuse(
                    f"Cannot $set to a path {path} that is an encrypted prefix to a non-object "
                    "type",
                    codes.SET_ENCRYPTED_PREFIX,
                )
            return self._walk(value, parts, root=None, inserting=False)
        if found.kind is Kind.INSIDE:
            refuse(
                f"Invalid operation on path '{path}' which contains an encrypted path prefix.",
                codes.PATH_THROUGH_ENCRYPTED,
            )
        return value

    def _check_target(self, path: Any, operator: str, *, allow_encrypted: bool) -> None:
        parts = self._split(path)
        if self._check_positional(parts, operator):
            return
        found = resolve(self.tree, parts)
        if found.kind is Kind.INSIDE:
            refuse(
                f"Invalid operation on path '{path}' which contains an encrypted path prefix.",
                codes.PATH_THROUGH_ENCRYPTED,
            )
        if found.kind is Kind.PLAIN or allow_encrypted:
            return
        refuse(
            f"{_OTHER_OPERATORS[operator]} not allowed on encrypted values: '{path}'",
            codes.ARRAY_UPDATE,
        )

    def _rename(self, source: str, target: Any) -> None:
        if not isinstance(target, str):
            refuse("$rename targets must be strings", codes.BAD_VALUE)
        old = resolve(self.tree, self._split(source))
        new = resolve(self.tree, self._split(target))
        if self.qe and (old.kind is not Kind.PLAIN or new.kind is not Kind.PLAIN):
            refuse(
                f"$rename is not allowed on Queryable Encryption fields ('{source}' to '{target}')",
                codes.QE_RENAME,
            )
        if Kind.PREFIX in (old.kind, new.kind):
            refuse(
                f"$rename is not allowed on an object holding encrypted fields ('{source}' to "
                f"'{target}')",
                codes.RENAME_PREFIX,
            )
        if Kind.INSIDE in (old.kind, new.kind) or Kind.UNKNOWN in (old.kind, new.kind):
            refuse(
                f"Invalid operation on path '{source}' which contains an encrypted path prefix.",
                codes.PATH_THROUGH_ENCRYPTED,
            )
        if old.kind is Kind.PLAIN and new.kind is Kind.PLAIN:
            return
        if old.kind is Kind.ENCRYPTED and new.kind is Kind.ENCRYPTED and old.meta == new.meta:
            return
        refuse(
            f"$rename between two encrypted fields must have the same metadata or both be "
            f"unencrypted ('{source}' to '{target}')",
            codes.RENAME_METADATA,
        )

    # -- update pipelines ---------------------------------------------------------------------

    def pipeline(
        self, stages: list[Any], *, upsert: bool, find_and_modify: bool = False
    ) -> list[Any]:
        """An aggregation-style update: accepted only when it provably leaves every encrypted
        field, and the set of encrypted fields, unchanged."""
        if upsert and resolve(self.tree, ["_id"]).kind is Kind.ENCRYPTED:
            refuse(
                "Pipeline updates with upsert are not allowed when _id is encrypted",
                codes.PIPELINE_FIND_AND_MODIFY_UPSERT_ENCRYPTED_ID
                if find_and_modify
                else codes.PIPELINE_UPSERT_ENCRYPTED_ID,
            )
        out = []
        for stage in stages:
            if not isinstance(stage, Mapping) or len(stage) != 1:
                refuse(
                    "Each update pipeline stage must be an object with one field", codes.BAD_VALUE
                )
            name, spec = next(iter(stage.items()))
            if name in ("$set", "$addFields"):
                if not isinstance(spec, Mapping):
                    refuse(f"{name} needs an object", codes.BAD_VALUE)
                rendered = {}
                for path, expr in spec.items():
                    self._pipeline_target(path, name)
                    rendered[path], result = ExprAnalyzer(self.tree, self.marker).analyze(expr)
                    if result.kind not in (CONST, PLAIN):
                        self._refuse_pipeline(f"{name} of '{path}' copies encrypted data")
                out.append({name: rendered})
            elif name == "$unset":
                paths = spec if isinstance(spec, list) else [spec]
                for path in paths:
                    self._pipeline_target(path, name)
                out.append(dict(stage))
            else:
                self._refuse_pipeline(f"stage {name} is not supported in update pipelines")
        return out

    def _pipeline_target(self, path: Any, stage: str) -> None:
        if not isinstance(path, str) or not path:
            refuse(f"{stage} paths must be non-empty strings", codes.BAD_VALUE)
        parts = path.split(".")
        if self.qe and parts[0] == SAFE_CONTENT:
            refuse("Cannot modify __safeContent__ field in document.", codes.QE_SAFE_CONTENT)
        if resolve(self.tree, parts).kind is not Kind.PLAIN:
            self._refuse_pipeline(f"{stage} of '{path}' touches encrypted data")

    def _refuse_pipeline(self, detail: str) -> None:
        refuse(
            "Pipelines in updates are not allowed to modify encrypted fields or add fields which "
            f"are not present in the schema ({detail})",
            self._pipeline_code,
        )
