"""loadlab.scenario."""
