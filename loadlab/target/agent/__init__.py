"""loadlab.target.agent."""
