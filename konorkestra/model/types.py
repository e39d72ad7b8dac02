"""Domain words as types.

These aliases name the vocabulary used across the Center, the Agent and the
SDKs. They are plain ``str``/``int`` at runtime; mypy keeps them apart.
"""

from __future__ import annotations

from typing import Any, NewType, TypeAlias

Digest = NewType("Digest", str)
"""A content digest, always ``sha256:<64 lowercase hex>``."""

GroupName = NewType("GroupName", str)
ConfigSetName = NewType("ConfigSetName", str)
PolicyName = NewType("PolicyName", str)
NodeId = NewType("NodeId", str)
ReleaseId = NewType("ReleaseId", str)
Sequence = NewType("Sequence", int)
"""Per-group, strictly increasing release number starting at 1."""

JsonObject: TypeAlias = dict[str, Any]
"""A JSON object on the wire: what a type's ``to_json`` produces for an API answer,
or free-form JSON such as an audit event's details. Domain data is a type first;
only its edge (a route, a hash over canonical JSON) sees this."""
