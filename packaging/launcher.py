"""Entry point of the frozen (PyInstaller) SinusApp: the same as the `sinusapp` command."""

import multiprocessing
import sys
import warnings

# The build leaves torch's .py sources out (packaging/sinusapp.spec); TorchScript, which
# SinusApp does not use, then warns at `import torch` for each overloaded function.
warnings.filterwarnings(
    "ignore", message=r"Unable to retrieve source for @torch\.jit\._overload", category=UserWarning
)

if __name__ == "__main__":
    multiprocessing.freeze_support()  # worker processes (header scan, synth, train) re-run us
    from sinusapp.cli import main

    sys.exit(main())
