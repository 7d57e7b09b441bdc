"""sinusapp.model."""
