"""The Center: Git ingest, validation, signed Releases, the store and the HTTP API.

Map:

* ``store/`` — SQLAlchemy Core tables, engine setup, versioned migrations.
* ``ingest/`` — watch/fetch the config repo, judge each commit, release.
* ``releases.py`` / ``manual.py`` — sign and store Releases (ingest and by hand).
* ``audit.py`` — the hash-chained audit log; ``tokens.py`` / ``auth.py`` — API tokens.
* ``app.py`` (factory over ``context.CenterContext``), ``routes/``, ``errors.py``.
* ``datadir.py`` / ``server.py`` — first-start initialization and assembly.
"""
