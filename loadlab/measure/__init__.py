"""loadlab.measure."""
