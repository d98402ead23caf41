"""The pymongocrypt facade: the import surface pymongo loads, its version identity, and the
refusal to run beside the real pymongocrypt."""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import pymongocrypt
from mongocrypt import engine
from mongocrypt.dropin import _identity

#: module -> names pymongo (4.8 through 4.20) imports from it, per pymongo's encryption modules.
SURFACE = {
    "pymongocrypt": ["__version__", "libmongocrypt_version"],
    "pymongocrypt.errors": ["MongoCryptError"],
    "pymongocrypt.mongocrypt": ["MongoCryptOptions", "MongoCryptKmsContext"],
    "pymongocrypt.synchronous.auto_encrypter": ["AutoEncrypter"],
    "pymongocrypt.synchronous.explicit_encrypter": ["ExplicitEncrypter"],
    "pymongocrypt.synchronous.state_machine": ["MongoCryptCallback"],
    "pymongocrypt.asynchronous.auto_encrypter": ["AsyncAutoEncrypter"],
    "pymongocrypt.asynchronous.explicit_encrypter": ["AsyncExplicitEncrypter"],
    "pymongocrypt.asynchronous.state_machine": ["AsyncMongoCryptCallback"],
    # the legacy top-level modules pymongo <= 4.8 imports
    "pymongocrypt.auto_encrypter": ["AutoEncrypter"],
    "pymongocrypt.explicit_encrypter": ["ExplicitEncrypter"],
    "pymongocrypt.state_machine": ["MongoCryptCallback"],
}

pytestmark = pytest.mark.smoke


@pytest.mark.parametrize("module", sorted(SURFACE))
def test_import_surface(module: str) -> None:
    loaded = importlib.import_module(module)
    for name in SURFACE[module]:
        assert hasattr(loaded, name), f"{module}.{name}"


def test_facade_objects_are_the_engines() -> None:
    from pymongocrypt.errors import MongoCryptError
    from pymongocrypt.mongocrypt import MongoCryptKmsContext, MongoCryptOptions
    from pymongocrypt.synchronous.state_machine import MongoCryptCallback

    assert MongoCryptOptions is engine.MongoCryptOptions
    assert MongoCryptKmsContext is engine.KmsContext
    assert issubclass(MongoCryptCallback, engine.MongoCryptCallback)
    assert MongoCryptError("boom", 3).code == 3


@pytest.mark.parametrize(
    "module",
    ["pymongocrypt.synchronous.explicit_encrypter", "pymongocrypt.asynchronous.explicit_encrypter"],
)
def test_encrypt_accepts_both_string_option_names(module: str) -> None:
    """pymongo 4.18-4.19 pick the keyword by inspecting this signature; 4.16-4.17 send
    text_opts; 4.20 sends string_opts always."""
    encrypter = next(
        getattr(importlib.import_module(module), n)
        for n in ("ExplicitEncrypter", "AsyncExplicitEncrypter")
        if hasattr(importlib.import_module(module), n)
    )
    parameters = inspect.signature(encrypter.encrypt).parameters
    assert {"string_opts", "text_opts", "is_expression", "range_opts"} <= set(parameters)


def test_string_and_text_options_together_are_refused() -> None:
    from mongocrypt.engine import MongoCryptOptions
    from mongocrypt.io.memory import InMemoryIO
    from pymongocrypt.synchronous.explicit_encrypter import ExplicitEncrypter

    encrypter = ExplicitEncrypter(
        InMemoryIO(), MongoCryptOptions({"local": {"key": b"k" * 96}}, bypass_encryption=True)
    )
    with pytest.raises(ValueError, match="not both"):
        encrypter.encrypt(b"", "String", key_alt_name="a", string_opts=b"s", text_opts=b"t")


def test_distribution_identity_passes_pymongos_check() -> None:
    from pymongo.common import check_for_min_version

    assert (
        importlib.metadata.version("pymongocrypt")
        == pymongocrypt.__version__
        == _identity.API_VERSION
    )
    found, required, ok = check_for_min_version("pymongocrypt")
    assert ok, (found, required)
    metadata = importlib.metadata.metadata("pymongocrypt")
    assert "provided by mongocrypt" in metadata["Summary"]


def test_registering_twice_is_harmless() -> None:
    _identity.register_facade()
    _identity.register_facade()
    assert sys.meta_path.count(_identity.FacadeFinder) == 1


def test_real_pymongocrypt_beside_mongocrypt_is_refused(tmp_path: Path) -> None:
    """A pymongocrypt dist-info on the path (what `pip install pymongocrypt` leaves) makes both
    `import mongocrypt` and `import pymongocrypt` fail, naming the fix."""
    info = tmp_path / "pymongocrypt-1.21.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pymongocrypt\nVersion: 1.21.2\n")
    for module in ("mongocrypt", "pymongocrypt"):
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import {module}",
            ],
            capture_output=True,
            text=True,
        )
        assert result.returncode != 0, module
        assert "pymongocrypt 1.21.2 is installed beside mongocrypt" in result.stderr
        assert "pip uninstall -y pymongocrypt" in result.stderr


def test_pymongo_imported_first_finds_the_facade() -> None:
    """pymongo imports pymongocrypt from inside pymongo.encryption_options, before that module
    defines AutoEncryptionOpts (which mongocrypt's own subclasses): a fresh interpreter that
    imports pymongo first must still see the facade and build automatic encryption options."""
    code = (
        "import pymongo.encryption_options as e\n"
        "assert e._HAVE_PYMONGOCRYPT\n"
        "e.AutoEncryptionOpts({'local': {'key': bytes(96)}}, 'keyvault.datakeys')\n"
        "import mongocrypt\n"
        "assert issubclass(mongocrypt.AutoEncryptionOpts, e.AutoEncryptionOpts)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
