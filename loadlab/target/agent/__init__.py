"""loadlab's reference shopping-assistant agent: the system under test of the embedded stack.

It speaks docs/protocol.md. Modules, by role:

* :mod:`~loadlab.target.agent.core` — :class:`ShoppingAgent`, the async turn logic
  shared by every way of running it (pods now, a Lambda handler later);
* :mod:`~loadlab.target.agent.service` — the aiohttp app, :class:`AgentServer`, :func:`serve`;
* :mod:`~loadlab.target.agent.config` — :class:`AgentConfig` from ``LOADLAB_*`` variables;
* :mod:`~loadlab.target.agent.checkpoint` — DynamoDB checkpoints, ``ensure_table``;
* :mod:`~loadlab.target.agent.llm` — the streaming OpenAI-compatible client;
* ``catalog``, ``intent``, ``tools``, ``auth``, ``state``, ``events``, ``metrics``.

Run one instance with ``python -m loadlab.target.agent --port 8080 --reuse-port``.
"""
