"""loadlab's reference shopping-assistant agent: the system under test of the embedded stack.

It speaks docs/protocol.md. Modules, by role:

* :mod:`~loadlab.embedded.agent.core` — :class:`ShoppingAgent`, the async turn logic
  shared by every way of running it (pods now, a Lambda handler later);
* :mod:`~loadlab.embedded.agent.service` — the aiohttp app, :class:`AgentServer`, :func:`serve`;
* :mod:`~loadlab.embedded.agent.config` — :class:`AgentConfig` from ``LOADLAB_*`` variables;
* :mod:`~loadlab.embedded.agent.checkpoint` — DynamoDB checkpoints, ``ensure_table``;
* :mod:`~loadlab.embedded.agent.llm` — the streaming OpenAI-compatible client;
* ``catalog``, ``intent``, ``tools``, ``auth``, ``state``, ``events``, ``metrics``.

Run one instance with ``python -m loadlab.embedded.agent --port 8080 --reuse-port``.
"""
