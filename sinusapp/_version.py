"""The single source of SinusApp's version (read by pyproject, the CLI, reports and bundles)."""

__version__ = "0.1.0"
