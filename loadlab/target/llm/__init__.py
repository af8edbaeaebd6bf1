"""loadlab.target.llm."""
