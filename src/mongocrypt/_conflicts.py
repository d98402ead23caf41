"""Detect the real pymongocrypt distribution installed beside mongocrypt.

Both provide the ``pymongocrypt`` import package, so whichever was installed last silently owns
its files. mongocrypt refuses to import in that state rather than run half of each.
"""

from __future__ import annotations

import importlib.metadata
from typing import Optional

__all__ = ["check_no_real_pymongocrypt", "real_pymongocrypt"]

#: Marks the distribution mongocrypt registers for its facade (see pymongocrypt._identity).
FACADE_MARKER = "_mongocrypt_facade"


def real_pymongocrypt() -> Optional[importlib.metadata.Distribution]:
    """The installed pymongocrypt distribution that is not mongocrypt's facade, if any."""
    for dist in importlib.metadata.distributions(name="pymongocrypt"):
        if not getattr(dist, FACADE_MARKER, False):
            return dist
    return None


def check_no_real_pymongocrypt() -> None:
    """:raises ImportError: naming the conflicting distribution and the fix."""
    dist = real_pymongocrypt()
    if dist is not None:
        raise ImportError(
            f"pymongocrypt {dist.version} is installed beside mongocrypt, which provides the "
            "pymongocrypt package pymongo imports; the two overwrite each other's files. Run "
            "`pip uninstall -y pymongocrypt && pip install --force-reinstall --no-deps mongocrypt`."
        )
