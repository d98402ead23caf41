"""pymongocrypt.explicit_encrypter: the legacy top-level module older pymongo imports."""

from pymongocrypt.synchronous.explicit_encrypter import *  # noqa: F403
from pymongocrypt.synchronous.explicit_encrypter import __all__  # noqa: F401
