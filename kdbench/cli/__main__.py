"""``python -m kdbench.cli``: the ``kdbench`` command."""

import sys

from kdbench.cli.app import main

sys.exit(main())
