"""The embedded reference system: what loadlab runs against when there is no cloud.

Real local servers for the APIs a deployment uses (DESIGN.md, "Same code path
locally and in the cloud"): ministack for DynamoDB, Lambda, CloudWatch and SSM;
an LLM simulator; the reference shopping agent as a fleet of pods (with a
Kubernetes pods API) and as a Lambda function; a DynamoDB capacity gate.
:class:`~loadlab.embedded.stack.EmbeddedStack` starts them as one and records
where they answer in ``stack.json`` (:class:`~loadlab.embedded.state.StackState`).

Only the wiring package (:mod:`loadlab.app`) imports this package: the harness
speaks to it over the network, exactly as it speaks to a cloud deployment.
"""
