"""What commands print: JSON for programs, lines for people, progress on a terminal, errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional, TextIO

import bson
from bson import Binary, json_util
from bson.raw_bson import RawBSONDocument
from pymongo.errors import PyMongoError

from mongocrypt._secrets import REDACTED
from mongocrypt.cli._settings import (
    CANONICAL,
    DOCUMENTS,
    JSON_IN,
    PROG,
    RELAXED,
    UsageError,
)

# -- values and documents ---------------------------------------------------------------------


def parse_json(text: str, what: str) -> Any:
    """An Extended JSON value given by the user."""
    try:
        return json_util.loads(text, json_options=JSON_IN)
    except Exception as exc:
        hint = " (quote strings as JSON: '\"text\"')" if what == "value" else ""
        raise UsageError(f"{what} is not valid (Extended) JSON: {exc}{hint}") from None


def json_object(text: Optional[str], what: str) -> Optional[dict[str, Any]]:
    if text is None:
        return None
    value = parse_json(text, what)
    if not isinstance(value, dict):
        raise UsageError(f"{what} must be a JSON object")
    return value


def _plain(value: Any) -> Any:
    """``value`` as JSON types (relaxed Extended JSON for BSON-specific ones)."""
    return json.loads(json_util.dumps(value, json_options=RELAXED))


def key_summary(document: Mapping[str, Any]) -> dict[str, Any]:
    """A key document as shown to people and programs (wrapped key material left out)."""
    if isinstance(document, RawBSONDocument):
        decoded: dict[str, Any] = bson.decode(document.raw, codec_options=DOCUMENTS)
        document = decoded
    master_key = dict(document.get("masterKey") or {})
    key_id = document.get("_id")
    if isinstance(key_id, Binary) and key_id.subtype == 4:
        key_id = key_id.as_uuid()
    return {
        "id": str(key_id),
        "keyAltNames": list(document.get("keyAltNames") or []),
        "provider": master_key.pop("provider", None),
        "masterKey": _plain(master_key),
        "creationDate": _date(document.get("creationDate")),
        "updateDate": _date(document.get("updateDate")),
        "status": document.get("status"),
    }


def _date(value: Any) -> Optional[str]:
    return value.isoformat() if hasattr(value, "isoformat") else None


# -- output -----------------------------------------------------------------------------------


class Output:
    """Writes results: JSON when asked, otherwise lines for people."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    def result(self, data: Any, text: Callable[[], str]) -> None:
        if self.as_json:
            self.stream.write(json.dumps(data, indent=2) + "\n")
        else:
            rendered = text()
            if rendered:
                self.stream.write(rendered + "\n")


class Progress:
    """A progress bar on stderr, drawn only when stderr is a terminal."""

    WIDTH = 30

    def __init__(self, total: int, label: str) -> None:
        self.total = total
        self.done = 0
        self.label = label
        self.enabled = total > 0 and sys.stderr.isatty()

    def advance(self, count: int) -> None:
        self.done += count
        if self.enabled:
            filled = self.WIDTH * self.done // self.total
            bar = "#" * filled + "." * (self.WIDTH - filled)
            sys.stderr.write(f"\r{self.label} [{bar}] {self.done}/{self.total}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def key_line(key: Mapping[str, Any]) -> str:
    names = ", ".join(key["keyAltNames"]) or "-"
    return f"{key['id']}  {key['provider']:<14}  {key['creationDate'] or '-':<32}  {names}"


def key_details(key: Mapping[str, Any]) -> str:
    lines = [
        f"id:            {key['id']}",
        f"provider:      {key['provider']}",
        f"alt names:     {', '.join(key['keyAltNames']) or '-'}",
        f"created:       {key['creationDate'] or '-'}",
        f"updated:       {key['updateDate'] or '-'}",
        f"status:        {key['status']}",
    ]
    lines += [f"masterKey.{name}: {value}" for name, value in key["masterKey"].items()]
    return "\n".join(lines)


def dump_json(value: Any, canonical: bool) -> str:
    return json_util.dumps(value, json_options=CANONICAL if canonical else RELAXED)


def short_error(exc: PyMongoError) -> str:
    """A server selection error without pymongo's topology description."""
    return str(exc).split(", Timeout: ")[0]


def _scrub(message: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        message = message.replace(secret, REDACTED)
    return message


def write_error(message: str, secrets: Sequence[str]) -> None:
    sys.stderr.write(f"{PROG}: error: {_scrub(message, secrets)}\n")
