"""loadlab.report."""
