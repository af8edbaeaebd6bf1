"""loadlab.chaos."""
