"""loadlab.load."""
