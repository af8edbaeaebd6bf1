"""loadlab.target.fleet."""
