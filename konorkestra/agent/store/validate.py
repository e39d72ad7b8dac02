"""The default release validator: each ConfigSet's data against its schema.

Example::

    >>> from konorkestra.agent.store.records import ConfigSetDoc, ReleaseView
    >>> from konorkestra.model.release import ConfigSetRef
    >>> doc = ConfigSetDoc(ConfigSetRef("api", 1, "sha256:" + "0" * 64), {"port": "x"},
    ...                    {"properties": {"port": {"type": "integer"}}}, ())
    >>> view = ReleaseView("g", 1, "g-1", "sha256:" + "1" * 64, (doc,))
    >>> try:
    ...     validate_schemas(view)
    ... except ValidationRefusedError as err:
    ...     print(err.message)
    ConfigSet api@1: /port: "x" is not of type "integer"

Invariants:

* A ConfigSet without ``spec.schema`` always passes.
* The verdict is :mod:`konorkestra.model.dataschema`'s, the module the Center
  validates with: same draft rule, formats, patterns and offline references.
* An invalid schema, or one with a ``$ref`` that does not resolve inside it,
  refuses the release too (the Center never signs one).
* The refusal names the first violation in document order.
* A ConfigSet digest that passed is not checked again: the digest covers the
  data and the schema, so the result cannot change.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from konorkestra.agent.store.errors import ValidationRefusedError
from konorkestra.agent.store.records import ReleaseView
from konorkestra.model.canonical import canonical_bytes
from konorkestra.model.dataschema import SchemaProblemError, compile_canonical

Validator = Callable[[ReleaseView], None]
"""Raises (anything) to refuse a release; returns to accept it."""

_PASSED: OrderedDict[str, None] = OrderedDict()
"""ConfigSet digests that passed, most recent last. A ConfigSet blob's digest
covers both its data and its schema, so a digest that passed once always passes."""
_PASSED_MAX = 1024


def validate_schemas(view: ReleaseView) -> None:
    """Refuse the release when some ConfigSet's data violates its ``spec.schema``."""
    for doc in view.configsets:
        if doc.schema is None or doc.ref.digest in _PASSED:
            continue
        where = f"ConfigSet {doc.ref.name}@{doc.ref.version}"
        try:
            schema = compile_canonical(canonical_bytes(doc.schema))
        except SchemaProblemError as exc:
            inside = "".join(f"/{p}" for p in exc.path)
            raise ValidationRefusedError(
                f"{where}: invalid spec.schema{inside}: {exc.message}"
            ) from exc
        errors = schema.errors(doc.data, limit=1)
        if errors:
            raise ValidationRefusedError(
                f"{where}: {errors[0].pointer or '/'}: {errors[0].message}",
                hint="the release violates its own schema; report it to the Center",
            )
        _PASSED[doc.ref.digest] = None
        if len(_PASSED) > _PASSED_MAX:
            _PASSED.popitem(last=False)
