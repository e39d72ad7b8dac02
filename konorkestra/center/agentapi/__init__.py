"""The agent API wing (mTLS): the desired-state long-poll, freshness, blobs, reports.

``api.AgentApi`` is the shared state (set as ``CenterContext.agent_api``);
``routes`` serves ``/v1/agent/*``; ``scope`` holds the pure scope rules S1–S3;
``reports`` parses a report, ``reportrows`` stores it, ``writer`` batches the
writes; ``cache``, ``notify``, ``entries``, ``freshness`` and ``blobs`` serve
the hot path.
"""
