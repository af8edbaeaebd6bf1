"""A DynamoDB capacity gate: provisioned-capacity throttling in front of ministack.

ministack's DynamoDB never throttles. The gate is a reverse proxy on 127.0.0.1
that runs every table behind it in provisioned-capacity mode: token buckets for
read and write capacity units, charged with the ``ConsumedCapacity`` of each
answer, and ``ProvisionedThroughputExceededException`` (as DynamoDB sends it)
when a bucket is empty. Its capacity is changed at run time with a lease
(``POST /admin/capacity`` with ``expires_at``), so a crashed harness cannot
leave the table throttled. The embedded stack starts it in front of ministack
and points the agents' DynamoDB endpoint at it.
"""

from loadlab.embedded.ddb_gate.buckets import TokenBucket
from loadlab.embedded.ddb_gate.capacity import (
    DEFAULT_BURST_S,
    CapacitySettings,
    CapacityValueError,
    updated_settings,
)
from loadlab.embedded.ddb_gate.server import GATE_KEY, THROTTLE_BODY, DynamoDBGate, create_app
from loadlab.embedded.ddb_gate.state import CapacityGate

__all__ = [
    "DEFAULT_BURST_S",
    "GATE_KEY",
    "THROTTLE_BODY",
    "CapacityGate",
    "CapacitySettings",
    "CapacityValueError",
    "DynamoDBGate",
    "TokenBucket",
    "create_app",
    "updated_settings",
]
