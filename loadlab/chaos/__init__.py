"""loadlab's Chaos Toolkit extension.

* :mod:`loadlab.chaos.control` puts an experiment's activities on the run timeline;
* :mod:`loadlab.chaos.loadrun` starts a load run inside an experiment, waits for
  the moment to strike, and probes the live run;
* :mod:`loadlab.chaos.downstream` injects LLM faults and DynamoDB capacity cuts,
  each a lease that ends by itself;
* :mod:`loadlab.chaos.aws_lambda` recycles, kills and throttles a Lambda
  function's environments, each fault a lease reverted even if the harness dies;
* pods are killed with chaostoolkit-kubernetes as it is (the embedded fleet
  serves the Kubernetes pods API).

``chaos discover loadlab --no-install`` lists the activities (from their
docstrings and signatures).
"""

from __future__ import annotations

from typing import Any

__all__ = ["discover"]


def discover(discover_system: bool = True) -> Any:
    """Chaos Toolkit discovery: loadlab's actions and probes with their arguments."""
    from chaoslib.discovery.discover import (
        discover_actions,
        discover_probes,
        initialize_discovery_result,
    )

    from loadlab import __version__

    discovery = initialize_discovery_result("loadlab", __version__, "loadlab")
    discovery["activities"].extend(discover_actions("loadlab.chaos.loadrun.actions"))
    discovery["activities"].extend(discover_probes("loadlab.chaos.loadrun.probes"))
    discovery["activities"].extend(discover_actions("loadlab.chaos.downstream.actions"))
    discovery["activities"].extend(discover_probes("loadlab.chaos.downstream.probes"))
    discovery["activities"].extend(discover_actions("loadlab.chaos.aws_lambda.actions"))
    discovery["activities"].extend(discover_probes("loadlab.chaos.aws_lambda.probes"))
    return discovery
