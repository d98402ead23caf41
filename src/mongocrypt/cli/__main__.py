"""``python -m mongocrypt.cli``: the same program as the ``mongocrypt`` command."""

import sys

from mongocrypt.cli._parser import main

sys.exit(main())
