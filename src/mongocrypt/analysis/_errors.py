"""The analyzer's single way to refuse: :class:`~mongocrypt.errors.QueryAnalysisError`.

Messages follow mongocryptd's where they are known (the codes, named in ``_codes``, are the
server's); they name fields and operators but never carry a value, since values are plaintext.
"""

from __future__ import annotations

from typing import NoReturn

from mongocrypt.errors import QueryAnalysisError

__all__ = ["refuse"]


def refuse(message: str, code: int = 0) -> NoReturn:
    """Raise the analyzer's error.

    :param message: what was refused and why (field and operator, never a value).
    :param code: mongocryptd's error code for the same refusal, 0 when it has none.
    :raises QueryAnalysisError: always.
    """
    raise QueryAnalysisError(message, code)
