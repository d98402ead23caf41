"""`make demo` runs examples/demo.py: it must show every algorithm round-tripping."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mongocrypt import has_string_algorithm

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.py"


def test_demo_runs_and_round_trips_every_algorithm() -> None:
    result = subprocess.run(
        [sys.executable, str(DEMO)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = result.stdout
    algorithms = ["Deterministic", "Random", "Indexed", "Unindexed", "Range"]
    algorithms += ["String"] if has_string_algorithm else []
    for algorithm in algorithms:
        assert f"{algorithm}  " in out, algorithm
    assert out.count("decrypts back to") == len(algorithms)
    assert "Deterministic: equal inputs give equal ciphertexts: True" in out
    assert "Random:        equal inputs give equal ciphertexts: False" in out
    assert "a tampered ciphertext is refused: MongoCryptError: HMAC validation failure" in out
    # The automatic-encryption part: what the server stores next to what the client reads.
    assert "stored on the server: name='Ada', ssn=Binary subtype 6" in out
    assert "read back decrypted:  ssn='457-55-5462'" in out
    assert "a query on a randomly encrypted field is refused" in out
    assert result.stderr == ""
