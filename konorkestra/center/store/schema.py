"""The Center's tables, as SQLAlchemy Core :class:`~sqlalchemy.Table` objects.

Example::

    >>> from konorkestra.center.store import schema
    >>> sorted(schema.releases.c.keys())[:4]
    ['bundle', 'commit', 'configsets', 'created_at']

Invariants:

* Only portable types (String, Text, Integer, JSON, LargeBinary, DateTime with
  time zone): the same tables work on SQLite and PostgreSQL. PostgreSQL enforces
  ``String`` lengths and has 32-bit ``INTEGER``: every length fits the longest
  valid value, and counters or user numbers that may pass 2**31 are :data:`BIGINT`.
* Every time is written as aware UTC; read it back through
  :func:`konorkestra.center.store.engine.utc`.
* ``commits.seq`` orders ingest; ``(group, sequence)`` is unique in ``releases``;
  ``configset_versions`` maps each ``name@version`` to one digest forever;
  ``audit.prev_hash`` is unique, so the audit chain cannot fork.
* A table's shape changes only together with a new step in
  :mod:`konorkestra.center.store.migrations`; :data:`V1_TABLES` is what step 1 made.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""64-bit everywhere: BIGINT on PostgreSQL; SQLite's INTEGER already is, and stays the rowid."""

RELEASE_ID = 128
"""``<group>-<sequence>-<16 hex>``: a 63-char group name makes ids longer than 80."""


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.Text, nullable=False),
    _ts("applied_at"),
)

commits = sa.Table(
    "commits",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sha", sa.String(64), nullable=False, unique=True),
    sa.Column("parent", sa.String(64), nullable=True),
    sa.Column("branch", sa.String(255), nullable=False),
    sa.Column("author", sa.Text, nullable=False),
    _ts("committed_at"),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("diagnostics", sa.JSON, nullable=False),
    _ts("ingested_at"),
)

blobs = sa.Table(
    "blobs",
    metadata,
    sa.Column("digest", sa.String(80), primary_key=True),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    _ts("created_at"),
)

configset_versions = sa.Table(
    "configset_versions",
    metadata,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("version", BIGINT, primary_key=True, autoincrement=False),  # up to 2**53 - 1
    sa.Column("digest", sa.String(80), sa.ForeignKey("blobs.digest"), nullable=False),
    sa.Column("commit", sa.String(64), sa.ForeignKey("commits.sha"), nullable=False),
    _ts("created_at"),
)

policies = sa.Table(
    "policies",
    metadata,
    sa.Column("commit", sa.String(64), sa.ForeignKey("commits.sha"), primary_key=True),
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("digest", sa.String(80), nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
)

group_states = sa.Table(
    "group_states",
    metadata,
    sa.Column("commit", sa.String(64), sa.ForeignKey("commits.sha"), primary_key=True),
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("policy", sa.String(63), nullable=False),
    sa.Column("policy_digest", sa.String(80), nullable=False),
    sa.Column("configsets", sa.JSON, nullable=False),
)

releases = sa.Table(
    "releases",
    metadata,
    sa.Column("id", sa.String(RELEASE_ID), primary_key=True),
    sa.Column("group", sa.String(63), nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("bundle", sa.LargeBinary, nullable=False),
    sa.Column("digest", sa.String(80), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("commit", sa.String(64), sa.ForeignKey("commits.sha"), nullable=True),
    sa.Column("configsets", sa.JSON, nullable=False),
    sa.Column("policy", sa.JSON, nullable=False),
    sa.Column("previous_id", sa.String(RELEASE_ID), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("created_by", sa.Text, nullable=False),
    _ts("created_at"),
    _ts("expires_at"),
    sa.UniqueConstraint("group", "sequence", name="uq_releases_group_sequence"),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("seq", BIGINT, primary_key=True, autoincrement=True),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("action", sa.String(80), nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("prev_hash", sa.String(80), nullable=False, unique=True),
    sa.Column("hash", sa.String(80), nullable=False, unique=True),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("hash", sa.String(80), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    _ts("created_at"),
    _ts("revoked_at", nullable=True),
)

nodes = sa.Table(
    "nodes",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text),
    sa.Column("labels", sa.JSON),
    sa.Column("groups", sa.JSON),
    sa.Column("cert_serial", sa.Text),
    _ts("cert_not_after", nullable=True),
    _ts("revoked_at", nullable=True),
    _ts("last_seen", nullable=True),
    _ts("created_at"),
)

join_tokens = sa.Table(
    "join_tokens",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("secret_hmac", sa.Text, nullable=False),
    sa.Column("groups", sa.JSON),
    sa.Column("labels", sa.JSON),
    sa.Column("node_name", sa.Text, nullable=True),
    _ts("expires_at"),
    _ts("used_at", nullable=True),
    sa.Column("used_by", sa.Text, nullable=True),
    _ts("revoked_at", nullable=True),
    sa.Column("created_by", sa.Text, nullable=False),
    _ts("created_at"),
)

node_reports = sa.Table(
    "node_reports",
    metadata,
    sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
    sa.Column("node_id", sa.Text, nullable=False),
    sa.Column("group", sa.Text, nullable=True),
    sa.Column("release_id", sa.Text, nullable=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
    _ts("created_at"),
)

rollouts = sa.Table(
    "rollouts",
    metadata,
    sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
    sa.Column("group", sa.String(63), nullable=False),
    sa.Column("release_id", sa.String(RELEASE_ID), nullable=False, unique=True),
    sa.Column("phase", sa.String(24), nullable=False),
    sa.Column("state", sa.JSON, nullable=False),
    sa.Column("readings", sa.JSON, nullable=False),
    sa.Column("revision", BIGINT, nullable=False),
    _ts("next_at", nullable=True),
    _ts("created_at"),
    _ts("updated_at"),
)
"""One row per rolled-out Release: the engine's state (``RolloutState.to_json``), the last
guard readings, ``revision`` bumped on every write, ``next_at`` the next deadline."""

rollout_commands = sa.Table(
    "rollout_commands",
    metadata,
    sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
    sa.Column("group", sa.String(63), nullable=False),
    sa.Column("release_id", sa.String(RELEASE_ID), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    _ts("created_at"),
    _ts("done_at", nullable=True),
    sa.Column("outcome", sa.Text, nullable=True),
)
"""Operator commands, queued by the API and applied in ``id`` order by the one runner;
``outcome`` is ``applied`` or why it was rejected."""

ui_sessions = sa.Table(
    "ui_sessions",
    metadata,
    sa.Column("hash", sa.String(80), primary_key=True),
    sa.Column("token_id", sa.String(32), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    _ts("created_at"),
    _ts("expires_at"),
)
"""Dashboard sessions: ``sha256`` of the cookie's secret (never the secret), the API
token it was opened with (a revoked token ends its sessions), the form token."""

sa.Index("ix_releases_group", releases.c.group)
sa.Index("ix_rollouts_group", rollouts.c.group, rollouts.c.id)
sa.Index("ix_rollout_commands_pending", rollout_commands.c.group, rollout_commands.c.done_at)
NODE_REPORTS_BY_GROUP = sa.Index(
    "ix_node_reports_group", node_reports.c.group, node_reports.c.kind, node_reports.c.release_id
)
sa.Index("ix_releases_commit", releases.c.commit)
sa.Index("ix_configset_versions_commit", configset_versions.c.commit)
sa.Index("ix_node_reports_node", node_reports.c.node_id)

V1_TABLES: tuple[sa.Table, ...] = (
    commits,
    blobs,
    configset_versions,
    policies,
    group_states,
    releases,
    audit,
    api_tokens,
    nodes,
    join_tokens,
    node_reports,
)
"""The tables migration step 1 creates (``schema_version`` is made before any step)."""

V3_TABLES: tuple[sa.Table, ...] = (rollouts, rollout_commands)
"""The tables migration step 3 creates."""

V4_TABLES: tuple[sa.Table, ...] = (ui_sessions,)
"""The tables migration step 4 creates."""
