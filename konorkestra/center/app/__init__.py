"""The app wing: the app factory, its context, errors, metrics, the data dir and assembly.

``factory.create_app(ctx)`` builds the ASGI app from a ``context.CenterContext``;
``server.build`` assembles a runnable Center from a data directory; ``routes``
serves ``/healthz``, ``/readyz``, ``/metrics``, ``/v1/openapi.json`` and
``/v1/trust/root``.
"""
