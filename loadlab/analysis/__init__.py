"""loadlab.analysis."""
