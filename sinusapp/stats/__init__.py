"""sinusapp.stats."""
