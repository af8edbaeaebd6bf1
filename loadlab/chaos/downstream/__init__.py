"""Chaos Toolkit activities for the agent's downstreams: the LLM and DynamoDB.

:mod:`~loadlab.chaos.downstream.actions` injects LLM faults (429 storms, quota
cuts, slowdowns) through the LLM simulator's admin API, and cuts DynamoDB
capacity through the embedded stack's capacity gate;
:mod:`~loadlab.chaos.downstream.probes` reads what is in force. Every fault is a
lease: it is sent with ``expires_at = now + duration_s`` and the target drops it
by itself at that time, so a harness that crashes mid-experiment cannot leave
the LLM or the table throttled. The rollbacks end it earlier.

The URLs default to ``$LOADLAB_LLM_URL`` and ``$LOADLAB_DDB_GATE_URL``, which
``loadlab gameday`` sets for the embedded stack. A real provider (Bedrock,
OpenAI) has no such admin API: there the LLM actions fail with that explanation.
"""
