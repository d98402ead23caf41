"""The one policy for which names hold secrets, and what stands in for a hidden value.

Used by :func:`mongocrypt.errors.redact` (JSON members and XML elements of quoted replies), by the
command line (which scrubs its settings' secrets from every message) and by the reprs of options
that carry key material. A name is compared without case, ``_`` or ``-``.
"""

from __future__ import annotations

import re

__all__ = ["REDACTED", "is_secret_name", "shown"]

#: What a message or repr shows instead of a secret.
REDACTED = "<redacted>"

#: Credentials (AWS ``secretAccessKey``/``sessionToken``, Azure ``clientSecret``, GCP
#: ``privateKey``/``accessToken``, TLS key passwords, request signatures), key material (a local
#: provider's ``key``, a data key's ``key_material``) and the unwrapped data key a KMS returns
#: (AWS ``Plaintext``, GCP ``plaintext``, Azure ``value``).
_SECRET_NAME = re.compile(
    r"token|secret|accesskey|password|signature|plaintext|privatekey|keymaterial|^key$|^value$",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    """Whether a setting, JSON member or XML element called ``name`` holds a secret.

    :param name: the name, in any case, with or without ``_`` and ``-``.
    """
    return _SECRET_NAME.search(name.replace("_", "").replace("-", "")) is not None


def shown(name: str, value: object) -> str:
    """``value`` as a repr shows it: :data:`REDACTED` when ``name`` holds a secret and is set.

    :param name: the attribute's name.
    :param value: its value; ``None`` is shown as is.
    """
    if value is None or not is_secret_name(name):
        return repr(value)
    return REDACTED
