"""sinusapp.report."""
