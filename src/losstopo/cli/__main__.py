"""``python -m losstopo.cli``: the ``losstopo`` command (the local workers start it this way)."""

import sys

from .main import main

sys.exit(main())
