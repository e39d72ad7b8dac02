"""The nodes wing: join tokens, enrollment and renewal, node records and cache, node routes.

``jointokens`` (join tokens only; operator API tokens are ``operators.apitokens``),
``records`` (node records, enrollment errors), ``enrollment`` (the
``EnrollmentService``), ``cache`` (node records in memory), ``guard`` (a node's
certificate and record checked per request), ``state`` (a node's view folded
from its reports), ``routes`` (``/v1/enroll``, ``/v1/nodes``, ``/v1/join-tokens``).
"""
