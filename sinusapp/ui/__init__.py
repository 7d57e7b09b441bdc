"""sinusapp.ui."""
