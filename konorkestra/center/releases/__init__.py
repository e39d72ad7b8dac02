"""The releases wing: sign and store Releases, manual releases, desired state, their routes.

``signer`` builds, signs and stores a Release (the one path for ingest and
operators); ``manual`` creates one by hand (rollbacks); ``desired`` is the pure
logic of what a node should have; ``rows`` is the wing's store edge (a
``releases`` row becomes a :class:`~konorkestra.model.release.Release` there);
``queries`` and ``routes`` serve ``/v1/releases``, ``/v1/groups`` and ``/v1/blobs``.

The rollout engine (waves, bakes, approval, guards, rollback) will live here:
its pure decisions beside ``desired``, its runner as a Center service.
"""
