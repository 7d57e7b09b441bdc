"""Entry point of the frozen (PyInstaller) SinusApp: the same as the `sinusapp` command."""

import multiprocessing
import sys

from sinusapp.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # the header scan uses worker processes
    sys.exit(main())
