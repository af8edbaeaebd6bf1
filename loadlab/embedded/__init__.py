"""loadlab.embedded."""
