"""loadlab.target."""
