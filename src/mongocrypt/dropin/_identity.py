"""The facade's distribution identity.

pymongo (>= 4.16) checks ``importlib.metadata.version("pymongocrypt")`` against the minimum its own
metadata requires. mongocrypt is installed as the distribution ``mongocrypt``, so the facade
registers a distribution named ``pymongocrypt`` when it is imported (pymongo imports it before it
checks): a metadata finder appended to ``sys.meta_path``, consulted only after the regular path
finder, so a real pymongocrypt distribution would still be found first (and mongocrypt refuses to
import in that case).

:data:`API_VERSION` is the pymongocrypt release whose API the facade implements; pymongo compares
it with its minimum, so a pymongo needing a newer API fails its own check with a clear message.
"""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

from mongocrypt._conflicts import FACADE_MARKER, check_no_real_pymongocrypt
from mongocrypt._version import __version__ as mongocrypt_version

API_VERSION = "1.21.0"

_METADATA = f"""\
Metadata-Version: 2.1
Name: pymongocrypt
Version: {API_VERSION}
Summary: pymongocrypt-compatible facade provided by mongocrypt {mongocrypt_version}
"""


class FacadeDistribution(importlib.metadata.Distribution):
    """The ``pymongocrypt`` distribution as mongocrypt provides it."""

    def read_text(self, filename: str) -> Optional[str]:
        return _METADATA if filename in ("METADATA", "PKG-INFO") else None

    def locate_file(self, path: Any) -> Path:
        return Path(__file__).parent.parent.parent / str(path)


setattr(FacadeDistribution, FACADE_MARKER, True)  # how mongocrypt tells it from the real one


_ANY_DISTRIBUTION = importlib.metadata.DistributionFinder.Context()


class FacadeFinder:
    """A metadata-only finder: it finds no modules, only the facade's distribution."""

    @classmethod
    def find_spec(cls, *args: Any, **kwargs: Any) -> None:
        return None

    @classmethod
    def find_distributions(
        cls, context: importlib.metadata.DistributionFinder.Context = _ANY_DISTRIBUTION
    ) -> Iterator[importlib.metadata.Distribution]:
        name = context.name
        if name is None or name.lower().replace("_", "-") == "pymongocrypt":
            yield FacadeDistribution()


def register_facade() -> None:
    """Refuse a real pymongocrypt beside the facade, then make ``importlib.metadata`` see the
    facade as ``pymongocrypt`` (idempotent)."""
    check_no_real_pymongocrypt()
    if FacadeFinder not in sys.meta_path:
        sys.meta_path.append(FacadeFinder)
