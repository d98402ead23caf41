"""The shape of a Range query expression (``encrypt_expression``), checked before libmongocrypt
sees it: libmongocrypt's own refusals quote the whole expression, bounds included.

The specification's forms, one-sided ranges allowed::

    {"$and": [{field: {"$gt" | "$gte": low}}, {field: {"$lt" | "$lte": high}}]}   (match)
    {"$and": [{"$gt" | "$gte": ["$field", low]}, {"$lt" | "$lte": ["$field", high]}]}  (aggregate)

Messages name fields and operators, never values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import bson

from mongocrypt.errors import MongoCryptError, redact

__all__ = ["check_range_expression", "redact_expression"]

_LOWER = ("$gt", "$gte")
_UPPER = ("$lt", "$lte")
_SHAPE = (
    "a range expression must be {'$and': [...]} of one or two bounds on one field: "
    "{field: {'$gte': value}} (match form) or {'$gte': ['$field', value]} (aggregate form), "
    "with $gt/$gte for the lower bound and $lt/$lte for the upper"
)


def _bound(element: Any) -> tuple[str, str, str]:
    """``(form, field, operator)`` of one element of the ``$and``."""
    if not isinstance(element, Mapping) or len(element) != 1:
        raise ValueError(
            f"each element of the range expression's $and takes one bound per element; {_SHAPE}"
        )
    ((key, operand),) = element.items()
    if key.startswith("$"):
        if key not in _LOWER + _UPPER:
            raise ValueError(f"{key!r} is not a range bound; {_SHAPE}")
        if not (
            isinstance(operand, (list, tuple))
            and len(operand) == 2
            and isinstance(operand[0], str)
            and operand[0].startswith("$")
        ):
            raise ValueError(f'the aggregate form\'s {key} takes ["$field", value]; {_SHAPE}')
        return "aggregate", operand[0][1:], key
    if not isinstance(operand, Mapping) or len(operand) != 1:
        raise ValueError(f"{key!r} takes one bound per element ({{'$gte': value}}); {_SHAPE}")
    operator = next(iter(operand))
    if operator not in _LOWER + _UPPER:
        raise ValueError(f"{operator!r} is not a range bound; {_SHAPE}")
    return "match", key, operator


def check_range_expression(value: bytes) -> None:
    """Check the expression in BSON ``{"v": expression}``.

    :raises ValueError: naming what is wrong (fields, operators), never a value.
    """
    expression = bson.decode(value).get("v")
    if not isinstance(expression, Mapping) or list(expression) != ["$and"]:
        raise ValueError(_SHAPE)
    elements = expression["$and"]
    if not isinstance(elements, list) or not 1 <= len(elements) <= 2:
        raise ValueError(f"the range expression's $and takes 1 or 2 bounds; {_SHAPE}")
    bounds = [_bound(element) for element in elements]
    if len(bounds) == 2:
        (form_a, field_a, op_a), (form_b, field_b, op_b) = bounds
        if form_a != form_b:
            raise ValueError(f"use the match form or the aggregate form, not both; {_SHAPE}")
        if field_a != field_b:
            raise ValueError(
                f"a range expression bounds one field: {field_a!r} and {field_b!r}; {_SHAPE}"
            )
        if (op_a in _LOWER) == (op_b in _LOWER):
            which = "lower" if op_a in _LOWER else "upper"
            raise ValueError(f"the range expression has two {which} bounds; {_SHAPE}")


def redact_expression(error: MongoCryptError) -> MongoCryptError:
    """libmongocrypt's refusal ``error`` with the document it quoted (the expression) cut out."""
    message = str(error)
    start, end = message.find("{"), message.rfind("}")
    if start != -1 and end > start:
        message = f"{message[:start]}<expression redacted>{message[end + 1 :]}"
    return MongoCryptError(redact(message), error.code)
