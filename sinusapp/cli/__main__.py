"""``python -m sinusapp.cli``: the ``sinusapp`` command."""

import sys

from sinusapp.cli import main

sys.exit(main())
