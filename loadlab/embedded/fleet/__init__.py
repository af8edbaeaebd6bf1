"""The embedded agent fleet: replica processes on one port, supervised like a ReplicaSet.

:class:`Fleet` is the supervisor (no HTTP in it); :class:`FleetAPI` serves its
status API on loopback; ``python -m loadlab.embedded.fleet`` runs both.
"""

from loadlab.embedded.fleet.api import FleetAPI, fleet_app
from loadlab.embedded.fleet.pod import Pod, PodEvent, PodNotFound, PodPhase, ReplicaLaunch
from loadlab.embedded.fleet.supervisor import Fleet

__all__ = [
    "Fleet",
    "FleetAPI",
    "Pod",
    "PodEvent",
    "PodNotFound",
    "PodPhase",
    "ReplicaLaunch",
    "fleet_app",
]
