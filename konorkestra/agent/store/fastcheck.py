"""A fast "is it valid?" path in front of jsonschema, for the common schemas.

Example::

    >>> import jsonschema
    >>> schema = {"type": "object", "additionalProperties": {"type": "string"}}
    >>> check = compile_check(jsonschema.Draft202012Validator(schema))
    >>> check({"a": "x"}), check({"a": 1})
    (True, False)
    >>> compile_check(jsonschema.Draft202012Validator({"pattern": "^a"})) is None
    True

jsonschema evolves a validator object for every value it descends into
(about 3 µs each), which makes a 100 KB ConfigSet cost ~5 ms. Most config
schemas only use a handful of structural keywords; for those this module
builds plain closures that answer the same question in a fraction of that.

Invariants:

1. **Same answer as jsonschema, or no answer.** :func:`compile_check` returns
   ``None`` unless every keyword jsonschema would apply anywhere in the schema
   is one modelled here, so the caller runs jsonschema itself. Eligibility is
   decided by the *identity* of the keyword function jsonschema's validator
   class would call (``cls.VALIDATORS[keyword]``) and of the type checker
   functions, so a draft (or a jsonschema release) whose semantics differ
   falls back instead of being guessed at.
2. Modelled keywords, with jsonschema 4's own semantics: ``type``,
   ``properties``, ``required``, ``additionalProperties`` (not beside
   ``patternProperties``), ``items`` (the 2020-12 form, no ``prefixItems``)
   and ``format`` (an annotation: our validators have no format checker).
   Keywords jsonschema does not apply (``title``, ``$defs``, ...) are ignored,
   as jsonschema ignores them.
3. The checker only says valid or invalid; error messages always come from
   jsonschema (the caller re-runs it when the answer is "invalid").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jsonschema import _keywords, _types

Check = Callable[[Any], bool]

_ALWAYS: Check = lambda _instance: True  # noqa: E731
_NEVER: Check = lambda _instance: False  # noqa: E731

_SIMPLE_TYPES: dict[Any, Check] = {
    _types.is_array: lambda i: isinstance(i, list),
    _types.is_bool: lambda i: isinstance(i, bool),
    _types.is_null: lambda i: i is None,
    _types.is_object: lambda i: isinstance(i, dict),
    _types.is_string: lambda i: isinstance(i, str),
}
"""jsonschema's type-checker functions whose body is exactly the predicate."""


class _Ineligible(Exception):
    """The schema uses something this module does not model."""


def compile_check(validator: Any) -> Check | None:
    """A ``instance -> bool`` equal to ``validator.is_valid``, or ``None``.

    ``validator`` is a jsonschema validator instance of a built-in draft,
    created without a format checker (as ``validate.py`` creates them).
    """
    if getattr(validator, "format_checker", None) is not None:
        return None
    try:
        return _Compiler(type(validator)).node(validator.schema, top=True)
    except _Ineligible:
        return None


class _Compiler:
    def __init__(self, cls: Any) -> None:
        self.keywords: Mapping[str, Any] = cls.VALIDATORS
        self.checker = cls.TYPE_CHECKER

    def type_check(self, name: Any) -> Check:
        if not isinstance(name, str):
            raise _Ineligible
        fn = getattr(self.checker, "_type_checkers", {}).get(name)
        if fn is None:
            raise _Ineligible  # unknown to this draft: jsonschema raises, not us
        simple = _SIMPLE_TYPES.get(fn)
        if simple is not None:
            return simple
        is_type, checker = fn, self.checker
        return lambda i: bool(is_type(checker, i))

    def node(self, schema: Any, *, top: bool = False) -> Check:
        if schema is True:
            return _ALWAYS
        if schema is False:
            return _NEVER
        if not isinstance(schema, dict) or ("$schema" in schema and not top):
            raise _Ineligible  # a nested $schema switches the draft for its subtree
        is_object = self.type_check("object")
        checks: list[Check] = []
        for key, value in schema.items():
            fn = self.keywords.get(key)
            if fn is None:
                continue  # not a validation keyword: jsonschema ignores it too
            if fn is _keywords.format:
                continue  # annotation only without a format checker
            if fn is _keywords.type and isinstance(value, str | list):
                names = [value] if isinstance(value, str) else value
                checks.append(_any_type([self.type_check(t) for t in names]))
            elif fn is _keywords.properties and isinstance(value, dict):
                subs = {name: self.node(sub) for name, sub in value.items()}
                checks.append(_properties(is_object, subs))
            elif fn is _keywords.required and isinstance(value, list):
                checks.append(_required(is_object, list(value)))
            elif fn is _keywords.additionalProperties and "patternProperties" not in schema:
                props = schema.get("properties", {})
                if not isinstance(props, dict):
                    raise _Ineligible
                checks.append(_additional(is_object, set(props), self.additional(value)))
            elif fn is _keywords.items and "prefixItems" not in schema:
                checks.append(_items(self.type_check("array"), self.node(value)))
            else:
                raise _Ineligible
        if not checks:
            return _ALWAYS
        if len(checks) == 1:
            return checks[0]
        return lambda i: all(c(i) for c in checks)

    def additional(self, value: Any) -> Check | bool:
        """``additionalProperties``: a subschema's check, or ``True``/``False``."""
        if isinstance(value, bool):
            return value
        if isinstance(value, dict):
            return self.node(value)
        raise _Ineligible


def _any_type(types: list[Check]) -> Check:
    if len(types) == 1:
        return types[0]
    return lambda i: any(t(i) for t in types)


def _properties(is_object: Check, subs: dict[str, Check]) -> Check:
    def check(i: Any) -> bool:
        if not is_object(i):
            return True
        return all(sub(i[name]) for name, sub in subs.items() if name in i)

    return check


def _required(is_object: Check, names: list[Any]) -> Check:
    return lambda i: not is_object(i) or all(name in i for name in names)


def _additional(is_object: Check, known: set[str], sub: Check | bool) -> Check:
    if sub is True:
        return _ALWAYS
    if sub is False:
        return lambda i: not is_object(i) or all(k in known for k in i)
    each = sub

    def check(i: Any) -> bool:
        if not is_object(i):
            return True
        if known:
            return all(each(v) for k, v in i.items() if k not in known)
        return all(map(each, i.values()))

    return check


def _items(is_array: Check, sub: Check) -> Check:
    return lambda i: not is_array(i) or all(map(sub, i))
