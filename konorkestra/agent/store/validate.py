"""The default release validator: each ConfigSet's data against its schema.

Example::

    >>> from konorkestra.agent.store.records import ConfigSetDoc, ConfigSetRef, ReleaseView
    >>> doc = ConfigSetDoc(ConfigSetRef("api", 1, "sha256:" + "0" * 64), {"port": "x"},
    ...                    {"properties": {"port": {"type": "integer"}}}, ())
    >>> view = ReleaseView("g", 1, "g-1", "sha256:" + "1" * 64, (doc,))
    >>> try:
    ...     validate_schemas(view)
    ... except ValidationRefusedError as err:
    ...     print(err.message)
    ConfigSet api@1: /port: 'x' is not of type 'integer'

Invariants:

* A ConfigSet without ``spec.schema`` always passes.
* The schema's own ``$schema`` picks the draft; without one, draft 2020-12.
* An invalid schema refuses the release too (the Center should never sign one).
* A ConfigSet digest that passed is not checked again: the digest covers the
  data and the schema, so the result cannot change.
"""

from __future__ import annotations

import functools
import json
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError

from konorkestra.agent.store.errors import ValidationRefusedError
from konorkestra.agent.store.records import ReleaseView
from konorkestra.model.canonical import canonical_bytes

Validator = Callable[[ReleaseView], None]
"""Raises (anything) to refuse a release; returns to accept it."""


@functools.lru_cache(maxsize=64)
def _validator(schema_json: bytes) -> Any:
    """A checked validator per distinct schema (ConfigSets keep theirs across releases)."""
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema, jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)


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
            validator = _validator(canonical_bytes(doc.schema))
        except SchemaError as exc:
            raise ValidationRefusedError(f"{where}: invalid spec.schema: {exc.message}") from exc
        error = jsonschema.exceptions.best_match(validator.iter_errors(doc.data))
        if error is not None:
            pointer = "/" + "/".join(str(p) for p in error.absolute_path)
            raise ValidationRefusedError(
                f"{where}: {pointer}: {error.message}",
                hint="the release violates its own schema; report it to the Center",
            )
        _PASSED[doc.ref.digest] = None
        if len(_PASSED) > _PASSED_MAX:
            _PASSED.popitem(last=False)
