"""What this interpreter runs (pymongocrypt, libmongocrypt, pymongo, cffi), as JSON."""

from __future__ import annotations

import benchlib

if __name__ == "__main__":
    benchlib.emit({"versions": benchlib.versions(), "results": {}})
