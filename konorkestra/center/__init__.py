"""The Center: Git ingest, validation, signed Releases, the store and the HTTP API.

Wings (each a sub-package; each that serves HTTP has ``routes.routes(ctx)``,
concatenated in a fixed order by :func:`konorkestra.center.app.factory.create_app`):

* ``app/`` — app factory, CenterContext, errors, metrics, data dir, assembly, health routes.
* ``store/`` — tables, engine, migrations, the hash-chained audit log, report retention.
* ``ingest/`` — watch/fetch the config repo, judge each commit, release; ``/v1/commits``.
* ``releases/`` — sign and store Releases, manual releases, desired state; ``/v1/releases``.
* ``agentapi/`` — agents' long-poll, freshness, blob authorization, reports; ``/v1/agent``.
* ``nodes/`` — join tokens, enrollment, node records, cache and guard; ``/v1/nodes``.
* ``operators/`` — operator API tokens, roles, bearer auth; ``/v1/tokens``, ``/v1/audit``.
* ``pki/`` — CA, certificate checks, TLS context, client-certificate identity, uvicorn hook.
"""
