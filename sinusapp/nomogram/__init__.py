"""sinusapp.nomogram."""
