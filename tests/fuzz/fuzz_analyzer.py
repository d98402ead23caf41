"""Fuzz the embedded query analyzer, ``mongocrypt.analysis.analyze(command)``: the command a
driver would send to mongocryptd (with ``jsonSchema``/``isRemoteSchema`` or
``encryptionInformation``), built or raw.

Input: the first byte picks the mode, the rest is the payload.

- 0: the payload decoded as BSON is the command (arbitrary documents; bytes bson cannot decode
  prove nothing and are skipped);
- 1: a command built from the payload: a CSFLE schema or QE encryptedFields with encrypted fields
  ``ssn`` (string), ``secret`` (random) and ``nested.x`` (int), and one of find, aggregate,
  count, distinct, insert, update, delete, findAndModify, explain with filters, pipelines,
  expressions and documents drawn from the operators query analysis meets.

Properties, beyond "only the analyzer's typed errors escape" (``QueryAnalysisError`` or another
``MongoCryptError``): a reply is a BSON-encodable mapping with a ``result`` document, and in built
commands a *canary* plaintext compared with or written to an encrypted field never appears in the
reply outside a marking (BSON binary subtype 6): the analyzer fails closed, it never leaks.

When the analyzer is not there yet (it is being written), the harness exits with status 3 and says
so; ``tests/fuzz/run.py`` and tests/fuzz/test_fuzz.py report that as skipped. Run:
``python tests/fuzz/fuzz_analyzer.py -runs=N [corpus dirs]``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    DETERMINISTIC,
    RANDOM,
    KnownBugs,
    Reader,
    bson_value,
    encode_or_none,
    instrumented,
    run,
)

#: The exit status meaning "the analyzer is not available" (reported as a skip).
MISSING = 3
#: Reported analyzer bugs, by (exception type, innermost mongocrypt function) -> name.
#: (None yet: the first one found, StopIteration from an empty $project expression, was fixed.)
KNOWN_SIGNATURES: dict[tuple[str, str], str] = {}
KNOWN = KnownBugs(*KNOWN_SIGNATURES.values())

with instrumented():
    import bson
    from bson import Binary

    from mongocrypt.errors import MongoCryptError

    analyze: Optional[Callable[[dict[str, Any]], Any]]
    try:
        from mongocrypt.analysis import analyze
    except ImportError as exc:  # a build without the analyzer
        analyze, UNAVAILABLE = None, f"mongocrypt.analysis.analyze is not available: {exc}"

KEY_A = Binary(bytes(range(16)), 4)
KEY_B = Binary(bytes(range(16, 32)), 4)
CANARY_TEXT = "canary-plaintext-7f3a91"
CANARY_INT = 735190423
#: Encrypted paths and the canary each is compared with or set to.
ENCRYPTED = {"ssn": CANARY_TEXT, "secret": CANARY_TEXT, "nested.x": CANARY_INT}
PLAIN_FIELDS = ["name", "age", "nested.y", "a.b.c", "_id", "arr", "arr.0", "$ssn", ""]
CSFLE_SCHEMA = {
    "bsonType": "object",
    "properties": {
        "ssn": {"encrypt": {"keyId": [KEY_A], "bsonType": "string", "algorithm": DETERMINISTIC}},
        "secret": {"encrypt": {"keyId": [KEY_B], "algorithm": RANDOM}},
        "nested": {
            "bsonType": "object",
            "properties": {
                "x": {"encrypt": {"keyId": [KEY_A], "bsonType": "int", "algorithm": DETERMINISTIC}}
            },
        },
        "name": {"bsonType": "string"},
    },
}
QE_FIELDS = {
    "escCollection": "enxcol_.coll.esc",
    "ecocCollection": "enxcol_.coll.ecoc",
    "fields": [
        {
            "keyId": KEY_A,
            "path": "ssn",
            "bsonType": "string",
            "queries": {"queryType": "equality", "contention": 0},
        },
        {"keyId": KEY_B, "path": "secret", "bsonType": "string"},
        {
            "keyId": Binary(bytes(range(32, 48)), 4),
            "path": "nested.x",
            "bsonType": "int",
            "queries": {
                "queryType": "range",
                "min": 0,
                "max": 1_000_000_000,
                "sparsity": 1,
                "trimFactor": 0,
                "contention": 0,
            },
        },
    ],
}
#: Query operators comparing a field with values (where a canary may go), and the others.
COMPARISONS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$all"]
OTHER_OPS = ["$exists", "$type", "$regex", "$not", "$elemMatch", "$size", "$mod", "$bitsAllSet"]
EXPR_COMPARISONS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in"]
EXPR_OPS = [*EXPR_COMPARISONS, "$cond", "$and", "$or", "$not", "$concat", "$add"]
COMMANDS = [
    "find",
    "aggregate",
    "count",
    "distinct",
    "insert",
    "update",
    "delete",
    "findAndModify",
    "explain",
]
#: Stages after which a field keeps its meaning (canaries stay meaningful).
SAFE_STAGES = {"$match", "$sort", "$limit", "$skip", "$sample"}
STAGES = [
    "$match",
    "$project",
    "$addFields",
    "$set",
    "$unset",
    "$group",
    "$sort",
    "$limit",
    "$skip",
    "$unwind",
    "$lookup",
    "$facet",
    "$unionWith",
    "$count",
    "$replaceRoot",
    "$graphLookup",
    "$redact",
    "$sample",
    "$bucket",
]


class Builder:
    """Builds commands from a fuzz input.

    A canary is placed only where it is, by the query language's semantics, a value compared with
    (``$eq``, ``$in``... or implicit equality) or written to one of the encrypted paths of the
    command's own collection: never inside ``$elemMatch`` (paths are relative to array elements
    there), in other collections' pipelines, or after a stage that can redefine fields. So a canary
    left unmarked in a reply is a real leak, not an artefact of the generator; ``canaries`` says
    whether the command holds one.
    """

    def __init__(self, reader: Reader) -> None:
        self.r = reader
        self.canaries = False
        self.canary_ok = True

    def pick(self, choices: list[Any], fuzzed: bool = True) -> Any:
        index = self.r.byte()
        if fuzzed and index % 16 == 15:
            return self.r.text(12)
        return choices[index % len(choices)]

    def field(self) -> str:
        return str(self.pick([*ENCRYPTED, *PLAIN_FIELDS]))

    def value_for(self, field: str) -> Any:
        """A value compared with or written to ``field``: sometimes its canary."""
        if self.canary_ok and field in ENCRYPTED and self.r.byte() % 2:
            self.canaries = True
            return ENCRYPTED[field]
        return bson_value(self.r, 2)

    def without_canaries(self, build: Callable[[], Any]) -> Any:
        saved, self.canary_ok = self.canary_ok, False
        try:
            return build()
        finally:
            self.canary_ok = saved

    def predicate(self, field: str, depth: int) -> Any:
        kind = self.r.byte() % 6
        if kind == 0:
            return self.value_for(field)
        op = self.pick(COMPARISONS if kind < 4 else OTHER_OPS)
        if op in ("$in", "$nin", "$all"):
            return {op: [self.value_for(field) for _ in range(self.r.byte() % 3)]}
        if op == "$not" and depth < 3:
            return {op: self.predicate(field, depth + 1)}
        if op == "$elemMatch" and depth < 3:
            return {op: self.without_canaries(lambda: self.filter(depth + 1))}
        if op in COMPARISONS:
            return {op: self.value_for(field)}
        return {op: bson_value(self.r, 2)}

    def filter(self, depth: int = 0) -> dict[str, Any]:
        document: dict[str, Any] = {}
        for _ in range(self.r.byte() % 3 + 1):
            kind = self.r.byte() % 8
            if kind == 0 and depth < 3:
                document[self.pick(["$and", "$or", "$nor"], fuzzed=False)] = [
                    self.filter(depth + 1) for _ in range(self.r.byte() % 3 + 1)
                ]
            elif kind == 1 and depth < 3:
                document["$expr"] = self.expression(depth + 1)
            else:
                field = self.field()
                document[field] = self.predicate(field, depth)
        return document

    def expression(self, depth: int) -> Any:
        kind = self.r.byte() % 4
        if kind == 0 or depth > 3:
            return f"${self.field()}" if self.r.byte() % 2 else bson_value(self.r, 2)
        if kind == 1:
            field, op = self.field(), self.pick(EXPR_OPS)
            value = self.value_for(field) if op in EXPR_COMPARISONS else bson_value(self.r, 2)
            return {op: [f"${field}", value]}
        return {self.pick(EXPR_OPS): [self.expression(depth + 1) for _ in range(self.r.byte() % 3)]}

    def stage(self, depth: int) -> dict[str, Any]:
        name = self.pick(STAGES)
        if name not in SAFE_STAGES:
            self.canary_ok = False  # the stage may redefine fields: later canaries prove nothing
        if name == "$match":
            return {name: self.filter(depth)}
        if name in ("$project", "$addFields", "$set", "$group"):
            spec = {self.field() or "f": self.expression(depth) for _ in range(self.r.byte() % 3)}
            if name == "$group":
                spec["_id"] = self.expression(depth)
            return {name: spec}
        if name == "$sort":
            return {name: {self.field() or "f": 1}}
        if name in ("$limit", "$skip"):
            return {name: self.r.byte()}
        if name == "$sample":
            return {name: {"size": self.r.byte()}}
        if name in ("$unset", "$count"):
            return {name: self.field() or "f"}
        if name == "$unwind":
            return {name: f"${self.field()}"}
        if name in ("$lookup", "$unionWith", "$graphLookup"):
            inner: dict[str, Any] = {
                "from": self.pick(["coll", "other"]),
                "as": self.field() or "joined",
                "localField": self.field(),
                "foreignField": self.field(),
            }
            if depth < 2 and self.r.byte() % 2:
                inner["pipeline"] = self.without_canaries(lambda: self.pipeline(depth + 1))
            return {name: inner["from"] if name == "$unionWith" and not depth else inner}
        if name == "$facet" and depth < 2:
            return {name: {"a": self.without_canaries(lambda: self.pipeline(depth + 1))}}
        if name == "$replaceRoot":
            return {name: {"newRoot": self.expression(depth)}}
        return {name: self.expression(depth)}

    def pipeline(self, depth: int = 0) -> list[dict[str, Any]]:
        saved = self.canary_ok
        stages = [self.stage(depth) for _ in range(self.r.byte() % 4)]
        self.canary_ok = saved
        return stages

    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = {"_id": self.r.byte()}
        for _ in range(self.r.byte() % 4):
            field = self.field()
            if field and not field.startswith("$"):
                parts = field.split(".")
                target: Any = document
                for part in parts[:-1]:
                    target = target.setdefault(part, {}) if isinstance(target, dict) else None
                if isinstance(target, dict) and parts[-1] not in target:
                    target[parts[-1]] = self.value_for(field)
        return document

    def command(self) -> dict[str, Any]:
        name = self.pick(COMMANDS)
        body = self.body(name if name != "explain" else self.pick(["find", "aggregate", "count"]))
        command: dict[str, Any] = (
            {"explain": body, "verbosity": "queryPlanner"} if name == "explain" else body
        )
        if self.r.byte() % 2:
            command.update({"jsonSchema": CSFLE_SCHEMA, "isRemoteSchema": bool(self.r.byte() % 2)})
        else:
            command["encryptionInformation"] = {"type": 1, "schema": {"db.coll": QE_FIELDS}}
        return command

    def body(self, name: str) -> dict[str, Any]:
        if name == "find":
            return {"find": "coll", "filter": self.filter(), "projection": {self.field() or "f": 1}}
        if name == "aggregate":
            return {"aggregate": "coll", "pipeline": self.pipeline(), "cursor": {}}
        if name == "count":
            return {"count": "coll", "query": self.filter()}
        if name == "distinct":
            return {"distinct": "coll", "key": self.field() or "k", "query": self.filter()}
        if name == "insert":
            return {"insert": "coll", "documents": [self.document() for _ in range(2)]}
        if name == "update":
            field = self.field() or "f"
            query = self.filter()
            if self.r.byte() % 2:
                return {"update": "coll", "updates": [{"q": query, "u": self.set(field)}]}
            return {"update": "coll", "updates": [{"q": query, "u": self.pipeline()}]}
        if name == "delete":
            return {"delete": "coll", "deletes": [{"q": self.filter(), "limit": 1}]}
        field = self.field() or "f"
        return {"findAndModify": "coll", "query": self.filter(), "update": self.set(field)}

    def set(self, field: str) -> dict[str, Any]:
        return {"$set": {field: self.value_for(field)}}


def known(exc: BaseException) -> bool:
    """Whether ``exc`` is an already reported analyzer bug (counted, then skipped)."""
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "mongocrypt" in f.filename]
    where = frames[-1].name if frames else ""
    name = KNOWN_SIGNATURES.get((type(exc).__name__, where))
    return name is not None and KNOWN.hit(name)


def leaked(reply: Any) -> Optional[str]:
    """The first canary found in ``reply`` outside a marking, as a path."""
    stack: list[tuple[str, Any]] = [("", reply)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, Binary) and value.subtype == 6:
            continue
        if isinstance(value, Mapping):
            stack.extend((f"{path}.{k}", v) for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{path}.{i}", v) for i, v in enumerate(value))
        elif (isinstance(value, str) and CANARY_TEXT in value) or (
            type(value) is int and value == CANARY_INT
        ):
            return path or "."
    return None


def check_reply(reply: Any, builder: Optional[Builder]) -> None:
    if not isinstance(reply, Mapping):
        raise AssertionError(f"analyze returned {type(reply).__name__}, not a mapping")
    if not isinstance(reply.get("result"), Mapping):
        raise AssertionError("analyze returned no 'result' document")
    bson.encode(reply)  # the daemon sends it: it must be BSON
    if builder is not None and builder.canaries:
        where = leaked(reply)
        if where is not None:
            raise AssertionError(f"plaintext of an encrypted field left unmarked at {where}")


def TestOneInput(data: bytes) -> None:
    if not data or analyze is None:
        return
    builder: Optional[Builder] = None
    if data[0] % 2 == 0:
        try:
            command = bson.decode(data[1:])
        except (bson.errors.InvalidBSON, RecursionError, ValueError, OverflowError):
            return  # not BSON: nothing the analyzer would ever see
    else:
        builder = Builder(Reader(data[1:]))
        command = builder.command()
        if encode_or_none(command) is None:
            return  # a key or value bson cannot encode: no driver could send it
    try:
        reply = analyze(command)
    except MongoCryptError:
        return
    except Exception as exc:
        if known(exc):
            return
        raise
    check_reply(reply, builder)


if __name__ == "__main__":
    if analyze is None:
        print(f"SKIPPED: {UNAVAILABLE}", file=sys.stderr)
        sys.exit(MISSING)
    run(TestOneInput)
