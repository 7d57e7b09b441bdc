"""``python -m sinusapp`` (and ``torchrun -m sinusapp train ...``): the ``sinusapp`` command."""

import sys

from sinusapp.cli import main

if __name__ == "__main__":
    sys.exit(main())
