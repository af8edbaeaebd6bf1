"""The LLM simulator: an OpenAI-compatible stand-in for Bedrock/OpenAI.

Run it with ``python -m loadlab.embedded.llm`` or embed :func:`create_app`.
"""

from loadlab.embedded.llm.config import LatencyModel, Quotas, SimulatorConfig
from loadlab.embedded.llm.server import SIMULATOR_KEY, Simulator, create_app

__all__ = ["SIMULATOR_KEY", "LatencyModel", "Quotas", "Simulator", "SimulatorConfig", "create_app"]
