"""sinusapp.synth."""
